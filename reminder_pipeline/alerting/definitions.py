"""The alerting domain's Dagster definitions: sensors that watch the jobs they are given."""

from collections.abc import Sequence

from dagster import Definitions

from reminder_pipeline.alerting.sensors import alert_redelivery_sensor, long_running_runs_sensor, missed_runs_sensor
from reminder_pipeline.core.jobs import JobSpec


def alerting_definitions(jobs: Sequence[JobSpec]) -> Definitions:
    return Definitions(sensors=[long_running_runs_sensor, missed_runs_sensor(jobs), alert_redelivery_sensor])
