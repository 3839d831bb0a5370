"""Dagster wiring of the assignment reminder job: thin ops over the plain functions."""

from dataclasses import fields

from dagster import OpExecutionContext, op
from pydantic import Field, create_model

from reminder_pipeline.assignments.rules import ReminderRules
from reminder_pipeline.assignments.streaming import DEFAULT_CHUNK_SIZE, StreamResult, remind_in_chunks
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


class _ReminderRunConfigBase(AsOfConfig):
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
    description="Decide and dispatch the reminders due, chunk by chunk (keyset on assignment id): each chunk"
    " is read, decided (vectorised) and written to the outbox in a transaction of its own, so memory stays"
    " flat in the number of assignments; existing idempotency keys are skipped."
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
        totals = StreamResult()
        for totals in remind_in_chunks(
            database.transaction,
            as_of,
            config.rules(),
            chunk_size=config.chunk_size,
            dry_run=database.dry_run,
            on_chunk=run_guard.count_dispatched,
        ):
            context.log.debug(
                f"Chunk {totals.chunks}: {totals.evaluated} assignments evaluated so far, {totals.created} created."
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
            "as_of": as_of.isoformat(),
            "due": totals.due,
            "due_by_kind": dict(totals.due_by_kind),
            "chunks": totals.chunks,
            "sample_assignment_ids": ", ".join(totals.sample_assignment_ids),
        },
    )


@guarded_job(ASSIGNMENT_REMINDERS)
def assignment_reminders() -> None:
    finish_guarded_run(decide_reminders_op(begin_guarded_run()))
