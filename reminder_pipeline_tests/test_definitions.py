import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from dagster import Definitions, in_process_executor, mem_io_manager, op

from reminder_pipeline.core.guarded_run import (
    JobOutcome,
    JobRunGuard,
    RunTicket,
    begin_guarded_run,
    finish_guarded_run,
    guarded_definitions,
    guarded_job,
)
from reminder_pipeline.core.jobs import JobSpec, ScheduleSpec, specs_of
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.definitions import JOB_SPECS, defs
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import alerting_for


def test_the_code_location_loads() -> None:
    Definitions.validate_loadable(defs)


def test_dagster_loads_the_module_the_workspace_names(tmp_path: Path) -> None:
    """The way `dagster dev` loads it: by module, which must hold exactly one `Definitions`."""
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "reminder_pipeline.definitions"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_jobs_and_schedules_snapshot() -> None:
    """Catches an accidental rename, removal or reschedule in review."""
    jobs = sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__"))
    schedules = sorted(
        (s.name, s.job_name, s.cron_schedule, s.execution_timezone) for s in defs.get_repository_def().schedule_defs
    )
    assert jobs == [
        "assignment_reminders",
        "certification_reminders",
        "dynamics_sync",
        "notification_delivery",
        "ops_alert_delivery",
        "ops_dead_runs",
    ]
    assert schedules == [
        ("assignment_reminders_daily", "assignment_reminders", "0 7 * * *", "Europe/Oslo"),
        ("certification_reminders_nightly", "certification_reminders", "0 2 * * *", "Europe/Oslo"),
    ]


def test_guarded_jobs_run_in_one_process_so_the_lock_lives_across_ops() -> None:
    for name in ("assignment_reminders", "certification_reminders", "dynamics_sync", "notification_delivery"):
        job = defs.get_job_def(name)
        assert job.executor_def is in_process_executor
        assert job.tags["reminder_pipeline/serial"] == name
        assert JobSpec.of(job) in JOB_SPECS


def test_every_job_declares_a_distinct_lock_key_and_cli_name() -> None:
    assert [(spec.name, spec.lock_key, spec.cli_name, spec.missed_run_hours) for spec in JOB_SPECS] == [
        ("assignment_reminders", 7_204_001, "assignment-reminders", 26),
        ("certification_reminders", 7_204_002, "certification-reminders", 26),
        ("dynamics_sync", 7_204_003, "dynamics-sync", None),
        ("notification_delivery", 7_204_004, "notification-delivery", None),
    ]


@pytest.mark.database
def test_a_new_job_is_one_declaration_in_a_jobs_module(database_url: str, db: sa.Connection) -> None:
    """What docs/architecture.md promises: a JobSpec and a guarded job in a domain's jobs module, and
    the domain's definitions schedule it, lock it and log it."""
    jobs_module = ModuleType("reminder_pipeline_tests.example_jobs")
    spec = JobSpec(
        name="example_job",
        description="An example.",
        lock_key=7_204_099,
        schedule=ScheduleSpec(name="example_job_hourly", cron="0 * * * *", description="Hourly."),
        missed_run_hours=2,
    )

    @op
    def count_nothing(ticket: RunTicket) -> JobOutcome:
        return JobOutcome(evaluated=3, created=0)

    @guarded_job(spec)
    def example_job() -> None:
        finish_guarded_run(count_nothing(begin_guarded_run()))

    jobs_module.example_job = example_job
    domain = guarded_definitions(jobs_module)
    assert specs_of(domain.jobs or []) == [spec]
    (schedule,) = domain.schedules or []
    assert (schedule.name, schedule.cron_schedule, schedule.job_name) == (
        "example_job_hourly",
        "0 * * * *",
        "example_job",
    )

    database = PipelineDatabase(database_url=database_url)
    alerting = alerting_for(database_url)
    resources = {
        "database": database,
        "ops_alerting": alerting,
        "run_guard": JobRunGuard(database=database, alerts=alerting),
        "io_manager": mem_io_manager,
    }
    job = Definitions.merge(domain, Definitions(resources=resources)).resolve_job_def("example_job")
    assert job.execute_in_process().success
    (row,) = factories.log_rows(db, "example_job")
    assert (row.status, row.assignments_evaluated) == ("success", 3)
