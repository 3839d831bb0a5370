"""Dagster wiring of the delivery job: a thin op over :func:`deliver_due`, and the incident alerts."""

from dagster import Config, ConfigurableResource, Failure, InitResourceContext, OpExecutionContext, op
from pydantic import Field, PrivateAttr

from reminder_pipeline.core.alerts import (
    NOTIFICATION_DELIVERY_GAVE_UP,
    NOTIFICATION_DELIVERY_RECOVERED,
    Alert,
    OpsAlertSink,
)
from reminder_pipeline.core.backoff import Backoff
from reminder_pipeline.core.execution_log import safe_error_message
from reminder_pipeline.core.guarded_run import (
    JobOutcome,
    RunTicket,
    begin_guarded_run,
    finish_guarded_run,
    guarded_job,
    safe_errors,
    sample_ids,
)
from reminder_pipeline.core.jobs import JobSpec
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.delivery import repository
from reminder_pipeline.delivery import settings as delivery_settings
from reminder_pipeline.delivery.repository import Window
from reminder_pipeline.delivery.service import (
    ChannelSettings,
    DeliveryPolicy,
    DeliveryResult,
    configured_channels,
    deliver_due,
    offered,
)
from reminder_pipeline.delivery.settings import DeliverySettings

NOTIFICATION_DELIVERY = JobSpec(
    name="notification_delivery",
    description="Deliver due notifications to people: one message per recipient, by push gateway or e-mail.",
    lock_key=7_204_004,
    # No schedule and no missed-run window: the sensor `notification_delivery_when_due` starts a run
    # whenever notifications are due (new ones, retries, quiet hours over).
    asset="notification_deliveries",
    counts=("notifications claimed", "notifications delivered"),
)


#: The defaults are the delivery service's own, written once there.
_CHANNELS = ChannelSettings()
_POLICY = DeliveryPolicy(channels=())


class NotificationDelivery(ConfigurableResource):
    """How delivery behaves. Addresses and secrets are not configured here: the domain's settings
    (`delivery/settings.py`: `PUSH_WEBHOOK_URL`, `NOTIFY_SMTP_*`, quiet hours...) are resolved once
    when a run starts and passed down; secrets come from Vault first (docs/delivery.md)."""

    _settings: DeliverySettings | None = PrivateAttr(default=None)

    push_webhook_url: str | None = Field(default=None, description="Override for tests; normally unset.")
    timeout_seconds: float = Field(
        default=_CHANNELS.timeout_seconds, gt=0, le=120, description="Per message, in all (seconds)."
    )
    push_concurrency: int = Field(
        default=_CHANNELS.push_concurrency, ge=1, le=256, description="Requests in flight to the push gateway."
    )
    email_concurrency: int = Field(
        default=_CHANNELS.email_concurrency, ge=1, le=64, description="SMTP connections to the relay."
    )
    first_batch_recipients: int = Field(
        default=_POLICY.first_batch, ge=1, description="The first batch; each next one doubles."
    )
    batch_recipients: int = Field(
        default=_POLICY.max_batch, ge=1, le=2000, description="At most this many recipients per batch (one lock each)."
    )
    max_attempts: int = Field(
        default=_POLICY.backoff.max_attempts, ge=1, le=50, description="Then the notification gives up (alert)."
    )
    backoff_base_seconds: float = Field(default=_POLICY.backoff.base_seconds, gt=0)
    backoff_cap_seconds: float = Field(default=_POLICY.backoff.cap_seconds, gt=0)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._settings = delivery_settings.load()

    def settings(self) -> DeliverySettings:
        """This run's delivery settings, read once (at setup; on first use outside a run)."""
        if self._settings is None:
            self._settings = delivery_settings.load()
        return self._settings

    def channel_settings(self) -> ChannelSettings:
        return ChannelSettings(
            timeout_seconds=self.timeout_seconds,
            push_concurrency=self.push_concurrency,
            email_concurrency=self.email_concurrency,
            push_webhook_url=self.push_webhook_url,
        )

    def policy(self, channels: tuple[str, ...]) -> DeliveryPolicy:
        current = self.settings()
        return DeliveryPolicy(
            channels=channels,
            window=Window.configured(current),
            expire_hours=current.notification_expire_hours,
            backoff=Backoff(self.backoff_base_seconds, self.backoff_cap_seconds, self.max_attempts),
            first_batch=min(self.first_batch_recipients, self.batch_recipients),
            max_batch=self.batch_recipients,
        )


class DeliveryRunConfig(Config):
    retry_gave_up: bool = Field(
        default=False,
        description="Make notifications that gave up (failed, no attempt left) due now, for one more attempt.",
    )


