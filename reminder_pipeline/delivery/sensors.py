"""Start `notification_delivery` whenever notifications are due: new ones from a reminder or
certification run, retries whose backoff is over, messages whose quiet hours ended, claims of a
deliverer that died. Reads only (the outbox and Dagster's run storage)."""

import time

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from reminder_pipeline.core.database import connect
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.delivery import repository
from reminder_pipeline.delivery import settings as delivery_settings
from reminder_pipeline.delivery.jobs import NOTIFICATION_DELIVERY, notification_delivery
from reminder_pipeline.delivery.service import delivery_configured

CHECK_INTERVAL_SECONDS = 60
#: A due set that did not change for this long is asked for again (a run that failed, say).
RETRY_WINDOW_SECONDS = 15 * 60
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


@sensor(
    name="notification_delivery_when_due",
    job=notification_delivery,
    minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Starts notification_delivery when notifications are due (checked every minute); reads only.",
)
def notification_delivery_when_due(context: SensorEvaluationContext, database: PipelineDatabase) -> SensorResult:
    running = context.instance.get_runs_count(RunsFilter(job_name=NOTIFICATION_DELIVERY.name, statuses=IN_PROGRESS))
    if running:
        return SensorResult(skip_reason=SkipReason("a notification_delivery run is queued or running"))
    current = delivery_settings.load()  # read once per tick
    with connect(database.url(), autocommit=True) as connection:
        backlog = repository.backlog(
            connection, repository.Window.configured(current), current.notification_expire_hours
        )
        configured = delivery_configured(connection, current)
    if not backlog.due:
        return SensorResult(skip_reason=SkipReason("no notification is due (or every recipient is in quiet hours)"))
    if not configured:
        # A run now could only fail (a fresh install would alert on its own); the notifications wait,
        # the `notifications_not_stuck_pending` check warns after a day, and `doctor` names the setting.
        return SensorResult(
            skip_reason=SkipReason(
                f"{backlog.due} notification(s) are due and no delivery channel is configured"
                " (PUSH_WEBHOOK_URL or NOTIFY_SMTP_HOST, docs/delivery.md): they wait"
            )
        )
    period = int(time.time() // RETRY_WINDOW_SECONDS)
    request = RunRequest(run_key=f"due:{backlog.fingerprint}:{period}", tags={"due_notifications": str(backlog.due)})
    return SensorResult(run_requests=[request])
