"""The lock-and-log wrapper every scheduled job is built with.

A job starts with :func:`begin_guarded_run` and ends with :func:`finish_guarded_run`, and carries
the :data:`record_failed_step` hook. Between them, the :class:`JobRunGuard` resource holds one
dedicated connection for the whole run: the job's advisory lock lives on it, so the job must use
``in_process_executor`` (with the multiprocess executor each op has its own process and the lock
would be gone after the first op). The log row is finalised whatever happens:
- the last op marks it `success`;
- a failing op's hook marks it `failed` with a message free of personal data;
- the resource's teardown marks a row still `running` as `failed` (run interrupted) and closes the
  connection, which releases the lock even if no op got to do it.
"""

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from dagster import (
    AssetMaterialization,
    AssetSpec,
    ConfigurableResource,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    Definitions,
    HookContext,
    InitResourceContext,
    InMemoryIOManager,
    InputContext,
    JobDefinition,
    OpExecutionContext,
    Out,
    Output,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    failure_hook,
    in_process_executor,
    io_manager,
    job,
    op,
    schedule,
)
from pydantic import PrivateAttr

from reminder_pipeline.core import execution_log, heartbeat
from reminder_pipeline.core.checks import Check, Finding, checks_of, register
from reminder_pipeline.core.database import connect, require_migrated, run_application_name
from reminder_pipeline.core.errors import ReminderPipelineError, SanitizedError
from reminder_pipeline.core.jobs import JobSpec, specs_of
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.core.run_config import DRY_RUN_TAG, dated_run_request
from reminder_pipeline.core.settings import LOCAL_TIMEZONE

#: How often a run checks whether it was asked to terminate.
TERMINATE_POLL_SECONDS = 2.0

#: Tag of a run that found the lock held and did nothing: it neither ends nor extends a failure streak.
SKIPPED_TAG = "reminder_pipeline/skipped"

#: Tag that dagster.yaml's run queue limits to one queued run per value: a second guard behind the lock.
SERIAL_TAG = "reminder_pipeline/serial"

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
    """What a job's work produced, for the log row."""

    assignments_evaluated: int
    reminders_dispatched: int
    details: dict[str, Any] = field(default_factory=dict)


class JobRunGuard(ConfigurableResource):
    """Holds a job's advisory lock and its execution-log row for the length of one run."""

    database: PipelineDatabase

    _connection: sa.Connection | None = PrivateAttr(default=None)
    _started: float | None = PrivateAttr(default=None)
    _ticket: RunTicket | None = PrivateAttr(default=None)
    _finished: execution_log.FinishedRun | None = PrivateAttr(default=None)

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator["JobRunGuard"]:
        stop = threading.Event()
        watchdog = None
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
        execution_log.close_abandoned_runs(connection, spec.name)
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
            assignments_evaluated=outcome.assignments_evaluated,
            reminders_dispatched=outcome.reminders_dispatched,
            details=outcome.details,
        )
        execution_log.release_job_lock(connection, ticket.lock_key)
        return self._finished

    def fail(self, error: BaseException | str) -> execution_log.FinishedRun | None:
        """Mark the open row `failed`; a no-op when no row is open (the failure came before it)."""
        if self._ticket is None or self._ticket.log_row_id is None or self._finished is not None:
            return None
        message = error if isinstance(error, str) else execution_log.safe_error_message(error)
        self._finished = execution_log.finish_failure(self._lock_connection(), self._ticket.log_row_id, message)
        return self._finished

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


def guarded_job(spec: JobSpec) -> Callable[[Callable[..., Any]], JobDefinition]:
    """`@job` with what every lock-and-log job needs: one process (the lock lives on one connection
    across ops), the failure hook that finalises the log row, the run-queue serial tag, and the
    job's declaration as metadata (everything else reads the spec from there)."""
    return job(
        name=spec.name,
        description=spec.description,
        executor_def=in_process_executor,
        hooks={record_failed_step},
        tags={SERIAL_TAG: spec.name},
        metadata=spec.metadata(),
    )


def _schedule(spec: JobSpec, guarded: JobDefinition) -> ScheduleDefinition:
    assert spec.schedule is not None

    @schedule(
        name=spec.schedule.name,
        job=guarded,
        cron_schedule=spec.schedule.cron,
        execution_timezone=LOCAL_TIMEZONE,
        default_status=DefaultScheduleStatus.RUNNING,
        description=spec.schedule.description,
    )
    def evaluate(context: ScheduleEvaluationContext) -> RunRequest:
        if spec.dated_op is not None:
            return dated_run_request(spec.name, spec.dated_op, context.scheduled_execution_time)
        return RunRequest(run_key=f"{spec.name}:{context.scheduled_execution_time.isoformat()}")

    return evaluate


LONG_RUNNING_MINUTES = 30


