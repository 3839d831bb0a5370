-- Every operations alert, recorded before it is delivered. The unique key makes "exactly once per
-- incident" a database rule: a retried finalisation or a restarted sensor finds the row and sends
-- nothing. execution_log_id is the row the incident is about (the failed run that reached the
-- threshold, the success after it, the run still running, or the last success before a missed run,
-- NULL when the job never succeeded); NULLS NOT DISTINCT (PostgreSQL 15+) makes NULL count too.
CREATE TABLE public.ops_alerts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind             text NOT NULL CHECK (kind IN ('consecutive_failures', 'recovered', 'long_running',
                                                   'missed_run', 'missed_run_recovered')),
    job_name         text NOT NULL,
    execution_log_id uuid REFERENCES public.cron_execution_logs (id),
    dagster_run_id   text,
    payload          jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    delivery_attempts integer NOT NULL DEFAULT 0,
    delivery_error   text,
    CONSTRAINT ops_alerts_once_per_incident UNIQUE NULLS NOT DISTINCT (kind, job_name, execution_log_id)
);
CREATE INDEX ops_alerts_undelivered_idx ON public.ops_alerts (created_at) WHERE delivered_at IS NULL;

ALTER TABLE public.ops_alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY ops_alerts_admin_read ON public.ops_alerts FOR SELECT TO authenticated
    USING (app_private.is_admin());
REVOKE ALL ON public.ops_alerts FROM anon, authenticated;
GRANT SELECT ON public.ops_alerts TO authenticated;
GRANT ALL ON public.ops_alerts TO service_role;
