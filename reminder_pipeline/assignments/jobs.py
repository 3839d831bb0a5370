"""Dagster wiring of the assignment reminder job: thin ops over the plain functions."""

import datetime as dt
from dataclasses import dataclass, fields

import pandas as pd
from dagster import OpExecutionContext, op
from pydantic import Field, create_model

from reminder_pipeline.assignments.repository import load_active_assignments
from reminder_pipeline.assignments.rules import ReminderRules, decide_reminders
from reminder_pipeline.core import outbox
from reminder_pipeline.core.guarded_run import (
    JobOutcome,
    JobRunGuard,
    RunTicket,
    begin_guarded_run,
    finish_guarded_run,
    guarded_job,
    safe_errors,
    sample_ids,
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


@dataclass(frozen=True)
class ReminderDecisions:
    as_of: dt.date
    assignments_evaluated: int
    notifications: pd.DataFrame


@op(description="Read active assignments with their mentor and coordinator in one set-based query.")
def load_assignments(context: OpExecutionContext, ticket: RunTicket, database: PipelineDatabase) -> pd.DataFrame:
    with safe_errors(), database.transaction() as connection:
        frame = load_active_assignments(connection)
    context.log.info(f"Loaded {len(frame)} active assignments.")
    return frame


@op(description="Apply the reminder rules (vectorised, no I/O).")
def decide_reminders_op(
    context: OpExecutionContext, config: ReminderRunConfig, assignments: pd.DataFrame
) -> ReminderDecisions:
    with safe_errors():
        as_of = config.as_of_date()
        tag_as_of(context, as_of)
        decisions = decide_reminders(assignments, as_of, config.rules())
    context.log.info(f"As of {as_of}: {len(decisions)} notifications due for {len(assignments)} assignments.")
    return ReminderDecisions(as_of=as_of, assignments_evaluated=len(assignments), notifications=decisions)


@op(description="Insert due notifications into the outbox; existing idempotency keys are skipped.")
def dispatch_reminders(
    context: OpExecutionContext, decisions: ReminderDecisions, database: PipelineDatabase, run_guard: JobRunGuard
) -> JobOutcome:
    with safe_errors(), database.transaction() as connection:
        result = outbox.dispatch(connection, decisions.notifications, dry_run=database.dry_run)
        run_guard.count_dispatched(connection, result.created)
    existed = result.requested - result.created
    if database.dry_run:
        context.log.info(f"Would create {result.created} of {result.requested} due notifications (dry run).")
    else:
        context.log.info(f"Created {result.created} of {result.requested} due notifications ({existed} existed).")
    kinds = decisions.notifications["kind"].value_counts().to_dict()
    return JobOutcome(
        evaluated=decisions.assignments_evaluated,
        created=result.created,
        details={
            "as_of": decisions.as_of.isoformat(),
            "due": result.requested,
            "due_by_kind": kinds,
            "sample_assignment_ids": sample_ids(decisions.notifications["assignment_id"]),
        },
    )


@guarded_job(ASSIGNMENT_REMINDERS)
def assignment_reminders() -> None:
    finish_guarded_run(dispatch_reminders(decide_reminders_op(load_assignments(begin_guarded_run()))))
