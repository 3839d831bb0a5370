"""The delivery domain's Dagster definitions: its lock-and-log job, its checks, and the sensor
that starts it when notifications are due."""

from dagster import Definitions

from reminder_pipeline.core.guarded_run import guarded_definitions
from reminder_pipeline.delivery import checks, jobs
from reminder_pipeline.delivery.sensors import notification_delivery_when_due

defs = Definitions.merge(
    guarded_definitions(jobs, checks.CHECKS), Definitions(sensors=[notification_delivery_when_due])
)
