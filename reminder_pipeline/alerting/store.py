"""`ops_alerts`: record an alert once per incident, then its delivery outcome."""

from __future__ import annotations

import datetime as dt
import json
from uuid import UUID

import sqlalchemy as sa

from reminder_pipeline.core.alerts import Alert


def record(connection: sa.Connection, alert: Alert) -> UUID | None:
    """The new alert's id, or None when this incident was alerted already (nothing to send)."""
    return connection.execute(
        sa.text(
            "INSERT INTO public.ops_alerts (kind, job_name, execution_log_id, dagster_run_id, payload, subject_id)"
            " VALUES (:kind, :job, :log_id, :run_id, CAST(:payload AS jsonb), :subject)"
            " ON CONFLICT ON CONSTRAINT ops_alerts_once_per_incident DO NOTHING RETURNING id"
        ),
        {
            "kind": alert.kind,
            "job": alert.job_name,
            "log_id": alert.execution_log_id,
            "run_id": alert.dagster_run_id,
            "payload": json.dumps(alert.payload, default=str),
            "subject": alert.subject_id,
        },
    ).scalar_one_or_none()


def mark_delivery(connection: sa.Connection, alert_id: UUID, *, delivered: bool, error: str | None) -> None:
    connection.execute(
        sa.text(
            "UPDATE public.ops_alerts SET delivery_attempts = delivery_attempts + 1,"
            " delivered_at = CASE WHEN :delivered THEN clock_timestamp() END, delivery_error = :error"
            " WHERE id = :id"
        ),
        {"id": alert_id, "delivered": delivered, "error": error},
    )


def claim_undelivered(connection: sa.Connection, max_attempts: int, limit: int = 20) -> list[tuple[UUID, Alert]]:
    """Undelivered alerts to retry, locked for this transaction; a concurrent retrier skips them."""
    rows = connection.execute(
        sa.text(
            "SELECT id, kind, job_name, execution_log_id, dagster_run_id, payload, subject_id FROM public.ops_alerts"
            " WHERE delivered_at IS NULL AND delivery_attempts < :max ORDER BY created_at LIMIT :limit"
            " FOR UPDATE SKIP LOCKED"
        ),
        {"max": max_attempts, "limit": limit},
    ).all()
    return [
        (row.id, Alert(row.kind, row.job_name, row.execution_log_id, row.dagster_run_id, row.payload)) for row in rows
    ]


def last_success_at(connection: sa.Connection, job_name: str) -> dt.datetime | None:
    return connection.execute(
        sa.text(
            "SELECT completed_at FROM public.cron_execution_logs WHERE job_name = :job AND status = 'success'"
            " ORDER BY started_at DESC LIMIT 1"
        ),
        {"job": job_name},
    ).scalar_one_or_none()
