"""`ops_alerts`: record an alert once per incident, then its delivery outcome; retry with capped
backoff until delivered, resolve it unsent when its incident closes first, and mark what stayed
undelivered for a day as expired (never drop it)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa

from reminder_pipeline.core.alerts import CLOSES, LONG_RUNNING, MISSED_RUN, MISSED_RUN_RECOVERED, Alert
from reminder_pipeline.core.backoff import Backoff

#: Backoff between delivery attempts: 1, 2, 4, ... minutes, at most 30 (no jitter: one alert at a
#: time). Alerts are never given up by count: they expire by age (EXPIRE_AFTER).
ALERT_BACKOFF = Backoff(base_seconds=60, cap_seconds=30 * 60)
#: An alert still undelivered this long after it was raised is marked expired (and shown).
EXPIRE_AFTER = dt.timedelta(hours=24)


def record(connection: sa.Connection, alert: Alert) -> UUID | None:
    """The new alert's id, or None when this incident was alerted already (nothing to send)."""
    return connection.execute(
        sa.text(
            "INSERT INTO public.ops_alerts"
            " (kind, job_name, execution_log_id, dagster_run_id, payload, subject_id, incident_key)"
            " VALUES (:kind, :job, :log_id, :run_id, CAST(:payload AS jsonb), :subject, :incident)"
            " ON CONFLICT ON CONSTRAINT ops_alerts_once_per_incident DO NOTHING RETURNING id"
        ),
        {
            "kind": alert.kind,
            "job": alert.job_name,
            "log_id": alert.execution_log_id,
            "run_id": alert.dagster_run_id,
            "payload": json.dumps(alert.payload, default=str),
            "subject": alert.subject_id,
            "incident": alert.incident_key,
        },
    ).scalar_one_or_none()


def mark_delivery(connection: sa.Connection, alert_id: UUID, *, delivered: bool, error: str | None) -> None:
    """One attempt more; when it failed, the next is due after the capped exponential backoff."""
    connection.execute(
        sa.text(
            "UPDATE public.ops_alerts SET delivery_attempts = delivery_attempts + 1,"
            " delivered_at = CASE WHEN :delivered THEN clock_timestamp() END, delivery_error = :error,"
            # sent after all, though a recovery resolved it meanwhile: it was sent, not resolved
            " resolved_at = CASE WHEN :delivered THEN NULL ELSE resolved_at END,"
            " next_attempt_at = CASE WHEN :delivered THEN NULL ELSE clock_timestamp()"
            "   + make_interval(secs => least(:cap, :base * power(2, delivery_attempts))) END"
            " WHERE id = :id"
        ),
        {
            "id": alert_id,
            "delivered": delivered,
            "error": error,
            "base": ALERT_BACKOFF.base_seconds,
            "cap": ALERT_BACKOFF.cap_seconds,
        },
    )


#: Neither delivered nor given up on: still to be sent.
_OPEN = "delivered_at IS NULL AND expired_at IS NULL AND resolved_at IS NULL"
#: A `long_running` alert whose run is no longer running.
_LONG_RUN_ENDED = (
    "kind = :long_running AND EXISTS (SELECT 1 FROM public.cron_execution_logs AS l"
    " WHERE l.id = ops_alerts.execution_log_id AND l.status <> 'running')"
)
_DUE = (
    f"{_OPEN}"
    " AND (next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp())"
    " AND created_at > clock_timestamp() - make_interval(secs => :expire_seconds)"
)


