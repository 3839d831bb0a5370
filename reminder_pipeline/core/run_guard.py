"""The resource that holds a job's advisory lock and its execution-log row for one run.

It keeps one dedicated connection for the whole run: the job's advisory lock lives on it (so a job
must use ``in_process_executor``). Its teardown marks a row still `running` as `failed` (run
interrupted) and closes the connection, which releases the lock even if no op got to do it. A
watchdog thread cancels the run's queries when the run is terminated.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from dagster import ConfigurableResource, DagsterInstance, DagsterRunStatus, InitResourceContext
from pydantic import PrivateAttr

from reminder_pipeline.core import execution_log
from reminder_pipeline.core.checks import CheckResult
from reminder_pipeline.core.database import connect, require_migrated, run_application_name
from reminder_pipeline.core.errors import ReminderPipelineError
from reminder_pipeline.core.jobs import JobSpec
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.core.run_history import failure_streak

#: How often a run checks whether it was asked to terminate.
TERMINATE_POLL_SECONDS = 2.0

INTERRUPTED_MESSAGE = "interrupted: the run ended before the job finalised its log row"


@dataclass(frozen=True)
class RunTicket:
    """Proof, passed from op to op, that this run holds the job's lock and has an open log row."""

    job_name: str
    lock_key: int
    #: None in a dry run: it takes no lock and writes no log row.
    log_row_id: UUID | None
    dry_run: bool = False


@dataclass(frozen=True)
class JobOutcome:
    """What a job's work produced: how many things it looked at and how many it created (or
    delivered, or synced); the job's JobSpec.counts name them in its own words. They go to the log
    row's `assignments_evaluated` and `reminders_dispatched` columns (the names the spec fixed)."""

    evaluated: int
    created: int
    details: dict[str, Any] = field(default_factory=dict)
    #: The asset's checks the run evaluated while it worked, by name (`checks.evaluate_during_run`):
    #: the finishing op logs these instead of evaluating them again.
    checks: dict[str, CheckResult] = field(default_factory=dict)


class JobRunGuard(ConfigurableResource):
    """Holds a job's advisory lock and its execution-log row for the length of one run."""

    database: PipelineDatabase

    _connection: sa.Connection | None = PrivateAttr(default=None)
    _started: float | None = PrivateAttr(default=None)
    _ticket: RunTicket | None = PrivateAttr(default=None)
    _finished: execution_log.FinishedRun | None = PrivateAttr(default=None)
    _instance: DagsterInstance | None = PrivateAttr(default=None)
    _run_id: str | None = PrivateAttr(default=None)

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator["JobRunGuard"]:
        stop = threading.Event()
        watchdog = None
        self._instance, self._run_id = context.instance, context.run_id
        if context.instance is not None and context.run_id is not None:
            watchdog = threading.Thread(
                target=self._cancel_queries_on_terminate,
                args=(context.instance, context.run_id, stop),
                name="terminate-watchdog",
                daemon=True,
            )
            watchdog.start()
        try:
            yield self
        finally:
            stop.set()
            if watchdog is not None:
                watchdog.join(timeout=10)
            self._teardown()

    def _cancel_queries_on_terminate(self, instance: DagsterInstance, run_id: str, stop: threading.Event) -> None:
        """Terminate in the UI marks the run CANCELING, but a run blocked inside a query cannot see
        the interrupt until the query returns. This thread cancels the run's queries (every session
        named `rp:<run id>`), so the op fails at once, the log row is closed and the lock released."""
        while not stop.wait(TERMINATE_POLL_SECONDS):
            try:
                run = instance.get_run_by_id(run_id)
                if run is None or run.status not in (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED):
                    continue
                with connect(self.database.url(), autocommit=True) as connection:
                    connection.execute(
                        sa.text(
                            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                            " WHERE application_name = :name AND pid <> pg_backend_pid() AND state = 'active'"
                        ),
                        {"name": run_application_name(run_id)},
                    )
            except Exception:  # the watchdog must never take the run down; it tries again next poll
                continue

    def _lock_connection(self) -> sa.Connection:
        if self._connection is None:
            # The run's own engine: the lock's session is named `rp:<run id>`, which is how the
            # liveness check tells a live run from a dead one.
            self._connection = self.database.engine().connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._connection

    def begin(self, spec: JobSpec, dagster_run_id: str | None) -> RunTicket | None:
        """Take the lock and open the log row; None (and a `skipped` row) when another run holds it."""
        self._started = time.monotonic()
        connection = self._lock_connection()  # also the run's liveness session (rp:<run id>)
        require_migrated(connection)
        if self.database.dry_run:
            self._ticket = RunTicket(job_name=spec.name, lock_key=spec.lock_key, log_row_id=None, dry_run=True)
            return self._ticket
        if not execution_log.try_acquire_job_lock(connection, spec.lock_key):
            execution_log.record_skipped(connection, spec.name, dagster_run_id)
            return None
        execution_log.close_abandoned_runs(connection, spec.name, self._streak_of)
        row_id = execution_log.start_run(connection, spec.name, dagster_run_id)
        self._ticket = RunTicket(job_name=spec.name, lock_key=spec.lock_key, log_row_id=row_id)
        return self._ticket

    def connection(self) -> sa.Connection:
        """The run's own session (autocommit), for read-only checks after the work is done."""
        return self._lock_connection()

    def elapsed_seconds(self) -> float | None:
        return time.monotonic() - self._started if self._started is not None else None

    def count_dispatched(self, connection: sa.Connection, created: int) -> None:
        """Call inside the transaction that created `created` notifications (see `add_dispatched`)."""
        ticket = self._require_ticket()
        if ticket.log_row_id is not None:
            execution_log.add_dispatched(connection, ticket.log_row_id, created)

    @property
    def dry_run(self) -> bool:
        return self._ticket is not None and self._ticket.dry_run

    def succeed(self, outcome: JobOutcome) -> execution_log.FinishedRun | None:
        ticket = self._require_ticket()
        if ticket.log_row_id is None:  # a dry run: nothing to finalise
            self._finished = None
            return None
        connection = self._lock_connection()
        self._finished = execution_log.finish_success(
            connection,
            ticket.log_row_id,
            assignments_evaluated=outcome.evaluated,
            reminders_dispatched=outcome.created,
            details=outcome.details,
        )
        execution_log.release_job_lock(connection, ticket.lock_key)
        return self._finished

    def fail(self, error: BaseException | str) -> execution_log.FinishedRun | None:
        """Mark the open row `failed`; a no-op when no row is open (the failure came before it)."""
        if self._ticket is None or self._ticket.log_row_id is None or self._finished is not None:
            return None
        message = error if isinstance(error, str) else execution_log.safe_error_message(error)
        streak = self._streak_of(self._ticket.job_name, self._run_id)
        self._finished = execution_log.finish_failure(
            self._lock_connection(), self._ticket.log_row_id, message, consecutive_failures=streak
        )
        return self._finished

    def _streak_of(self, job_name: str, run_id: str | None) -> int:
        """One count of failures: the streak as Dagster's run storage has it (`run_history`)."""
        return failure_streak(self._instance, job_name, run_id)

    def _require_ticket(self) -> RunTicket:
        if self._ticket is None:
            raise ReminderPipelineError("finish_guarded_run called without begin_guarded_run")
        return self._ticket

    def _teardown(self) -> None:
        try:
            if self._ticket is not None and self._ticket.log_row_id is not None and self._finished is None:
                self.fail(INTERRUPTED_MESSAGE)
        finally:
            if self._connection is not None:
                self._connection.close()  # closing the session releases the advisory lock
            self._connection = None
