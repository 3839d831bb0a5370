-- Certifications, expiry reminders, auto-pause, and the Dynamics sync outbox (the saga).

CREATE TABLE public.certifications (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mentor_id          uuid NOT NULL REFERENCES public.peer_mentors (id),
    certification_type text NOT NULL,
    issued_on          date NOT NULL,
    -- The first day the certification is no longer valid.
    expires_on         date NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (expires_on > issued_on)
);
CREATE INDEX certifications_mentor_idx ON public.certifications (mentor_id, expires_on DESC);

-- One row per (mentor, threshold, certification) ever notified: the unique key is what makes two
-- concurrent nightly runs unable to send the same reminder twice.
CREATE TABLE public.cert_notification_log (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mentor_id      uuid NOT NULL REFERENCES public.peer_mentors (id),
    cert_id        uuid NOT NULL REFERENCES public.certifications (id),
    threshold_days integer NOT NULL CHECK (threshold_days > 0),
    notified_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cert_notification_log_once UNIQUE (mentor_id, threshold_days, cert_id)
);

CREATE TABLE public.mentor_pause_history (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mentor_id  uuid NOT NULL REFERENCES public.peer_mentors (id),
    reason     text NOT NULL,
    paused_by  text NOT NULL,
    cert_id    uuid REFERENCES public.certifications (id),
    paused_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mentor_pause_history_mentor_idx ON public.mentor_pause_history (mentor_id, paused_at DESC);

-- The saga's outbox: written in the same transaction as the pause, delivered by the dynamics_sync
-- job. dedupe_key makes "one sync per event" a database rule.
CREATE TABLE public.dynamics_sync_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mentor_id       uuid NOT NULL REFERENCES public.peer_mentors (id),
    action          text NOT NULL CHECK (action IN ('pause', 'unpause')),
    payload         jsonb NOT NULL,
    dedupe_key      text NOT NULL UNIQUE,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'synced', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    synced_at       timestamptz
);
CREATE INDEX dynamics_sync_events_due_idx ON public.dynamics_sync_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX dynamics_sync_events_mentor_idx ON public.dynamics_sync_events (mentor_id);

-- Alerts a coordinator sees in the dashboard, for their own mentors only.
CREATE TABLE public.coordinator_alerts (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    coordinator_id uuid NOT NULL REFERENCES public.coordinators (id),
    mentor_id      uuid NOT NULL REFERENCES public.peer_mentors (id),
    kind           text NOT NULL CHECK (kind IN ('dynamics_sync_pending')),
    message        text NOT NULL,
    sync_event_id  uuid REFERENCES public.dynamics_sync_events (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz
);
-- At most one open alert of a kind per mentor.
CREATE UNIQUE INDEX coordinator_alerts_one_open ON public.coordinator_alerts (mentor_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX coordinator_alerts_coordinator_idx ON public.coordinator_alerts (coordinator_id, created_at DESC);

-- A dead Dynamics event is an operations incident of its own: alerts can now name their subject.
ALTER TABLE public.ops_alerts ADD COLUMN subject_id uuid;
ALTER TABLE public.ops_alerts DROP CONSTRAINT ops_alerts_once_per_incident;
ALTER TABLE public.ops_alerts ADD CONSTRAINT ops_alerts_once_per_incident
    UNIQUE NULLS NOT DISTINCT (kind, job_name, execution_log_id, subject_id);
ALTER TABLE public.ops_alerts DROP CONSTRAINT ops_alerts_kind_check;
ALTER TABLE public.ops_alerts ADD CONSTRAINT ops_alerts_kind_check CHECK (kind IN (
    'consecutive_failures', 'recovered', 'long_running', 'missed_run', 'missed_run_recovered', 'dynamics_sync_dead'));

-- Row-level security.
ALTER TABLE public.certifications        ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.cert_notification_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.mentor_pause_history  ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.dynamics_sync_events  ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.coordinator_alerts    ENABLE ROW LEVEL SECURITY;

CREATE POLICY certifications_read ON public.certifications FOR SELECT TO authenticated
    USING (app_private.is_admin() OR mentor_id = app_private.current_mentor_id()
           OR app_private.coordinates_mentor(mentor_id));
CREATE POLICY cert_notification_log_admin_read ON public.cert_notification_log FOR SELECT TO authenticated
    USING (app_private.is_admin());
CREATE POLICY mentor_pause_history_read ON public.mentor_pause_history FOR SELECT TO authenticated
    USING (app_private.is_admin() OR app_private.coordinates_mentor(mentor_id));
CREATE POLICY dynamics_sync_events_admin_read ON public.dynamics_sync_events FOR SELECT TO authenticated
    USING (app_private.is_admin());
-- Coordinators read the alerts about their own mentors; nobody else does.
CREATE POLICY coordinator_alerts_own ON public.coordinator_alerts FOR SELECT TO authenticated
    USING (coordinator_id = app_private.current_coordinator_id() AND app_private.coordinates_mentor(mentor_id));

REVOKE ALL ON public.certifications, public.cert_notification_log, public.mentor_pause_history,
    public.dynamics_sync_events, public.coordinator_alerts FROM anon, authenticated;
GRANT SELECT ON public.certifications, public.cert_notification_log, public.mentor_pause_history,
    public.dynamics_sync_events, public.coordinator_alerts TO authenticated;
GRANT ALL ON public.certifications, public.cert_notification_log, public.mentor_pause_history,
    public.dynamics_sync_events, public.coordinator_alerts TO service_role;