def _long_running_check(spec: JobSpec) -> Check:
    def rows_running_too_long(connection: sa.Connection) -> Finding:
        return Finding.from_rows(
            connection.execute(
                sa.text(
                    "SELECT id, count(*) OVER () AS total FROM public.cron_execution_logs"
                    " WHERE job_name = :job AND status = 'running'"
                    " AND started_at < clock_timestamp() - make_interval(mins => :minutes) ORDER BY id LIMIT 5"
                ),
                {"job": spec.name, "minutes": LONG_RUNNING_MINUTES},
            )
        )

    assert spec.asset is not None
    return Check(
        spec.asset,
        "no_run_running_too_long",
        f"No execution-log row of {spec.name} has been running for more than {LONG_RUNNING_MINUTES} minutes.",
        rows_running_too_long,
    )


def _schedule_overdue_check(spec: JobSpec) -> Check:
    def open_overdue_runs(connection: sa.Connection) -> Finding:
        # Recorded by the watchdog or pg_cron (migration 0010), with no Dagster process needed.
        return Finding.from_rows(
            connection.execute(
                sa.text(
                    "SELECT to_char(expected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI\"Z\"') AS id,"
                    " count(*) OVER () AS total FROM public.open_schedule_overdue"
                    " WHERE job_name = :job ORDER BY expected_at DESC LIMIT 5"
                ),
                {"job": spec.name},
            )
        )

    assert spec.asset is not None
    return Check(
        spec.asset,
        "no_schedule_overdue",
        f"No expected run of {spec.name} is overdue (no success 30 minutes after its scheduled time);"
        " sample ids are the expected times.",
        open_overdue_runs,
    )


def guarded_definitions(jobs_module: ModuleType, checks: Iterable[Check] = ()) -> Definitions:
    """Every lock-and-log job a domain's jobs module defines, with the schedules their specs declare:
    adding a job to the module is all it takes to deploy, schedule, watch and run it from the CLI."""
    jobs = [value for value in vars(jobs_module).values() if isinstance(value, JobDefinition) and JobSpec.of(value)]
    by_name = {job_def.name: job_def for job_def in jobs}
    specs = specs_of(jobs)
    asset_checks = register(
        [
            *(_long_running_check(spec) for spec in specs if spec.asset),
            *(_schedule_overdue_check(spec) for spec in specs if spec.asset and spec.schedule),
            *checks,
        ]
    )
    return Definitions(
        asset_checks=asset_checks,
        assets=[
            AssetSpec(
                spec.asset,
                description=f"What each successful run of {spec.name} did: counts, as_of, its log row.",
                group_name="reminder_pipeline",
                metadata={"job": spec.name},
            )
            for spec in specs
            if spec.asset
        ],
        jobs=list(jobs),
        schedules=[_schedule(spec, by_name[spec.name]) for spec in specs_of(jobs) if spec.schedule],
    )


@contextmanager
def safe_errors() -> Iterator[None]:
    """Wrap an op's work: an error leaves the op as a :class:`SanitizedError` whose message holds no
    personal data, and without the original chained, so Dagster's event log cannot store the
    original text (a PostgreSQL DETAIL line, say, quoting a mentor's e-mail address)."""
    try:
        yield
    except Exception as error:
        raise SanitizedError(execution_log.safe_error_message(error)) from None


@op(
    out=Out(RunTicket, is_required=False),
    description="Take the job's advisory lock and open its execution-log row; skip the run if the lock is held.",
)
def begin_guarded_run(context: OpExecutionContext, run_guard: JobRunGuard):
    spec = JobSpec.of(context.job_def)
    if spec is None:
        raise SanitizedError(f"job {context.job_name} was not declared with guarded_job(JobSpec(...))")
    with safe_errors():
        ticket = run_guard.begin(spec, context.run_id)
    if ticket is not None and ticket.dry_run:
        context.instance.add_run_tags(context.run_id, {DRY_RUN_TAG: "true"})
        context.log.info("Dry run: every transaction is rolled back; nothing is written.")
    if ticket is None:
        # Dagster shows the run as a success; the tag tells the failure sensor it proves nothing.
        context.instance.add_run_tags(context.run_id, {SKIPPED_TAG: "true"})
        context.log.info(
            f"Skipped: another run of {spec.name} holds advisory lock {spec.lock_key}; "
            "a 'skipped' row was written to cron_execution_logs and nothing else was done."
        )
        return
    if not ticket.dry_run:
        context.log.info(f"Lock {spec.lock_key} acquired; log row {ticket.log_row_id} is running.")
        _ping(context, spec.name, "start")
    yield Output(ticket)


def _ping(context: OpExecutionContext | HookContext, job_name: str, event: heartbeat.Event, reason: str = "") -> str:
    """Tell the external heartbeat monitor; a monitor that cannot be reached is a warning, never a failure."""
    outcome = heartbeat.ping(job_name, event, reason)
    if outcome.startswith("failed"):
        context.log.warning(f"Heartbeat ping '{event}' for {job_name} {outcome}")
    return outcome