@op(description="Deliver due notifications (claimed FOR UPDATE SKIP LOCKED): one digest per recipient.")
def deliver_notifications(
    context: OpExecutionContext,
    config: DeliveryRunConfig,
    ticket: RunTicket,
    database: PipelineDatabase,
    notification_delivery: NotificationDelivery,
    ops_alerting: OpsAlertSink,
) -> JobOutcome:
    result = DeliveryResult()
    channels_offered: tuple[str, ...] = ()
    try:
        with safe_errors(), database.engine().connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            if config.retry_gave_up:
                retried = repository.retry_gave_up(connection, Window())
                context.log.info(f"Operator retry: {len(retried)} notification(s) that gave up are due again.")
            current = notification_delivery.settings()
            with configured_channels(connection, notification_delivery.channel_settings(), current) as channels:
                channels_offered = offered(channels, current)
                deliver_due(connection, channels, notification_delivery.policy(channels_offered), result=result)
    finally:
        # Even when a later batch failed, what the recorded ones lost is reported (best effort).
        _report_incident(context, ops_alerting, result)
    early = "; stopped early: a channel is failing" if result.stopped_early else ""
    held = (
        f"; {result.held_for_quiet_hours} held for quiet hours (the recipient's own, else NOTIFICATION_QUIET_HOURS)"
        if result.held_for_quiet_hours
        else ""
    )
    context.log.info(
        f"Attempted {result.messages} message(s) carrying {result.claimed} notification(s): {result.delivered}"
        f" notification(s) delivered, {result.retrying} to retry, {result.gave_up} gave up,"
        f" {result.undeliverable} undeliverable; expired: {result.expired_too_old} too old,"
        f" {result.expired_no_longer_due} no longer due; {result.released_orphans} released from a deliverer"
        f" that died{held}{early}"
    )
    if reached_no_one(result):
        # Green means delivered: a run that could reach no one fails (and counts toward the
        # consecutive-failure alert), with what it tried in the failure's metadata.
        raise Failure(
            description=f"delivered none of {result.messages} due message(s): {result.top_errors}",
            metadata=_details(result, channels_offered),
        )
    return JobOutcome(
        evaluated=result.claimed,
        created=result.delivered,
        details=_details(result, channels_offered),
    )


def reached_no_one(result: DeliveryResult) -> bool:
    """Messages were due and attempted, every attempt failed (none delivered). Messages held for
    quiet hours are not attempted, and an unknown recipient is the data's fault: neither counts."""
    return result.messages > 0 and result.messages_delivered == 0 and result.retrying + result.gave_up > 0


def _details(result: DeliveryResult, channels: tuple[str, ...]) -> dict[str, object]:
    return {
        "channels": ",".join(channels) or "none",
        "notifications_claimed": result.claimed,
        "messages": result.messages,
        "messages_delivered": result.messages_delivered,
        "delivered": result.delivered,
        "retrying": result.retrying,
        "gave_up": result.gave_up,
        "undeliverable": result.undeliverable,
        "expired_too_old": result.expired_too_old,
        "expired_no_longer_due": result.expired_no_longer_due,
        "batches": result.batches,
        "released_orphans": result.released_orphans,
        "stopped_early": result.stopped_early,
        "held_for_quiet_hours": result.held_for_quiet_hours,
        "messages_delivered_by_channel": dict(result.delivered_by_channel),
        "errors": result.top_errors or "none",
        "sample_gave_up_ids": sample_ids(result.gave_up_ids),
        "sample_undeliverable_ids": sample_ids(result.undeliverable_ids),
        "sample_expired_ids": sample_ids(result.expired_ids),
    }


def _report_incident(context: OpExecutionContext, ops_alerting: OpsAlertSink, result: DeliveryResult) -> None:
    """Losing notifications (gave up, or expired unsent) opens an incident (one alert); a later run
    that delivers and loses nothing closes it (one more). In between, runs that lose more add to the
    open one. Never raises: the run's own outcome stands whatever happens here."""
    job = NOTIFICATION_DELIVERY.name
    lost = result.lost
    if not lost and not result.messages_delivered:
        return
    try:
        incident = ops_alerting.open_incident(NOTIFICATION_DELIVERY_GAVE_UP, NOTIFICATION_DELIVERY_RECOVERED, job)
    except Exception as error:
        context.log.warning(f"could not read the open delivery incident: {safe_error_message(error)}")
        if not lost:
            return
        incident = None  # unknown: alert rather than stay silent (the database key keeps it once per run)
    payload = {
        "job_name": job,
        "dagster_run_id": context.run_id,
        "lost": lost,
        "delivered": result.delivered,
        "gave_up": result.gave_up,
        "expired": result.expired_too_old,
        "retrying": result.retrying,
        "errors": result.top_errors,
        "sample_notification_ids": sample_ids([*result.gave_up_ids, *result.expired_ids]) or None,
    }
    if lost and incident is None:
        opened = f"run:{context.run_id}"
        alert = Alert(NOTIFICATION_DELIVERY_GAVE_UP, job, None, context.run_id, payload, incident=opened)
    elif lost:
        context.log.warning(f"{lost} notification(s) lost in this run; incident {incident} is already open (alerted).")
        return
    elif incident is not None:
        alert = Alert(NOTIFICATION_DELIVERY_RECOVERED, job, None, context.run_id, payload, incident=incident)
    else:
        return
    outcome = ops_alerting.send(alert)
    if outcome is not None:
        (context.log.info if outcome.sent else context.log.warning)(outcome.describe())


@guarded_job(NOTIFICATION_DELIVERY)
def notification_delivery() -> None:
    finish_guarded_run(deliver_notifications(begin_guarded_run()))
