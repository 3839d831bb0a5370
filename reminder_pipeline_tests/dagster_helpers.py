"""Running the real jobs in-process against a test database."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dagster import DagsterInstance, ExecuteInProcessResult

from reminder_pipeline.alerting.resources import OpsAlerting
from reminder_pipeline.assignments.jobs import run_config_for
from reminder_pipeline.certifications.jobs import DynamicsPortal
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.definitions import build_defs


def alerting_for(database_url: str, **config: Any) -> OpsAlerting:
    return OpsAlerting(database=PipelineDatabase(database_url=database_url), **config)


def run_assignment_reminders(
    database_url: str,
    as_of: dt.date,
    alerting: OpsAlerting | None = None,
    instance: DagsterInstance | None = None,
    **rules: int,
) -> ExecuteInProcessResult:
    job = build_defs(database_url, alerting).get_job_def("assignment_reminders")
    return job.execute_in_process(run_config=run_config_for(as_of, **rules), raise_on_error=False, instance=instance)


def run_job(
    database_url: str,
    job_name: str,
    run_config: dict | None = None,
    *,
    alerting: OpsAlerting | None = None,
    dynamics: DynamicsPortal | None = None,
    instance: DagsterInstance | None = None,
) -> ExecuteInProcessResult:
    job = build_defs(database_url, alerting, dynamics).get_job_def(job_name)
    return job.execute_in_process(run_config=run_config or {}, raise_on_error=False, instance=instance)


def run_log_text(instance: DagsterInstance, run_id: str) -> str:
    """Everything Dagster stored for a run: events and log messages."""
    return "\n".join(f"{entry.user_message} {entry.dagster_event}" for entry in instance.all_logs(run_id))


def run_in_subprocess(database_url: str, as_of_iso: str, job_name: str = "assignment_reminders") -> bool:
    """Entry point for spawned worker processes (module-level so `spawn` can import it)."""
    if job_name == "assignment_reminders":
        return run_assignment_reminders(database_url, dt.date.fromisoformat(as_of_iso)).success
    config = {"ops": {"decide_certification_actions": {"config": {"as_of": as_of_iso}}}}
    return run_job(database_url, job_name, config).success
