"""The execution log (`cron_execution_logs`) and the per-job advisory lock.

Every scheduled job goes through the same two-step write: a row inserted as `running` before the
work, then one UPDATE by primary key when it ends. A run that finds the job's lock taken inserts a
row already complete as `skipped`. Plain functions over a SQLAlchemy connection in autocommit mode;
the Dagster wiring lives in :mod:`reminder_pipeline.core.guarded_run`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pydantic
import sqlalchemy as sa

from reminder_pipeline.core.errors import SanitizedError, validation_problems

ABANDONED_MESSAGE = "abandoned: the process running this job ended before it finalised its log row"
MAX_ERROR_MESSAGE_LENGTH = 500

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d(?:[\s-]?\d){7,14}(?![\w-])")
#: A credential that slipped into an error text (an HTTP header, a URL's query).
_CREDENTIAL = re.compile(r"(?i)(bearer\s+|basic\s+|(?:token|key|secret|password)=)[^\s'\\&]+")


@dataclass(frozen=True)
class FinishedRun:
    """What a finalised log row says; the alerting layer builds on it."""

    row_id: UUID
    job_name: str
    status: str
    consecutive_failure_count: int
    error_message: str | None
    dagster_run_id: str | None
    completed_at: dt.datetime


def try_acquire_job_lock(connection: sa.Connection, lock_key: int) -> bool:
    """Session-level lock (the key is the job's `JobSpec.lock_key`): it lives as long as
    `connection` and dies with it if the process crashes."""
    return bool(connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key}).scalar())


def release_job_lock(connection: sa.Connection, lock_key: int) -> None:
    connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key})


def safe_error_message(error: BaseException) -> str:
    """A one-line description without personal data: PostgreSQL's DETAIL lines (which may quote row
    values) are dropped, anything shaped like an e-mail address or phone number is masked."""
    if isinstance(error, SanitizedError):
        return str(error)[:MAX_ERROR_MESSAGE_LENGTH]
    original = getattr(error, "orig", None)
    diag = getattr(original, "diag", None)
    if diag is not None and getattr(diag, "message_primary", None):
        text = f"{type(original).__name__}: {diag.message_primary}"
    elif isinstance(error, pydantic.ValidationError):  # a run config refused in the op
        text = f"invalid {error.title}: {validation_problems(error)}"
    else:
        lines = str(error).strip().splitlines()
        text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    text = _CREDENTIAL.sub(r"\1[secret]", _PHONE.sub("[phone]", _EMAIL.sub("[email]", text)))
    return text[:MAX_ERROR_MESSAGE_LENGTH]


def start_run(connection: sa.Connection, job_name: str, dagster_run_id: str | None = None) -> UUID:
    """Insert the `running` row; call only while holding the job's lock."""
    return connection.execute(
        sa.text(
            "INSERT INTO public.cron_execution_logs (job_name, started_at, status, dagster_run_id)"
            " VALUES (:job, clock_timestamp(), 'running', :run_id) RETURNING id"
        ),
        {"job": job_name, "run_id": dagster_run_id},
    ).scalar_one()


def record_skipped(connection: sa.Connection, job_name: str, dagster_run_id: str | None = None) -> UUID:
    """A run that found the lock held: complete at once, no duration, no counts."""
    return connection.execute(
        sa.text(
            "INSERT INTO public.cron_execution_logs (job_name, started_at, completed_at, status, dagster_run_id)"
            " VALUES (:job, clock_timestamp(), clock_timestamp(), 'skipped', :run_id) RETURNING id"
        ),
        {"job": job_name, "run_id": dagster_run_id},
    ).scalar_one()


_FINISH_RETURNING = (
    "RETURNING log.id, log.job_name, log.status, log.consecutive_failure_count, log.error_message,"
    " log.dagster_run_id, log.completed_at"
)


def _finished(row: sa.Row[Any] | None) -> FinishedRun | None:
    return FinishedRun(*row) if row is not None else None


def add_dispatched(connection: sa.Connection, row_id: UUID, created: int) -> None:
    """Count notifications on the open row inside the transaction that created them: a crash after
    that commit cannot leave the log saying less than what was written."""
    connection.execute(
        sa.text(
            "UPDATE public.cron_execution_logs SET reminders_dispatched = reminders_dispatched + :created"
            " WHERE id = :id AND status = 'running'"
        ),
        {"id": row_id, "created": created},
    )


def finish_success(
    connection: sa.Connection,
    row_id: UUID,
    *,
    assignments_evaluated: int,
    reminders_dispatched: int,
    details: dict[str, Any] | None = None,
) -> FinishedRun | None:
    """One UPDATE by primary key; a row that is no longer `running` is left alone (returns None)."""
    row = connection.execute(
        sa.text(
            "UPDATE public.cron_execution_logs AS log SET status = 'success', completed_at = clock_timestamp(),"
            " duration_ms = (extract(epoch FROM clock_timestamp() - log.started_at) * 1000)::integer,"
            " assignments_evaluated = :evaluated, reminders_dispatched = :dispatched,"
            " consecutive_failure_count = 0, error_message = NULL, details = CAST(:details AS jsonb)"
            f" WHERE log.id = :id AND log.status = 'running' {_FINISH_RETURNING}"
        ),
        {
            "id": row_id,
            "evaluated": assignments_evaluated,
            "dispatched": reminders_dispatched,
            "details": json.dumps(details or {}, default=str),
        },
    ).one_or_none()
    return _finished(row)