def claim_due(connection: sa.Connection, limit: int = 20) -> list[tuple[UUID, Alert]]:
    """Undelivered alerts whose next attempt is due, locked for this transaction; a concurrent
    retrier skips them."""
    rows = connection.execute(
        sa.text(
            "SELECT id, kind, job_name, execution_log_id, dagster_run_id, payload, subject_id, incident_key"
            f" FROM public.ops_alerts WHERE {_DUE} ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"limit": limit, "expire_seconds": EXPIRE_AFTER.total_seconds()},
    ).all()
    return [
        (
            row.id,
            Alert(
                row.kind,
                row.job_name,
                row.execution_log_id,
                row.dagster_run_id,
                row.payload,
                subject_id=row.subject_id,
                incident=row.incident_key,
            ),
        )
        for row in rows
    ]


def mark_waiting_for_channel(connection: sa.Connection, alert_id: UUID, reason: str) -> None:
    """No channel to try: not an attempt, no backoff. The alert waits, and the redelivery sensor
    sends it once a channel is configured."""
    connection.execute(
        sa.text("UPDATE public.ops_alerts SET delivery_error = :reason, next_attempt_at = NULL WHERE id = :id"),
        {"id": alert_id, "reason": reason},
    )


def expire_stale(connection: sa.Connection) -> list[UUID]:
    """Mark alerts undelivered for longer than :data:`EXPIRE_AFTER` as expired; their ids."""
    return _close_open(
        connection,
        "expired_at",
        "created_at <= clock_timestamp() - make_interval(secs => :expire_seconds)",
        {"expire_seconds": EXPIRE_AFTER.total_seconds()},
    )


def _close_open(connection: sa.Connection, stamp: str, condition: str, parameters: dict) -> list[UUID]:
    """Stamp `stamp` (expired_at or resolved_at) on the open alerts that meet `condition`, so none is
    retried again; their ids."""
    return list(
        connection.execute(
            sa.text(
                f"UPDATE public.ops_alerts SET {stamp} = clock_timestamp(), next_attempt_at = NULL"
                f" WHERE {_OPEN} AND {condition} RETURNING id"
            ),
            parameters,
        )
        .scalars()
        .all()
    )


@dataclass(frozen=True)
class DeliveryBacklog:
    """What the redelivery sensor reads (and nothing else): enough to decide whether to launch."""

    due: int
    to_expire: int
    #: Unsent `long_running` alerts whose run has ended: a redelivery run resolves them.
    to_resolve: int
    #: Changes whenever the backlog does, so a run key derived from it asks for one run per state.
    fingerprint: str


def backlog(connection: sa.Connection) -> DeliveryBacklog:
    row = connection.execute(
        sa.text(
            f"SELECT count(*) FILTER (WHERE {_DUE}) AS due,"
            " count(*) FILTER (WHERE created_at <= clock_timestamp() - make_interval(secs => :expire_seconds))"
            "   AS to_expire,"
            f" count(*) FILTER (WHERE {_LONG_RUN_ENDED}) AS to_resolve,"
            " coalesce(md5(string_agg(id::text || ':' || delivery_attempts, ',' ORDER BY id)), '') AS fingerprint"
            f" FROM public.ops_alerts WHERE {_OPEN}"
        ),
        {"expire_seconds": EXPIRE_AFTER.total_seconds(), "long_running": LONG_RUNNING},
    ).one()
    return DeliveryBacklog(row.due, row.to_expire, row.to_resolve, row.fingerprint)


def resolve_closed(connection: sa.Connection, closing: Alert) -> list[UUID]:
    """The unsent alert of the incident `closing` closes (see `CLOSES`), resolved; its id."""
    opened = CLOSES.get(closing.kind)
    if opened is None:
        return []
    return _close_open(
        connection,
        "resolved_at",
        "kind = :opened AND job_name = :job AND incident_key = :incident",
        {"opened": opened, "job": closing.job_name, "incident": closing.incident_key},
    )


def resolve_finished_long_runs(connection: sa.Connection) -> list[UUID]:
    """Unsent `long_running` alerts whose run has finished since, resolved; their ids."""
    return _close_open(connection, "resolved_at", _LONG_RUN_ENDED, {"long_running": LONG_RUNNING})


def is_recorded(connection: sa.Connection, alert: Alert) -> bool:
    return bool(
        connection.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM public.ops_alerts"
                " WHERE kind = :kind AND job_name = :job AND incident_key = :incident)"
            ),
            {"kind": alert.kind, "job": alert.job_name, "incident": alert.incident_key},
        ).scalar()
    )


def undelivered_alerts(connection: sa.Connection, job_name: str | None = None, limit: int = 50) -> list[sa.Row]:
    """Alerts not delivered yet, expired ones included, newest first: what `logs` shows on-call."""
    return connection.execute(
        sa.text(
            "SELECT id, kind, job_name, created_at, delivery_attempts, delivery_error, expired_at"
            " FROM public.ops_alerts WHERE delivered_at IS NULL AND resolved_at IS NULL"
            " AND (CAST(:job AS text) IS NULL OR job_name = :job) ORDER BY created_at DESC LIMIT :limit"
        ),
        {"job": job_name, "limit": limit},
    ).all()


