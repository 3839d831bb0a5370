-- When an assignment or a mentor last changed, so that a second assignment_reminders run for the
-- same date reads only what changed since the first (docs/assignment-reminders.md, "Reruns").
-- Set on insert (the default) and on every update (the trigger), whoever writes: the app, the
-- REST API, an operator in psql.
ALTER TABLE public.assignments ADD COLUMN changed_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE public.peer_mentors ADD COLUMN changed_at timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION app_private.touch_changed_at() RETURNS trigger
    LANGUAGE plpgsql SET search_path = ''
    AS $$
BEGIN
    NEW.changed_at := clock_timestamp();
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION app_private.touch_changed_at() FROM PUBLIC;

CREATE TRIGGER assignments_touch_changed_at
    BEFORE UPDATE ON public.assignments
    FOR EACH ROW EXECUTE FUNCTION app_private.touch_changed_at();
CREATE TRIGGER peer_mentors_touch_changed_at
    BEFORE UPDATE ON public.peer_mentors
    FOR EACH ROW EXECUTE FUNCTION app_private.touch_changed_at();

-- A rerun finds the few changed rows without reading every assignment.
CREATE INDEX assignments_active_changed_idx ON public.assignments (changed_at) WHERE status = 'active';
CREATE INDEX peer_mentors_changed_idx ON public.peer_mentors (changed_at);
