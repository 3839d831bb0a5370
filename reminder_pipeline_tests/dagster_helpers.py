"""Running the real jobs in-process against a test database."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from dagster import DagsterInstance, ExecuteInProcessResult, SensorResult, build_sensor_context

from reminder_pipeline.alerting.resources import OpsAlerting
from reminder_pipeline.assignments.jobs import ASSIGNMENT_REMINDERS
from reminder_pipeline.certifications.jobs import DynamicsPortal
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.core.run_config import dated_run_config
from reminder_pipeline.definitions import build_defs
from reminder_pipeline.delivery.jobs import NotificationDelivery


def alerting_for(database_url: str, **config: Any) -> OpsAlerting:
    return OpsAlerting(database=PipelineDatabase(database_url=database_url), **config)


def run_assignment_reminders(
    database_url: str,
    as_of: dt.date,
    alerting: OpsAlerting | None = None,
    instance: DagsterInstance | None = None,
    **rules: int | bool,
) -> ExecuteInProcessResult:
    job = build_defs(database_url, alerting).get_job_def("assignment_reminders")
    return job.execute_in_process(
        run_config=dated_run_config(ASSIGNMENT_REMINDERS.dated_op, as_of, allow_any_date=True, **rules),
        raise_on_error=False,
        instance=instance,
    )


def run_job(
    database_url: str,
    job_name: str,
    run_config: dict | None = None,
    *,
    alerting: OpsAlerting | None = None,
    dynamics: DynamicsPortal | None = None,
    delivery: NotificationDelivery | None = None,
    instance: DagsterInstance | None = None,
    tags: dict[str, str] | None = None,
) -> ExecuteInProcessResult:
    job = build_defs(database_url, alerting, dynamics, delivery).get_job_def(job_name)
    return job.execute_in_process(run_config=run_config or {}, raise_on_error=False, instance=instance, tags=tags)


def terminate_once_blocked(
    db: sa.Connection, instance: DagsterInstance, launch: Callable[[], ExecuteInProcessResult]
) -> tuple[ExecuteInProcessResult, float]:
    """Start `launch` (a run on `instance`), wait until one of the run's sessions (`rp:<run id>`)
    waits on a lock, then Terminate it as the UI does. Returns the result and the seconds it took
    to stop after Terminate."""
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(launch)
        while (
            not (started := instance.get_runs())
            or not db.execute(
                sa.text("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = :name"),
                {"name": f"rp:{started[0].run_id}" if started else ""},
            ).first()
        ):
            assert not running.done(), "the run ended before it blocked"
            time.sleep(0.1)
        terminated_at = time.monotonic()
        instance.report_run_canceling(started[0])
        result = running.result(timeout=60)
        return result, time.monotonic() - terminated_at


def run_log_text(instance: DagsterInstance, run_id: str) -> str:
    """Everything Dagster stored for a run: events and log messages."""
    return "\n".join(f"{entry.user_message} {entry.dagster_event}" for entry in instance.all_logs(run_id))


def run_in_subprocess(database_url: str, as_of_iso: str, job_name: str = "assignment_reminders") -> bool:
    """Entry point for spawned worker processes (module-level so `spawn` can import it)."""
    if job_name == "assignment_reminders":
        return run_assignment_reminders(database_url, dt.date.fromisoformat(as_of_iso)).success
    config = {"ops": {"decide_certification_actions": {"config": {"as_of": as_of_iso}}}}
    return run_job(database_url, job_name, config).success


@dataclass
class Tick:
    """One sensor evaluation and the runs it asked for, executed as the daemon would launch them."""

    result: SensorResult
    cursor: str | None
    runs: list[ExecuteInProcessResult]

    @property
    def skip_message(self) -> str | None:
        reason = self.result.skip_reason
        return reason.skip_message if reason else None


def tick(
    sensor_name: str,
    instance: DagsterInstance,
    database_url: str,
    alerting: OpsAlerting | None = None,
    cursor: str | None = None,
    *,
    launch: bool = True,
) -> Tick:
    """Evaluate a sensor as deployed, then (unless `launch=False`, a preview) run what it requested."""
    alerting = alerting or alerting_for(database_url)
    defs = build_defs(database_url, alerting)
    resources = {"ops_alerting": alerting, "database": PipelineDatabase(database_url=database_url)}
    sensor_def = defs.resolve_sensor_def(sensor_name)
    with build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        result = sensor_def(context)
        next_cursor = context.cursor
    assert isinstance(result, SensorResult)
    runs = []
    if launch:
        for request in result.run_requests or []:
            job = defs.resolve_job_def(request.job_name or sensor_def.job_name)
            tags = {**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": sensor_name}
            runs.append(
                job.execute_in_process(
                    run_config=request.run_config, tags=tags, instance=instance, raise_on_error=False
                )
            )
    return Tick(result, next_cursor, runs)