@op(description="Mark the execution-log row `success` with the job's counts and release the lock.")
def finish_guarded_run(context: OpExecutionContext, run_guard: JobRunGuard, outcome: JobOutcome) -> None:
    with safe_errors():
        finished = run_guard.succeed(outcome)
    metadata = outcome_metadata(outcome, finished, run_guard.elapsed_seconds())
    spec = JobSpec.of(context.job_def)
    counts = (spec or JobSpec(context.job_name, "", 0)).describe_counts(
        outcome.assignments_evaluated, outcome.reminders_dispatched
    )
    if run_guard.dry_run:
        context.log.info(f"Dry run, nothing written; a real run: {counts}.")
        context.add_output_metadata({**metadata, "dry_run": True})
        return
    context.log.info(f"Log row {finished.row_id if finished else '?'} finalised as success: {counts}.")
    if spec is not None:
        metadata["heartbeat"] = _ping(context, spec.name, "success")
    context.add_output_metadata(metadata)
    if spec is not None and spec.asset is not None:
        context.log_event(AssetMaterialization(asset_key=spec.asset, metadata=metadata))
        _evaluate_checks(context, run_guard, spec.asset)


def _evaluate_checks(context: OpExecutionContext, run_guard: JobRunGuard, asset: str) -> None:
    """After a successful run, its asset's checks (read-only); a check that cannot run is a warning,
    never a failed run."""
    for check in checks_of(asset):
        try:
            finding = check.evaluate(run_guard.connection())
        except Exception as error:
            context.log.warning(f"check {check.name} could not run: {execution_log.safe_error_message(error)}")
            continue
        context.log_event(check.evaluation(finding))


def sample_ids(ids: Iterable[object], size: int = 5) -> str:
    """The first few IDs (sorted, distinct): enough to look a run's work up, never a name."""
    return ", ".join(sorted({str(value) for value in ids})[:size])


def outcome_metadata(
    outcome: JobOutcome, finished: execution_log.FinishedRun | None, seconds: float | None
) -> dict[str, Any]:
    """What a run did, as Dagster metadata: numbers the UI plots over time, ids, never names."""
    metadata: dict[str, Any] = {
        "evaluated": outcome.assignments_evaluated,
        "created": outcome.reminders_dispatched,
        "execution_log_id": str(finished.row_id) if finished else "",
    }
    if seconds is not None:
        metadata["duration_seconds"] = round(seconds, 3)
    for key, value in sorted(outcome.details.items()):
        if isinstance(value, dict):  # counts by kind: one plottable number each
            metadata.update({f"{key}.{inner}": int(count) for inner, count in sorted(value.items())})
        elif isinstance(value, bool | int | float | str):
            metadata[key] = value
    return metadata


@failure_hook(required_resource_keys={"run_guard"})
def record_failed_step(context: HookContext) -> None:
    """The `finally` of the two-step write: a failing op marks the row `failed` at once."""
    error = context.op_exception or RuntimeError(f"op {context.op.name} failed")
    run_guard = context.resources.run_guard
    finished = run_guard.fail(error)
    if finished is not None:
        # The error itself is the failed step's, just above in the run's log: not said twice.
        context.log.error(
            f"Log row {finished.row_id} marked failed (consecutive failures: {finished.consecutive_failure_count})."
        )
    # Once per run: the failure that ends it (the begin op's own, or the one that marked the row failed).
    ended_run = context.op.name == "begin_guarded_run" or finished is not None
    if not run_guard.dry_run and ended_run:
        reason = finished.error_message if finished is not None else execution_log.safe_error_message(error)
        _ping(context, context.job_name, "fail", reason or "")


class PartialReexecutionRefused(ReminderPipelineError):
    """A re-execution that would skip the lock-and-log step cannot run safely."""


REEXECUTION_MESSAGE = (
    "re-executing part of a lock-and-log job is refused: the lock and the log row belong to the step"
    " that would be skipped. Launch the whole job again instead (Launchpad, 'Re-execute all', or"
    " `reminder-pipeline run <job>`): nothing that was already sent is sent twice"
)


class RunMemoryIOManager(InMemoryIOManager):
    """Outputs stay in memory (one process per run); an input from another run, which is what
    "Re-execute from failure" asks for, is refused with a message that says what to do instead."""

    def load_input(self, context: InputContext) -> object:
        try:
            return super().load_input(context)
        except KeyError:
            raise PartialReexecutionRefused(REEXECUTION_MESSAGE) from None


@io_manager(description="In-memory outputs; a partial re-execution is refused with instructions.")
def run_memory_io_manager() -> RunMemoryIOManager:
    return RunMemoryIOManager()
