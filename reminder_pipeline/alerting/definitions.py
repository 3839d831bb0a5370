"""The alerting domain's Dagster definitions: sensors that watch the jobs they are given, and the
two jobs those sensors launch (alert delivery, dead-run janitor)."""

from collections.abc import Sequence

from dagster import Definitions

from reminder_pipeline.alerting.jobs import alert_delivery_job, dead_runs_job
from reminder_pipeline.alerting.sensors import (
    alert_redelivery_sensor,
    dead_runs_sensor,
    long_running_runs_sensor,
    missed_runs_sensor,
    run_failures_sensor,
)
from reminder_pipeline.core.jobs import JobSpec


def alerting_definitions(jobs: Sequence[JobSpec]) -> Definitions:
    return Definitions(
        jobs=[alert_delivery_job, dead_runs_job],
        sensors=[
            long_running_runs_sensor,
            missed_runs_sensor(jobs),
            run_failures_sensor(jobs),
            alert_redelivery_sensor,
            dead_runs_sensor(jobs),
        ],
    )