def last_success_at(connection: sa.Connection, job_name: str) -> dt.datetime | None:
    return connection.execute(
        sa.text(
            "SELECT completed_at FROM public.cron_execution_logs WHERE job_name = :job AND status = 'success'"
            " ORDER BY started_at DESC LIMIT 1"
        ),
        {"job": job_name},
    ).scalar_one_or_none()


def log_row_of_run(connection: sa.Connection, dagster_run_id: str) -> sa.Row | None:
    """The execution-log row a Dagster run wrote, if it got that far."""
    return connection.execute(
        sa.text(
            "SELECT id, error_message, consecutive_failure_count FROM public.cron_execution_logs"
            " WHERE dagster_run_id = :run_id ORDER BY started_at DESC LIMIT 1"
        ),
        {"run_id": dagster_run_id},
    ).one_or_none()


def open_incident(connection: sa.Connection, kind: str, closed_by: str, job_name: str) -> str | None:
    """The incident key of the newest `kind` alert of `job_name` without a `closed_by` alert of its own."""
    return connection.execute(
        sa.text(
            "SELECT opened.incident_key FROM public.ops_alerts AS opened"
            " WHERE opened.kind = :kind AND opened.job_name = :job AND NOT EXISTS ("
            "   SELECT 1 FROM public.ops_alerts AS closed WHERE closed.kind = :closed_by"
            "   AND closed.job_name = opened.job_name AND closed.incident_key = opened.incident_key)"
            " ORDER BY opened.created_at DESC LIMIT 1"
        ),
        {"kind": kind, "closed_by": closed_by, "job": job_name},
    ).scalar_one_or_none()


def running_longer_than(connection: sa.Connection, minutes: float) -> list[sa.Row]:
    """Log rows still `running` after `minutes`, with how long they have run (whole minutes)."""
    return list(
        connection.execute(
            sa.text(
                "SELECT id, job_name, dagster_run_id, started_at,"
                " floor(extract(epoch FROM clock_timestamp() - started_at) / 60)::int AS minutes"
                " FROM public.cron_execution_logs WHERE status = 'running'"
                " AND started_at < clock_timestamp() - make_interval(secs => :minutes * 60)"
            ),
            {"minutes": minutes},
        ).all()
    )


def success_state(connection: sa.Connection, job_name: str) -> sa.Row:
    """A job's last success (id, completed_at), its first log row's start, and the database's now."""
    return connection.execute(
        sa.text(
            "SELECT s.id AS last_success_id, s.completed_at AS last_success_at,"
            " (SELECT min(started_at) FROM public.cron_execution_logs WHERE job_name = :job) AS first_seen,"
            " clock_timestamp() AS now"
            " FROM (SELECT 1) AS one LEFT JOIN LATERAL ("
            "  SELECT id, completed_at FROM public.cron_execution_logs"
            "  WHERE job_name = :job AND status = 'success' ORDER BY started_at DESC LIMIT 1) AS s ON true"
        ),
        {"job": job_name},
    ).one()


def open_missed_run_incidents(connection: sa.Connection, job_name: str, current_success: UUID | None) -> list[UUID]:
    """The missed-run incidents of a job not yet closed by a recovery alert, other than the one of
    its current last success."""
    return list(
        connection.execute(
            sa.text(
                "SELECT missed.execution_log_id FROM public.ops_alerts AS missed"
                " WHERE missed.kind = :missed AND missed.job_name = :job"
                " AND missed.execution_log_id IS DISTINCT FROM CAST(:current AS uuid)"
                " AND NOT EXISTS (SELECT 1 FROM public.ops_alerts AS back WHERE back.kind = :back"
                "   AND back.job_name = missed.job_name"
                "   AND back.execution_log_id IS NOT DISTINCT FROM missed.execution_log_id)"
            ),
            {"missed": MISSED_RUN, "back": MISSED_RUN_RECOVERED, "job": job_name, "current": current_success},
        ).scalars()
    )
