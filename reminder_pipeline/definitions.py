"""The Dagster code location: every domain's definitions, merged, with the shared resources.

Each domain exposes its own `Definitions` (jobs with the schedules their `JobSpec` declares); the
alerting domain watches the jobs it is given. Nothing here names a job: adding one is a `JobSpec`
beside the job and the job in its domain's definitions.
"""

from __future__ import annotations

import warnings

from dagster import BetaWarning, Definitions, JobDefinition

from reminder_pipeline.alerting.definitions import alerting_definitions
from reminder_pipeline.alerting.resources import OpsAlerting
from reminder_pipeline.assignments import definitions as assignments
from reminder_pipeline.certifications import definitions as certifications
from reminder_pipeline.certifications.jobs import DynamicsPortal
from reminder_pipeline.core.guarded_run import JobRunGuard, run_memory_io_manager
from reminder_pipeline.core.jobs import JobSpec, specs_of
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.delivery import definitions as delivery
from reminder_pipeline.delivery.jobs import NotificationDelivery

# Dagster's own copy of a sensor (when it binds resources) passes `owners` and warns about it on every
# load; our code does not use it. Silenced by its exact text so no other beta warning is hidden.
warnings.filterwarnings("ignore", message="Parameter `owners` of initializer `SensorDefinition", category=BetaWarning)


def _domains() -> Definitions:
    # A function, not a module-level object: Dagster loads a module with exactly one `Definitions`.
    return Definitions.merge(assignments.defs, certifications.defs, delivery.defs)


#: Every lock-and-log job's declaration, for the CLI, the sensors and the docs.
JOB_SPECS: list[JobSpec] = specs_of(_domains().jobs or [])


def build_defs(
    database_url: str | None = None,
    alerting: OpsAlerting | None = None,
    dynamics: DynamicsPortal | None = None,
    notification_delivery: NotificationDelivery | None = None,
) -> Definitions:
    """`database_url=None` means: `DATABASE_URL` at run time, else the embedded server."""
    database = PipelineDatabase(database_url=database_url)
    alerting = alerting or OpsAlerting(database=database)
    resources = Definitions(
        resources={
            "database": database,
            "ops_alerting": alerting,
            "dynamics_portal": dynamics or DynamicsPortal(),
            "notification_delivery": notification_delivery or NotificationDelivery(),
            "run_guard": JobRunGuard(database=database),
            # Jobs run in one process (in_process_executor); outputs stay in memory, not pickled to
            # disk, and a partial re-execution is refused with instructions.
            "io_manager": run_memory_io_manager,
        }
    )
    return Definitions.merge(_domains(), alerting_definitions(JOB_SPECS), resources)


defs = build_defs()


def job_spec(cli_name: str) -> JobSpec:
    """The spec of the job the CLI calls `cli_name` (`assignment-reminders`)."""
    return next(spec for spec in JOB_SPECS if spec.cli_name == cli_name)


def job_named(name: str) -> JobDefinition:
    """The job called `name`, rebuilt by name in a run worker (`build_reconstructable_job`)."""
    return defs.resolve_job_def(name)
