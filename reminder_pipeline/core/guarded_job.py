"""Building a lock-and-log job: the `@guarded_job` decorator, the schedule its spec declares, and
the asset and checks every such job gets (`guarded_definitions`)."""

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from dagster import (
    AssetSpec,
    DefaultScheduleStatus,
    Definitions,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    in_process_executor,
    job,
    schedule,
)

from reminder_pipeline.core.alerts import LONG_RUNNING_MINUTES
from reminder_pipeline.core.checks import Check, Finding, register
from reminder_pipeline.core.guarded_ops import record_failed_step
from reminder_pipeline.core.jobs import JobSpec, specs_of
from reminder_pipeline.core.run_config import dated_run_request
from reminder_pipeline.core.settings import LOCAL_TIMEZONE

#: Tag that dagster.yaml's run queue limits to one queued run per value: a second guard behind the lock.
SERIAL_TAG = "reminder_pipeline/serial"


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
