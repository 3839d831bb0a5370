"""Sensors that watch the execution log: long runs, missed runs, undelivered alerts."""

import datetime as dt

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from reminder_pipeline.alerting.resources import OpsAlerting

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


@sensor(
    name="ops_missed_runs",
    minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Alerts once when a scheduled job has not succeeded within its interval plus grace, "
    "and once more when it succeeds again.",
)
def missed_runs_sensor(context: SensorEvaluationContext, ops_alerting: OpsAlerting) -> SkipReason:
    # The cursor remembers when watching started, the clock for a job that never ran at all.
    if context.cursor:
        watching_since = dt.datetime.fromisoformat(context.cursor)
    else:
        watching_since = dt.datetime.now(dt.UTC)
        context.update_cursor(watching_since.isoformat())
    return _summary(ops_alerting.check_missed_runs(watching_since))


@sensor(
    name="ops_alert_redelivery",
    minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Retries alerts that could not be delivered (Slack down, say), up to 5 attempts.",
)
def alert_redelivery_sensor(context: SensorEvaluationContext, ops_alerting: OpsAlerting) -> SkipReason:
    return _summary(ops_alerting.redeliver())
