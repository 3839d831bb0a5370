"""The ops that open and close every lock-and-log run, and the hook that closes it on failure.

A job starts with :func:`begin_guarded_run` and ends with :func:`finish_guarded_run`, and carries
the :data:`record_failed_step` hook, so the log row is finalised whatever happens: the last op
marks it `success`; a failing op's hook marks it `failed` with a message free of personal data;
the :class:`JobRunGuard`'s teardown catches the rest.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from dagster import AssetMaterialization, HookContext, OpExecutionContext, Out, Output, failure_hook, op

from reminder_pipeline.core import execution_log, heartbeat
from reminder_pipeline.core.checks import CheckResult, checks_of
from reminder_pipeline.core.errors import SanitizedError
from reminder_pipeline.core.jobs import JobSpec
from reminder_pipeline.core.run_config import DRY_RUN_TAG
from reminder_pipeline.core.run_guard import JobOutcome, JobRunGuard, RunTicket
from reminder_pipeline.core.run_history import SKIPPED_TAG


@contextmanager
def safe_errors() -> Iterator[None]:
    """Wrap an op's work: an error leaves the op as a :class:`SanitizedError` whose message holds no
    personal data, and without the original chained, so Dagster's event log cannot store the
    original text (a PostgreSQL DETAIL line, say, quoting a mentor's e-mail address)."""
    try:
        yield
    except Exception as error:
        raise SanitizedError(execution_log.safe_error_message(error)) from None


def _spec_of(context: OpExecutionContext) -> JobSpec:
    """The declaration of the job this op runs in; the wrapper's ops exist only in guarded jobs."""
    spec = JobSpec.of(context.job_def)
    if spec is None:
        raise SanitizedError(f"job {context.job_name} was not declared with guarded_job(JobSpec(...))")
    return spec


@op(
    out=Out(RunTicket, is_required=False),
    description="Take the job's advisory lock and open its execution-log row; skip the run if the lock is held.",
)
def begin_guarded_run(context: OpExecutionContext, run_guard: JobRunGuard):
    spec = _spec_of(context)
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
    spec = _spec_of(context)
    counts = spec.describe_counts(outcome.evaluated, outcome.created)
    if run_guard.dry_run:
        context.log.info(f"Dry run, nothing written; a real run: {counts}.")
        context.add_output_metadata({**metadata, "dry_run": True})
        return
    context.log.info(f"Log row {finished.row_id if finished else '?'} finalised as success: {counts}.")
    metadata["heartbeat"] = _ping(context, spec.name, "success")
    context.add_output_metadata(metadata)
    if spec.asset is not None:
        context.log_event(AssetMaterialization(asset_key=spec.asset, metadata=metadata))
        _evaluate_checks(context, run_guard, spec.asset, outcome.checks)


def _evaluate_checks(
    context: OpExecutionContext, run_guard: JobRunGuard, asset: str, evaluated: dict[str, CheckResult]
) -> None:
    """After a successful run, its asset's checks (read-only), but for those the run `evaluated`
    while it worked; a check that cannot run is a warning, never a failed run."""
    for check in checks_of(asset):
        result = evaluated.get(check.name)
        if result is None:
            try:
                result = check.evaluate(run_guard.connection())
            except Exception as error:
                result = execution_log.safe_error_message(error)
        if isinstance(result, str):
            context.log.warning(f"check {check.name} could not run: {result}")
        else:
            context.log_event(check.evaluation(result))


def sample_ids(ids: Iterable[object], size: int = 5) -> str:
    """The first few IDs (sorted, distinct): enough to look a run's work up, never a name."""
    return ", ".join(sorted({str(value) for value in ids})[:size])


def outcome_metadata(
    outcome: JobOutcome, finished: execution_log.FinishedRun | None, seconds: float | None
) -> dict[str, Any]:
    """What a run did, as Dagster metadata: numbers the UI plots over time, ids, never names."""
    metadata: dict[str, Any] = {
        "evaluated": outcome.evaluated,
        "created": outcome.created,
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
