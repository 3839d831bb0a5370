-- A renewed certification ends an automatic pause. The pause history row records the whole pause:
-- when it ended, who ended it and (for a renewal) which certification did. A `reactivate` event
-- tells the Dynamics portal, through the same saga as the pause.
ALTER TABLE public.mentor_pause_history
    ADD COLUMN resumed_at      timestamptz,
    ADD COLUMN resumed_by      text,
    ADD COLUMN resumed_cert_id uuid REFERENCES public.certifications (id),
    ADD CONSTRAINT mentor_pause_history_resumed_together CHECK ((resumed_at IS NULL) = (resumed_by IS NULL)),
    ADD CONSTRAINT mentor_pause_history_resumed_after_paused CHECK (resumed_at IS NULL OR resumed_at >= paused_at);
-- The nightly job reads the open pauses only.
CREATE INDEX mentor_pause_history_open_idx ON public.mentor_pause_history (mentor_id) WHERE resumed_at IS NULL;

ALTER TABLE public.dynamics_sync_events DROP CONSTRAINT dynamics_sync_events_action_check;
ALTER TABLE public.dynamics_sync_events ADD CONSTRAINT dynamics_sync_events_action_check
    CHECK (action IN ('pause', 'unpause', 'reactivate'));

-- A mentor set active by anyone (a coordinator in the app, an operator in psql) has no open pause
-- any more. Without this, an automatic pause left open by a manual reactivation would let the
-- nightly job lift a later pause that a coordinator made for another reason.
CREATE FUNCTION app_private.close_pauses_of_active_mentor() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
    AS $$
BEGIN
    UPDATE public.mentor_pause_history
    SET resumed_at = greatest(clock_timestamp(), paused_at), resumed_by = 'database:' || session_user
    WHERE mentor_id = NEW.id AND resumed_at IS NULL;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION app_private.close_pauses_of_active_mentor() FROM PUBLIC;

CREATE TRIGGER peer_mentors_close_pauses_on_activation
    AFTER UPDATE OF status ON public.peer_mentors
    FOR EACH ROW WHEN (OLD.status = 'paused' AND NEW.status = 'active')
    EXECUTE FUNCTION app_private.close_pauses_of_active_mentor();
