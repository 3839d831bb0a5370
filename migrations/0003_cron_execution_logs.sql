-- One row per scheduled-job invocation: inserted as 'running' before the work starts, updated by
-- primary key when it ends ('success' or 'failed'), or inserted already complete as 'skipped' when
-- another run holds the job's lock. Columns as in the execution-log spec, plus job_name, details
-- (job-specific counts) and dagster_run_id (to link a row to the Dagster run history).
CREATE TABLE public.cron_execution_logs (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_name                  text NOT NULL,
    started_at                timestamptz NOT NULL DEFAULT now(),
    completed_at              timestamptz,
    duration_ms               integer,
    assignments_evaluated     integer DEFAULT 0,
    reminders_dispatched      integer DEFAULT 0,
    status                    text NOT NULL CHECK (status IN ('running', 'success', 'failed', 'skipped')),
    error_message             text,
    consecutive_failure_count integer DEFAULT 0,
    details                   jsonb NOT NULL DEFAULT '{}'::jsonb,
    dagster_run_id            text,
    created_at                timestamptz DEFAULT now(),
    -- A row is complete exactly when it is no longer running.
    CONSTRAINT cron_execution_logs_completion_check CHECK ((status = 'running') = (completed_at IS NULL))
);

CREATE INDEX cron_execution_logs_started_at_idx ON public.cron_execution_logs (started_at DESC);
CREATE INDEX cron_execution_logs_job_started_at_idx ON public.cron_execution_logs (job_name, started_at DESC);
-- At most one open row per job: a second guard behind the advisory lock.
CREATE UNIQUE INDEX cron_execution_logs_one_running_per_job
    ON public.cron_execution_logs (job_name) WHERE status = 'running';

ALTER TABLE public.cron_execution_logs ENABLE ROW LEVEL SECURITY;

-- Admins read; nobody but the service role (which bypasses RLS) writes; mentors and coordinators
-- see nothing.
CREATE POLICY cron_execution_logs_admin_read ON public.cron_execution_logs FOR SELECT TO authenticated
    USING (app_private.is_admin());

REVOKE ALL ON public.cron_execution_logs FROM anon, authenticated;
GRANT SELECT ON public.cron_execution_logs TO authenticated;
GRANT ALL ON public.cron_execution_logs TO service_role;
