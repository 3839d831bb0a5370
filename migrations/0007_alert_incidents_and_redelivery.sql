-- Alerts are decided from Dagster's run storage as well as from the execution log, so an incident is
-- named by a key of its own (a log row, a Dagster run, a sync event), not only by a log row.
-- Undelivered alerts are retried with capped backoff until delivered; after 24 hours they are marked
-- expired (and shown), never silently dropped.
ALTER TABLE public.ops_alerts
    ADD COLUMN incident_key    text,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN expired_at      timestamptz;

UPDATE public.ops_alerts
SET incident_key = coalesce(execution_log_id::text, '') || '/' || coalesce(subject_id::text, '');

ALTER TABLE public.ops_alerts ALTER COLUMN incident_key SET NOT NULL;
ALTER TABLE public.ops_alerts DROP CONSTRAINT ops_alerts_once_per_incident;
ALTER TABLE public.ops_alerts ADD CONSTRAINT ops_alerts_once_per_incident UNIQUE (kind, job_name, incident_key);

DROP INDEX public.ops_alerts_undelivered_idx;
CREATE INDEX ops_alerts_due_idx ON public.ops_alerts (next_attempt_at)
    WHERE delivered_at IS NULL AND expired_at IS NULL;
