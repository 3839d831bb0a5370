-- An alert that was never sent and whose incident has closed since (the job recovered, the missed
-- run succeeded, delivery works again, the long run ended) is resolved, not retried: it would tell
-- on-call about a problem that is over, and it kept `logs` showing "retrying" for a day.
-- The row is kept (nothing is dropped); `resolved_at` says when the incident closed.
ALTER TABLE public.ops_alerts
    ADD COLUMN resolved_at timestamptz,
    ADD CONSTRAINT ops_alerts_resolved_only_if_unsent CHECK (resolved_at IS NULL OR delivered_at IS NULL);

DROP INDEX public.ops_alerts_due_idx;
CREATE INDEX ops_alerts_due_idx ON public.ops_alerts (next_attempt_at)
    WHERE delivered_at IS NULL AND expired_at IS NULL AND resolved_at IS NULL;
