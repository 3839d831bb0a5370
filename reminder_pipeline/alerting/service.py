"""Recording and delivering operations alerts, isolated from the runs they report on.

Every alert is written to `ops_alerts` first (the unique key makes it once per incident), then
delivered; the outcome is recorded on the row. Nothing here raises: a database or channel problem
becomes an :class:`AlertOutcome` the caller logs, so an alert can never fail or change a run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa

from reminder_pipeline.alerting import store
from reminder_pipeline.alerting.channels import AlertChannel, EmailChannel, SlackBotChannel, SlackWebhookChannel
from reminder_pipeline.alerting.policy import alert_for_finished_run, alert_kind, run_url
from reminder_pipeline.alerting.secrets import slack_webhook_url
from reminder_pipeline.core import settings
from reminder_pipeline.core.alerts import LONG_RUNNING, MISSED_RUN, MISSED_RUN_RECOVERED, Alert
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.errors import DeliveryFailed
from reminder_pipeline.core.execution_log import FinishedRun, safe_error_message


@dataclass(frozen=True)
class AlertOutcome:
    """What happened to one alert, safe to log (ids and reasons only)."""

    kind: str
    job_name: str
    alert_id: UUID | None
    sent: bool
    error: str | None = None

    def describe(self) -> str:
        if self.alert_id is None:
            return f"{self.kind} alert for {self.job_name} not recorded: {self.error}"
        state = "delivered" if self.sent else f"NOT delivered ({self.error})"
        return f"{self.kind} alert {self.alert_id} for {self.job_name} {state}"


@dataclass
class AlertSettings:
    failure_threshold: int = 2
    timeout_seconds: float = 5.0
    webserver_base_url: str | None = None
    slack_webhook_url: str | None = None  # normally unset: Vault, then SLACK_WEBHOOK_URL
    long_running_minutes: float = 30
    max_delivery_attempts: int = 5


def slack_bot_channel_from_environment(timeout_seconds: float) -> SlackBotChannel | None:
    """`SLACK_BOT_TOKEN` and `SLACK_ALERT_CHANNEL` (both, or no bot channel)."""
    current = settings.load()
    token = settings.secret(current.slack_bot_token)
    if not token or not current.slack_alert_channel:
        return None
    return SlackBotChannel(token, current.slack_alert_channel, timeout_seconds, current.slack_api_url)


def email_channel_from_environment(timeout_seconds: float) -> EmailChannel | None:
    """`ALERT_SMTP_HOST` (+ `_PORT`, `_USER`, `_PASSWORD`), `ALERT_EMAIL_FROM`, `ALERT_EMAIL_TO` (comma list)."""
    current = settings.load()
    recipients = current.alert_email_recipients()
    if not current.alert_smtp_host or not recipients:
        return None
    return EmailChannel(
        host=current.alert_smtp_host,
        port=current.alert_smtp_port,
        sender=current.alert_email_from,
        recipients=recipients,
        timeout_seconds=timeout_seconds,
        username=current.alert_smtp_user,
        password=settings.secret(current.alert_smtp_password),
    )


class AlertService:
    def __init__(
        self,
        database_url: str,
        settings: AlertSettings,
        channels: Callable[[sa.Connection], Sequence[AlertChannel]] | None = None,
    ) -> None:
        self.database_url = database_url
        self.settings = settings
        self._channels = channels or self._configured_channels

    def _configured_channels(self, connection: sa.Connection) -> list[AlertChannel]:
        channels: list[AlertChannel] = []
        url = self.settings.slack_webhook_url or slack_webhook_url(connection)
        if url:
            channels.append(SlackWebhookChannel(url, self.settings.timeout_seconds))
        bot = slack_bot_channel_from_environment(self.settings.timeout_seconds)
        if bot:
            channels.append(bot)
        email = email_channel_from_environment(self.settings.timeout_seconds)
        if email:
            channels.append(email)
        return channels

    # -- sending ---------------------------------------------------------------------------------

    def _deliver(self, connection: sa.Connection, alert_id: UUID, alert: Alert) -> AlertOutcome:
        try:
            channels = list(self._channels(connection))
        except Exception as error:
            channels, errors = [], [f"channel setup: {safe_error_message(error)}"]
        else:
            errors = [] if channels else ["no alert channel configured (Vault or SLACK_WEBHOOK_URL, ALERT_SMTP_*)"]
        delivered = False
        for channel in channels:
            try:
                channel.deliver(alert)
                delivered = True
            except DeliveryFailed as error:
                errors.append(str(error))
            except Exception as error:
                errors.append(f"{channel.name}: {type(error).__name__}")
        error_text = "; ".join(errors) or None
        store.mark_delivery(connection, alert_id, delivered=delivered, error=error_text)
        return AlertOutcome(alert.kind, alert.job_name, alert_id, delivered, error_text)

    def send(self, alert: Alert) -> AlertOutcome | None:
        """Record and deliver; None when the incident was alerted already."""
        try:
            with connect(self.database_url, autocommit=True) as connection:
                alert_id = store.record(connection, alert)
                if alert_id is None:
                    return None
                return self._deliver(connection, alert_id, alert)
        except Exception as error:
            return AlertOutcome(alert.kind, alert.job_name, None, False, safe_error_message(error))

    def after_run_finished(self, finished: FinishedRun) -> AlertOutcome | None:
        """Called as a run's log row is finalised: a failure alert at the threshold, a recovery after.
        Most runs call for nothing and cost no query."""
        if alert_kind(finished, self.settings.failure_threshold) is None:
            return None
        try:
            with connect(self.database_url, autocommit=True) as connection:
                last_success = store.last_success_at(connection, finished.job_name)
        except Exception as error:
            return AlertOutcome("after_run_finished", finished.job_name, None, False, safe_error_message(error))
        alert = alert_for_finished_run(
            finished,
            threshold=self.settings.failure_threshold,
            last_success_at=last_success,
            webserver_base_url=self.settings.webserver_base_url,
        )
        return self.send(alert) if alert is not None else None

    def redeliver(self) -> list[AlertOutcome]:
        """Retry undelivered alerts (for example after Slack was down)."""
        with connect(self.database_url) as connection, connection.begin():
            return [
                self._deliver(connection, alert_id, alert)
                for alert_id, alert in store.claim_undelivered(connection, self.settings.max_delivery_attempts)
            ]

    # -- watching --------------------------------------------------------------------------------

    def check_long_running(self) -> list[AlertOutcome]:
        """One alert per log row still `running` after `long_running_minutes`."""
        with connect(self.database_url, autocommit=True) as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT id, job_name, dagster_run_id, started_at,"
                    " floor(extract(epoch FROM clock_timestamp() - started_at) / 60)::int AS minutes"
                    " FROM public.cron_execution_logs WHERE status = 'running'"
                    " AND started_at < clock_timestamp() - make_interval(secs => :minutes * 60)"
                ),
                {"minutes": self.settings.long_running_minutes},
            ).all()
            last_success = {row.job_name: store.last_success_at(connection, row.job_name) for row in rows}
        alerts = [
            Alert(
                LONG_RUNNING,
                row.job_name,
                row.id,
                row.dagster_run_id,
                {
                    "job_name": row.job_name,
                    "execution_log_id": str(row.id),
                    "dagster_run_id": row.dagster_run_id,
                    "run_url": run_url(self.settings.webserver_base_url, row.dagster_run_id),
                    "started_at": row.started_at.isoformat(),
                    "running_minutes": row.minutes,
                    "last_success_at": last_success[row.job_name].isoformat() if last_success[row.job_name] else None,
                },
            )
            for row in rows
        ]
        return [outcome for alert in alerts if (outcome := self.send(alert)) is not None]

    def check_missed_runs(self, watching_since: dt.datetime, windows: dict[str, float]) -> list[AlertOutcome]:
        """A job with no success for longer than its window (hours, by job name): one alert per
        incident, and one more when it succeeds again. Without any success, the clock starts at the
        job's first log row, or when watching started if it never ran at all."""
        outcomes: list[AlertOutcome] = []
        with connect(self.database_url, autocommit=True) as connection:
            for job_name, hours in sorted(windows.items()):
                state = connection.execute(
                    sa.text(
                        "SELECT s.id AS last_success_id, s.completed_at AS last_success_at,"
                        " (SELECT min(started_at) FROM public.cron_execution_logs WHERE job_name = :job) AS first_seen,"
                        " clock_timestamp() AS now"
                        " FROM (SELECT 1) AS one LEFT JOIN LATERAL ("
                        "  SELECT id, completed_at FROM public.cron_execution_logs"
                        "  WHERE job_name = :job AND status = 'success' ORDER BY started_at DESC LIMIT 1) AS s ON true"
                    ),
                    {"job": job_name},
                ).one()
                open_incidents = (
                    connection.execute(
                        sa.text(
                            "SELECT missed.execution_log_id FROM public.ops_alerts AS missed"
                            " WHERE missed.kind = :missed AND missed.job_name = :job"
                            " AND missed.execution_log_id IS DISTINCT FROM CAST(:current AS uuid)"
                            " AND NOT EXISTS (SELECT 1 FROM public.ops_alerts AS back WHERE back.kind = :back"
                            "   AND back.job_name = missed.job_name"
                            "   AND back.execution_log_id IS NOT DISTINCT FROM missed.execution_log_id)"
                        ),
                        {
                            "missed": MISSED_RUN,
                            "back": MISSED_RUN_RECOVERED,
                            "job": job_name,
                            "current": state.last_success_id,
                        },
                    )
                    .scalars()
                    .all()
                )
                since = state.last_success_at or state.first_seen or watching_since
                overdue = state.now - since > dt.timedelta(hours=hours)
                payload = {
                    "job_name": job_name,
                    "last_success_at": state.last_success_at.isoformat() if state.last_success_at else None,
                    "execution_log_id": str(state.last_success_id) if state.last_success_id else None,
                    "hours_since_success": int((state.now - since).total_seconds() // 3600),
                    "limit_hours": hours,
                }
                alerts = []
                if overdue:
                    alerts.append(Alert(MISSED_RUN, job_name, state.last_success_id, None, payload))
                alerts += [
                    Alert(
                        MISSED_RUN_RECOVERED,
                        job_name,
                        incident,
                        None,
                        {**payload, "incident_last_success_id": str(incident) if incident else None},
                    )
                    for incident in open_incidents
                    if state.last_success_id is not None
                ]
                outcomes += [outcome for alert in alerts if (outcome := self.send(alert)) is not None]
        return outcomes
