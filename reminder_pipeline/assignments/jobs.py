"""Dagster wiring of the assignment reminder job: thin ops over the plain functions."""

import time
from dataclasses import asdict, fields

from dagster import OpExecutionContext, op
from pydantic import Field, create_model

from reminder_pipeline.assignments.rules import ReminderRules
from reminder_pipeline.assignments.streaming import DEFAULT_CHUNK_SIZE, RERUN_MARGIN, StreamResult, remind_in_chunks
from reminder_pipeline.core import execution_log
from reminder_pipeline.core.checks import CheckResult, evaluate_during_run
from reminder_pipeline.core.guarded_run import (
    JobOutcome,
    JobRunGuard,
    RunTicket,
    begin_guarded_run,
    finish_guarded_run,
    guarded_job,
    safe_errors,
)
from reminder_pipeline.core.jobs import JobSpec, ScheduleSpec
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.core.run_config import AsOfConfig, tag_as_of

ASSIGNMENT_REMINDERS = JobSpec(
    name="assignment_reminders",
    description="Remind mentors about assignments without logged contact; escalate to coordinators.",
    lock_key=7_204_001,
    schedule=ScheduleSpec(
        name="assignment_reminders_daily", cron="0 7 * * *", description="Every day at 07:00 Europe/Oslo, for that day."
    ),
    missed_run_hours=26,
    dated_op="decide_reminders_op",
    asset="reminder_outbox",
    counts=("assignments evaluated", "reminders created"),
)

#: How often a run logs its progress (it is also counted on its log row after every chunk).
PROGRESS_SECONDS = 5.0


class _ReminderRunConfigBase(AsOfConfig):
    full_run: bool = Field(
        default=False,
        description="Evaluate every active assignment, even when an earlier successful run already covered this"
        " date with these rules (a rerun otherwise reads only what changed since; e.g. to recreate notifications"
        " deleted by hand).",
    )
    chunk_size: int = Field(
        default=DEFAULT_CHUNK_SIZE,
        ge=1,
        le=1_000_000,
        description="Assignments read, decided and dispatched per transaction (memory is flat in their number).",
    )

    def rules(self) -> ReminderRules:
        return ReminderRules(**{threshold.name: getattr(self, threshold.name) for threshold in fields(ReminderRules)})


#: Run configuration: the date fields, and one field per threshold of the rule, made from the rule's
#: own declaration (`rules.ReminderRules`: name, default, description), so a new threshold is
#: configurable without touching this file.
ReminderRunConfig = create_model(
    "ReminderRunConfig",
    __base__=_ReminderRunConfigBase,
    __doc__="Run configuration; every field has the documented default.",
    **{
        threshold.name: (int, Field(default=threshold.default, ge=1, description=threshold.metadata["description"]))
        for threshold in fields(ReminderRules)
    },
)


@op(
    description="Decide and dispatch the reminders due, chunk by chunk: one sorted read of the active"
    " assignments (two queries for a full read of a large table), cut into chunks as it streams; each chunk"
    " is decided (vectorised) while the one before is"
    " written to the outbox in a transaction of its own, so memory stays flat in the number of assignments;"
    " existing idempotency keys are skipped."
)
def decide_reminders_op(
    context: OpExecutionContext,
    config: ReminderRunConfig,
    ticket: RunTicket,
    database: PipelineDatabase,
    run_guard: JobRunGuard,
) -> JobOutcome:
    # The op keeps its name (and its run config key) from when deciding and dispatching were two ops.
    with safe_errors():
        as_of = config.as_of_date()
        tag_as_of(context, as_of)
        rules = config.rules()
        covering = {"as_of": as_of.isoformat(), "rules": asdict(rules)}
        changed_since = None
        if not config.full_run:
            with database.transaction() as connection:
                covered_at = execution_log.newest_success_started_at(connection, ASSIGNMENT_REMINDERS.name, covering)
            changed_since = covered_at - RERUN_MARGIN if covered_at is not None else None
        if changed_since is not None:
            context.log.info(
                f"A successful run already covered {as_of} with these rules: reading only the assignments changed"
                f" since {changed_since.isoformat(timespec='seconds')} (full_run: true reads every one)."
            )
        totals = StreamResult()
        checked: dict[str, CheckResult] = {}

        def check_the_inputs() -> None:  # on the reading thread, once the read is over
            checked.update(evaluate_during_run(ASSIGNMENT_REMINDERS.asset, database.transaction))

        next_progress = time.monotonic() + PROGRESS_SECONDS
        # A chunk's commit does not wait for its WAL to reach disk (0.5 s of 17 at a million
        # assignments). Nothing can be sent twice or lost: any later synchronous commit (a delivery's
        # claim of these rows, the run's success row) flushes these too, and a crash before that
        # loses only chunks no one has seen, which the next run creates.
        with database.transactions(synchronous_commit=False) as chunk_transaction:
            for totals in remind_in_chunks(
                chunk_transaction,
                database.transaction,
                as_of,
                rules,
                chunk_size=config.chunk_size,
                dry_run=database.dry_run,
                changed_since=changed_since,
                on_chunk=run_guard.count_dispatched,
                after_read=None if database.dry_run else check_the_inputs,
            ):
                if time.monotonic() >= next_progress:  # a Dagster log event per chunk costs 1% of the run
                    next_progress = time.monotonic() + PROGRESS_SECONDS
                    context.log.debug(
                        f"Chunk {totals.chunks}: {totals.evaluated} assignments evaluated so far,"
                        f" {totals.created} created."
                    )
    existed = totals.due - totals.created
    chunks = f"{totals.chunks} chunk(s) of at most {config.chunk_size}"
    if database.dry_run:
        context.log.info(f"Would create {totals.created} of {totals.due} due notifications (dry run), {chunks}.")
    else:
        context.log.info(
            f"Created {totals.created} of {totals.due} due notifications ({existed} existed) as of {as_of},"
            f" for {totals.evaluated} assignments in {chunks}."
        )
    return JobOutcome(
        evaluated=totals.evaluated,
        created=totals.created,
        details={
            **covering,
            "changed_since": changed_since.isoformat() if changed_since is not None else "",
            "due": totals.due,
            "due_by_kind": dict(totals.due_by_kind),
            "chunks": totals.chunks,
            "read_queries": totals.read_queries,
            "sample_assignment_ids": ", ".join(totals.sample_assignment_ids),
        },
        checks=checked,
    )


@guarded_job(ASSIGNMENT_REMINDERS)
def assignment_reminders() -> None:
    finish_guarded_run(decide_reminders_op(begin_guarded_run()))
