"""Sensors that watch the execution log: long runs, missed runs, undelivered alerts."""

import datetime as dt
from collections.abc import Sequence

from dagster import DefaultSensorStatus, SensorDefinition, SensorEvaluationContext, SkipReason, sensor

from reminder_pipeline.alerting.resources import OpsAlerting
from reminder_pipeline.core.jobs import JobSpec

CHECK_INTERVAL_SECONDS = 300


def _summary(outcomes: list) -> SkipReason:
    return SkipReason("; ".join(outcome.describe() for outcome in outcomes) or "nothing to report")


@sensor(
    name="ops_long_running_runs",
    minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Alerts once for any execution-log row still running after the configured minutes (30).",
)
def long_running_runs_sensor(context: SensorEvaluationContext, ops_alerting: OpsAlerting) -> SkipReason:
    return _summary(ops_alerting.check_long_running())


def missed_runs_sensor(jobs: Sequence[JobSpec]) -> SensorDefinition:
    """Watches every job whose spec declares a missed-run window."""
    windows = {spec.name: float(spec.missed_run_hours) for spec in jobs if spec.missed_run_hours is not None}

    @sensor(
        name="ops_missed_runs",
        minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description="Alerts once when a scheduled job has not succeeded within its missed-run window ("
        + ", ".join(f"{name} {hours:g} h" for name, hours in sorted(windows.items()))
        + "), and once more when it succeeds again.",
    )
    def ops_missed_runs(context: SensorEvaluationContext, ops_alerting: OpsAlerting) -> SkipReason:
        # The cursor remembers when watching started, the clock for a job that never ran at all.
        if context.cursor:
            watching_since = dt.datetime.fromisoformat(context.cursor)
        else:
            watching_since = dt.datetime.now(dt.UTC)
            context.update_cursor(watching_since.isoformat())
        return _summary(ops_alerting.check_missed_runs(watching_since, windows))

    return ops_missed_runs


@sensor(
    name="ops_alert_redelivery",
    minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Retries alerts that could not be delivered (Slack down, say), up to 5 attempts.",
)
def alert_redelivery_sensor(context: SensorEvaluationContext, ops_alerting: OpsAlerting) -> SkipReason:
    return _summary(ops_alerting.redeliver())
