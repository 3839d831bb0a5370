-- Delivery from the outbox to people (docs/delivery.md): every notification now has a lifecycle,
-- recipients have preferences, and operations hear when delivery gives up.
--
--   pending ──claim──▶ sending ──▶ delivered
--                         │  ├──▶ failed, next_attempt_at set: retried after backoff ◀── operator retry
--                         │  ├──▶ failed, next_attempt_at NULL: gave up, operations alerted ──┘
--                         │  └──▶ undeliverable (no address, no channel, the gateway knows no such recipient)
--   pending / failed ───────────▶ expired (never sent in time, or the contact gap it was about has ended)
--
-- `message_key` is the Idempotency-Key of the recipient message a notification went out in. It is
-- kept while the message may have reached the gateway (a timeout, a dropped connection, a deliverer
-- that died while sending), so the retry is the same message under the same key; after a definite
-- refusal it is cleared, and the next attempt composes a new message with whatever else is due.
-- `claimed_by` is the application_name of the deliverer's session: a `sending` row whose session is
-- gone (kill -9) is released for a retry by the next run.

ALTER TABLE public.notifications DROP CONSTRAINT notifications_status_check;

ALTER TABLE public.notifications
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN next_attempt_at timestamptz DEFAULT now(),
    ADD COLUMN last_error      text CHECK (length(last_error) <= 500),
    ADD COLUMN channel         text CHECK (channel IN ('push', 'email')),
    ADD COLUMN message_key     uuid,
    ADD COLUMN claimed_by      text,
    ADD COLUMN claimed_at      timestamptz,
    ADD COLUMN finished_at     timestamptz;

-- Rows from before delivery existed: only pending ones wait for an attempt, and a pending one older
-- than the default expiry (72 hours) is not worth sending any more.
UPDATE public.notifications SET next_attempt_at = NULL WHERE status NOT IN ('pending', 'failed');
UPDATE public.notifications SET delivered_at = created_at WHERE status = 'delivered' AND delivered_at IS NULL;
UPDATE public.notifications
SET status = 'expired', next_attempt_at = NULL, finished_at = now(),
    last_error = 'expired: created before delivery existed, more than 72 hours before migration 0009'
WHERE status = 'pending' AND created_at < now() - interval '72 hours';

ALTER TABLE public.notifications
    ADD CONSTRAINT notifications_status_check
        CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'undeliverable', 'expired')),
    -- Only a pending or failed notification waits for an attempt; a pending one always has its time.
    ADD CONSTRAINT notifications_next_attempt_check
        CHECK (CASE status WHEN 'pending' THEN next_attempt_at IS NOT NULL
                           WHEN 'failed' THEN true
                           ELSE next_attempt_at IS NULL END),
    ADD CONSTRAINT notifications_delivered_at_check CHECK ((status = 'delivered') = (delivered_at IS NOT NULL)),
    ADD CONSTRAINT notifications_sending_check
        CHECK (status <> 'sending' OR (claimed_by IS NOT NULL AND claimed_at IS NOT NULL AND message_key IS NOT NULL));

-- What a deliverer reads: due rows by time, rows in flight, a message's rows by key, a recipient's
-- rows (recipient_id leads notifications_recipient_idx).
CREATE INDEX notifications_due_idx ON public.notifications (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX notifications_sending_idx ON public.notifications (message_key) WHERE status = 'sending';
CREATE INDEX notifications_finished_idx ON public.notifications (finished_at) WHERE status IN ('failed', 'expired');

-- Quiet hours: [starts, ends) on the local clock, wrapping midnight when starts > ends; equal ends
-- (or NULL) means none. IMMUTABLE, so the planner may inline it.
CREATE FUNCTION app_private.within_quiet_hours(local_time time, starts time, ends time) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE WHEN starts IS NULL OR ends IS NULL OR starts = ends THEN false
                    WHEN starts < ends THEN local_time >= starts AND local_time < ends
                    ELSE local_time >= starts OR local_time < ends END
    $$;
GRANT EXECUTE ON FUNCTION app_private.within_quiet_hours(time, time, time) TO authenticated, service_role;

-- A recipient's own choices. No row means the deployment's defaults (every channel on, the default
-- quiet hours, bokmål). NULL quiet hours mean the default; equal start and end mean none.
CREATE TABLE public.notification_preferences (
    recipient_role    text NOT NULL CHECK (recipient_role IN ('mentor', 'coordinator')),
    recipient_id      uuid NOT NULL,
    push_enabled      boolean NOT NULL DEFAULT true,
    email_enabled     boolean NOT NULL DEFAULT true,
    quiet_hours_start time,
    quiet_hours_end   time,
    language          text NOT NULL DEFAULT 'nb' CHECK (language IN ('nb', 'en')),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient_role, recipient_id),
    CONSTRAINT notification_preferences_quiet_hours_check CHECK ((quiet_hours_start IS NULL) = (quiet_hours_end IS NULL))
);

CREATE FUNCTION app_private.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE TRIGGER notification_preferences_touch BEFORE UPDATE ON public.notification_preferences
    FOR EACH ROW EXECUTE FUNCTION app_private.touch_updated_at();

ALTER TABLE public.notification_preferences ENABLE ROW LEVEL SECURITY;

-- Mentors and coordinators read and change their own preferences, and nobody else's; admins read.
CREATE POLICY notification_preferences_own ON public.notification_preferences FOR ALL TO authenticated
    USING ((recipient_role = 'mentor' AND recipient_id = app_private.current_mentor_id())
           OR (recipient_role = 'coordinator' AND recipient_id = app_private.current_coordinator_id()))
    WITH CHECK ((recipient_role = 'mentor' AND recipient_id = app_private.current_mentor_id())
                OR (recipient_role = 'coordinator' AND recipient_id = app_private.current_coordinator_id()));
CREATE POLICY notification_preferences_admin_read ON public.notification_preferences FOR SELECT TO authenticated
    USING (app_private.is_admin());

REVOKE ALL ON public.notification_preferences FROM anon, authenticated;
GRANT SELECT, INSERT, DELETE ON public.notification_preferences TO authenticated;
GRANT UPDATE (push_enabled, email_enabled, quiet_hours_start, quiet_hours_end, language)
    ON public.notification_preferences TO authenticated;
GRANT ALL ON public.notification_preferences TO service_role;

-- Operations hear when delivery gives up on notifications, once per incident, and when it delivers again.
ALTER TABLE public.ops_alerts DROP CONSTRAINT ops_alerts_kind_check;
ALTER TABLE public.ops_alerts ADD CONSTRAINT ops_alerts_kind_check CHECK (kind IN (
    'consecutive_failures', 'recovered', 'long_running', 'missed_run', 'missed_run_recovered', 'dynamics_sync_dead',
    'notification_delivery_gave_up', 'notification_delivery_recovered'));
