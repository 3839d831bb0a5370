-- Watch the watcher (docs/deployment.md): the database itself can tell that a scheduled job did not
-- run, with no Dagster process alive. `job_schedules` holds each scheduled job's expected daily time
-- (written by `reminder-pipeline migrate` and `watchdog` from the jobs' declarations);
-- `public.record_overdue_jobs()` compares it with the execution log and records every expected run
-- that has no success, once per expected run, in `schedule_overdue`. `reminder-pipeline watchdog`
-- (cron or a systemd timer) calls it, and so does pg_cron every five minutes where that extension is
-- installed (Supabase has it); `logs`, the admin API and the asset checks read `schedule_overdue`.

CREATE TABLE public.job_schedules (
    job_name   text PRIMARY KEY CHECK (job_name ~ '^[a-z][a-z0-9_]{0,62}$'),
    cron       text NOT NULL CHECK (length(cron) <= 100),
    -- The expected run: every day at this local time, in this time zone.
    daily_at   time NOT NULL,
    timezone   text NOT NULL CHECK (length(timezone) <= 64),
    -- How long after the expected time a success must exist before the run counts as overdue.
    grace      interval NOT NULL DEFAULT interval '30 minutes'
        CHECK (grace >= interval '1 minute' AND grace <= interval '23 hours'),
    -- Expected runs before this are not watched: a new install is not overdue for yesterday.
    watched_since timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.schedule_overdue (
    job_name    text NOT NULL REFERENCES public.job_schedules (job_name) ON DELETE CASCADE,
    expected_at timestamptz NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    detected_by text NOT NULL CHECK (detected_by IN ('watchdog', 'pg_cron')),
    -- Set when a successful run for that expected time (or a later one) appears.
    resolved_at timestamptz,
    PRIMARY KEY (job_name, expected_at),
    CONSTRAINT schedule_overdue_resolution_check CHECK (resolved_at IS NULL OR resolved_at >= detected_at)
);

CREATE INDEX schedule_overdue_open_idx ON public.schedule_overdue (job_name) WHERE resolved_at IS NULL;

-- The newest expected run of each schedule whose grace has passed (none before watching began).
CREATE FUNCTION app_private.expected_runs() RETURNS TABLE (job_name text, expected_at timestamptz)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public
    AS $$
    SELECT s.job_name, e.expected_at
    FROM public.job_schedules AS s
    CROSS JOIN LATERAL (SELECT ((now() AT TIME ZONE s.timezone)::date + s.daily_at) AT TIME ZONE s.timezone) AS t (today)
    CROSS JOIN LATERAL (
        SELECT CASE WHEN t.today <= now() - s.grace THEN t.today ELSE t.today - interval '1 day' END
    ) AS e (expected_at)
    WHERE e.expected_at >= s.watched_since
$$;

-- The one rule for "this expected run happened": a success that started at most a minute before it
-- (clock skew) or later.
CREATE FUNCTION app_private.success_covers(job text, expected timestamptz) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public
    AS $$
    SELECT EXISTS (SELECT 1 FROM public.cron_execution_logs AS l
                   WHERE l.job_name = job AND l.status = 'success' AND l.started_at >= expected - interval '1 minute')
$$;

-- What is overdue now: recorded, not resolved, and not covered by a success since (which the next
-- pass of the watchdog or pg_cron will record as resolved). `logs`, the admin API and the asset
-- check read this view; security_invoker keeps the tables' row-level security for whoever reads it.
-- (Two relations in FROM: PostgreSQL 15 and 16+ then print the definition alike, which schema.sql needs.)
CREATE VIEW public.open_schedule_overdue WITH (security_invoker = true) AS
    SELECT o.job_name, o.expected_at, o.detected_at, o.detected_by, s.last_success_at
    FROM public.schedule_overdue AS o
    LEFT JOIN LATERAL (SELECT max(l.started_at) AS last_success_at FROM public.cron_execution_logs AS l
                       WHERE l.job_name = o.job_name AND l.status = 'success') AS s ON true
    WHERE o.resolved_at IS NULL AND NOT app_private.success_covers(o.job_name, o.expected_at);

-- Record every expected run without a success (once), resolve the records a success now covers,
-- and return what is still overdue.
CREATE FUNCTION public.record_overdue_jobs(detector text DEFAULT 'pg_cron')
    RETURNS TABLE (job_name text, expected_at timestamptz, last_success_at timestamptz)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public
    AS $$
BEGIN
    UPDATE public.schedule_overdue AS o SET resolved_at = greatest(now(), o.detected_at)
    WHERE o.resolved_at IS NULL AND app_private.success_covers(o.job_name, o.expected_at);

    INSERT INTO public.schedule_overdue (job_name, expected_at, detected_by)
    SELECT e.job_name, e.expected_at, detector
    FROM app_private.expected_runs() AS e
    WHERE NOT app_private.success_covers(e.job_name, e.expected_at)
    ON CONFLICT ON CONSTRAINT schedule_overdue_pkey DO NOTHING;

    RETURN QUERY
    SELECT v.job_name, v.expected_at, v.last_success_at
    FROM public.open_schedule_overdue AS v
    ORDER BY v.job_name, v.expected_at;
END
$$;

REVOKE ALL ON FUNCTION public.record_overdue_jobs(text) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.record_overdue_jobs(text) TO service_role;

ALTER TABLE public.job_schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.schedule_overdue ENABLE ROW LEVEL SECURITY;

-- Admins read both; only the service role (which bypasses RLS) writes; mentors and coordinators see
-- nothing.
CREATE POLICY job_schedules_admin_read ON public.job_schedules FOR SELECT TO authenticated
    USING (app_private.is_admin());
CREATE POLICY schedule_overdue_admin_read ON public.schedule_overdue FOR SELECT TO authenticated
    USING (app_private.is_admin());

REVOKE ALL ON public.job_schedules, public.schedule_overdue, public.open_schedule_overdue FROM anon, authenticated;
GRANT SELECT ON public.job_schedules, public.schedule_overdue, public.open_schedule_overdue TO authenticated;
GRANT ALL ON public.job_schedules, public.schedule_overdue TO service_role;
GRANT SELECT ON public.open_schedule_overdue TO service_role;

-- Operations hear from `reminder-pipeline watchdog` itself when the daemon is down or a scheduled
-- run is overdue (once per incident), because the daemon that normally delivers alerts may be dead.
ALTER TABLE public.ops_alerts DROP CONSTRAINT ops_alerts_kind_check;
ALTER TABLE public.ops_alerts ADD CONSTRAINT ops_alerts_kind_check CHECK (kind IN (
    'consecutive_failures', 'recovered', 'long_running', 'missed_run', 'missed_run_recovered', 'dynamics_sync_dead',
    'notification_delivery_gave_up', 'notification_delivery_recovered', 'daemon_down', 'schedule_overdue'));

-- pg_cron, where it is installed (Supabase; Debian's postgresql-15-cron): the database records
-- overdue runs every five minutes by itself. Elsewhere this does nothing.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.schedule('reminder-pipeline-overdue-jobs', '*/5 * * * *',
                              $cmd$SELECT count(*) FROM public.record_overdue_jobs('pg_cron')$cmd$);
    END IF;
END
$$;