def finish_failure(
    connection: sa.Connection, row_id: UUID, error_message: str, *, consecutive_failures: int
) -> FinishedRun | None:
    """One UPDATE by primary key. `consecutive_failures` is the run's place in its job's failure
    streak, which Dagster's run storage counts (:func:`reminder_pipeline.core.run_history.failure_streak`):
    the row records the count the operations alert uses, never a second count of its own."""
    row = connection.execute(
        sa.text(
            "UPDATE public.cron_execution_logs AS log SET status = 'failed', completed_at = clock_timestamp(),"
            " duration_ms = (extract(epoch FROM clock_timestamp() - log.started_at) * 1000)::integer,"
            " error_message = :message, consecutive_failure_count = :streak"
            f" WHERE log.id = :id AND log.status = 'running' {_FINISH_RETURNING}"
        ),
        {"id": row_id, "message": error_message[:MAX_ERROR_MESSAGE_LENGTH], "streak": consecutive_failures},
    ).one_or_none()
    return _finished(row)


#: A closed row's place in its job's failure streak, from its job and Dagster run id (None: no run known).
StreakOf = Callable[[str, str | None], int]


def _close_as_abandoned(connection: sa.Connection, rows: sa.Result[Any], streak_of: StreakOf) -> list[FinishedRun]:
    closed = [
        finish_failure(connection, row_id, ABANDONED_MESSAGE, consecutive_failures=streak_of(job_name, run_id))
        for row_id, job_name, run_id in list(rows)
    ]
    return [run for run in closed if run is not None]


def close_abandoned_runs(connection: sa.Connection, job_name: str, streak_of: StreakOf) -> list[FinishedRun]:
    """Close rows left `running` by a process that died. Call only while holding the job's lock:
    holding it proves that no other run of the job is alive."""
    rows = connection.execute(
        sa.text(
            "SELECT id, job_name, dagster_run_id FROM public.cron_execution_logs"
            " WHERE job_name = :job AND status = 'running' ORDER BY started_at"
        ),
        {"job": job_name},
    )
    return _close_as_abandoned(connection, rows, streak_of)


def close_rows_of_runs(connection: sa.Connection, dagster_run_ids: list[str], streak_of: StreakOf) -> list[FinishedRun]:
    """Close the `running` rows of Dagster runs known to be dead (see the dead-runs job)."""
    if not dagster_run_ids:
        return []
    rows = connection.execute(
        sa.text(
            "SELECT id, job_name, dagster_run_id FROM public.cron_execution_logs WHERE status = 'running'"
            " AND dagster_run_id = ANY(:run_ids) ORDER BY started_at"
        ),
        {"run_ids": list(dagster_run_ids)},
    )
    return _close_as_abandoned(connection, rows, streak_of)


def recent_runs(connection: sa.Connection, job_name: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
    """The newest log rows, for the CLI and the admin API."""
    rows = connection.execute(
        sa.text(
            "SELECT id, job_name, status, started_at, completed_at, duration_ms, assignments_evaluated,"
            " reminders_dispatched, consecutive_failure_count, error_message"
            " FROM public.cron_execution_logs"
            " WHERE CAST(:job AS text) IS NULL OR job_name = :job"
            " ORDER BY started_at DESC LIMIT :limit"
        ),
        {"job": job_name, "limit": limit},
    ).mappings()
    return [dict(row) for row in rows]


def newest_success_started_at(connection: sa.Connection, job_name: str, covering: dict[str, Any]) -> dt.datetime | None:
    """When the newest successful run of `job_name` whose details contain `covering` started (a
    rerun for the same date and rules needs to read only what changed since), or None."""
    return connection.execute(
        sa.text(
            "SELECT started_at FROM public.cron_execution_logs WHERE job_name = :job AND status = 'success'"
            " AND details @> CAST(:covering AS jsonb) ORDER BY started_at DESC LIMIT 1"
        ),
        {"job": job_name, "covering": json.dumps(covering, default=str)},
    ).scalar_one_or_none()


def row_of_run(connection: sa.Connection, dagster_run_id: str) -> sa.Row[Any] | None:
    """The log row a Dagster run wrote (status, counts, error), or None: a run that never got as far."""
    return connection.execute(
        sa.text(
            "SELECT status, assignments_evaluated, reminders_dispatched, error_message"
            " FROM public.cron_execution_logs WHERE dagster_run_id = :run_id"
        ),
        {"run_id": dagster_run_id},
    ).one_or_none()
