"""Assembles every domain's jobs, schedules and resources into one Dagster code location."""

from __future__ import annotations

from dagster import Definitions, JobDefinition, mem_io_manager

from reminder_pipeline.alerting.resources import OpsAlerting
from reminder_pipeline.alerting.sensors import alert_redelivery_sensor, long_running_runs_sensor, missed_runs_sensor
from reminder_pipeline.assignments.jobs import assignment_reminders, assignment_reminders_daily
from reminder_pipeline.certifications.jobs import (
    DynamicsPortal,
    certification_reminders,
    certification_reminders_nightly,
    dynamics_sync_every_5_minutes,
    dynamics_sync_job,
)
from reminder_pipeline.core.guarded_run import JobRunGuard
from reminder_pipeline.core.resources import PipelineDatabase


def build_defs(
    database_url: str | None = None, alerting: OpsAlerting | None = None, dynamics: DynamicsPortal | None = None
) -> Definitions:
    """`database_url=None` means: `DATABASE_URL` at run time, else the embedded server."""
    database = PipelineDatabase(database_url=database_url)
    alerting = alerting or OpsAlerting(database=database)
    return Definitions(
        jobs=[assignment_reminders, certification_reminders, dynamics_sync_job],
        schedules=[assignment_reminders_daily, certification_reminders_nightly, dynamics_sync_every_5_minutes],
        sensors=[long_running_runs_sensor, missed_runs_sensor, alert_redelivery_sensor],
        resources={
            "database": database,
            "ops_alerting": alerting,
            "dynamics_portal": dynamics or DynamicsPortal(),
            "run_guard": JobRunGuard(database=database, alerting=alerting),
            # Jobs run in one process (in_process_executor); outputs stay in memory, not pickled to disk.
            "io_manager": mem_io_manager,
        },
    )


defs = build_defs()


def assignment_reminders_job() -> JobDefinition:
    """Module-level handle for `dagster.reconstructable` (the CLI launches through the instance)."""
    return defs.get_job_def("assignment_reminders")
