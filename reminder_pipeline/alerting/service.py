"""Recording and delivering operations alerts, isolated from the runs they report on.

Every alert is written to `ops_alerts` first (the unique key makes it once per incident), then
delivered; the outcome is recorded on the row, and an undelivered alert is retried with capped
backoff until delivered or, after 24 hours, marked expired. When the application database itself is
down, an alert goes straight to the channels that need no database (the webhook from the
environment or the last one read from Vault, the bot token, e-mail).

Deciding is separate from sending: the `*_alerts` methods only read, so the sensors that call them
change nothing when they are evaluated (or previewed in the UI); the delivery job sends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa

from reminder_pipeline.alerting import settings as alerting_settings
from reminder_pipeline.alerting import store
from reminder_pipeline.alerting.channels import AlertChannel, EmailChannel, SlackBotChannel, SlackWebhookChannel
from reminder_pipeline.alerting.policy import run_url
from reminder_pipeline.alerting.secrets import slack_webhook_url
from reminder_pipeline.core import settings
from reminder_pipeline.core.alerts import (
    CONSECUTIVE_FAILURES,
    LONG_RUNNING,
    LONG_RUNNING_MINUTES,
    MISSED_RUN,
    MISSED_RUN_RECOVERED,
    Alert,
)
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.errors import DatabaseUnavailable, DeliveryFailed
from reminder_pipeline.core.execution_log import safe_error_message

#: Why an alert waits unsent when no channel is configured (not a failed attempt: nothing to retry).
NO_ALERT_CHANNEL = (
    "no alert channel configured (SLACK_WEBHOOK_URL, SLACK_BOT_TOKEN + SLACK_ALERT_CHANNEL,"
    " ALERT_SMTP_HOST + ALERT_EMAIL_TO, or slack_alert_webhook_url in Supabase Vault)"
)
#: The error line of a failure alert whose run never wrote an execution-log row.
NO_LOG_ROW_MESSAGE = (
    "the run failed before it could write an execution-log row (database unreachable?): see the Dagster run"
)


#: Outcome kinds of bookkeeping, not alerts: an alert resolved unsent, an alert marked expired.
RESOLVED = "resolved"
EXPIRED = "expired"


@dataclass(frozen=True)
class AlertOutcome:
    """What happened to one alert, safe to log (ids and reasons only)."""

    kind: str
    job_name: str
    alert_id: UUID | None
    sent: bool
    error: str | None = None
    #: Unsent alerts of the incident this one closed (resolved, no longer retried).
    resolved: tuple[UUID, ...] = ()

    def describe(self) -> str:
        if self.kind in (RESOLVED, EXPIRED):
            return f"alert {self.alert_id} {self.error}"
        if self.alert_id is None:
            return f"{self.kind} alert for {self.job_name} not recorded: {self.error}"
        state = "delivered" if self.sent else f"NOT delivered ({self.error})"
        closed = f"; resolved {len(self.resolved)} unsent alert(s) of the incident it closes" if self.resolved else ""
        return f"{self.kind} alert {self.alert_id} for {self.job_name} {state}{closed}"


@dataclass
class AlertSettings:
    failure_threshold: int = 2
    timeout_seconds: float = 5.0
    webserver_base_url: str | None = None
    slack_webhook_url: str | None = None  # normally unset: Vault, then SLACK_WEBHOOK_URL
    long_running_minutes: float = LONG_RUNNING_MINUTES


def slack_bot_channel_from_environment(timeout_seconds: float) -> SlackBotChannel | None:
    """`SLACK_BOT_TOKEN` and `SLACK_ALERT_CHANNEL` (both, or no bot channel)."""
    current = alerting_settings.load()
    token = settings.secret(current.slack_bot_token)
    if not token or not current.slack_alert_channel:
        return None
    return SlackBotChannel(token, current.slack_alert_channel, timeout_seconds, current.slack_api_url)


def email_channel_from_environment(timeout_seconds: float) -> EmailChannel | None:
    """`ALERT_SMTP_HOST` (+ `_PORT`, `_USER`, `_PASSWORD`), `ALERT_EMAIL_FROM`, `ALERT_EMAIL_TO` (comma list)."""
    current = alerting_settings.load()
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
        engine: sa.Engine | None = None,
    ) -> None:
        self.database_url = database_url
        self.settings = settings
        self._channels = channels or self._configured_channels
        #: Inside a run, the run's engine: its sessions are named `rp:<run id>` and carry the job's
        #: timeouts, so Terminate stops them like the job's own. Outside, a connection of its own.
        self._engine = engine

    def _connect(self, *, autocommit: bool = False) -> AbstractContextManager[sa.Connection]:
        return connect(self.database_url, autocommit=autocommit, engine=self._engine)

    def _configured_channels(self, connection: sa.Connection | None) -> list[AlertChannel]:
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

    def has_channel(self) -> bool:
        """Whether any alert channel is configured (reads only: the environment, Vault)."""
        try:
            with self._connect(autocommit=True) as connection:
                return bool(self._channels(connection))
        except DatabaseUnavailable:
            return bool(self._channels(None))
        except Exception:
            return True  # a channel that cannot be set up: the delivery run records why

    def _send_to_channels(self, connection: sa.Connection | None, alert: Alert) -> tuple[bool, str | None]:
        try:
            channels = list(self._channels(connection))
        except Exception as error:
            channels, errors = [], [f"channel setup: {safe_error_message(error)}"]
        else:
            errors = [] if channels else [NO_ALERT_CHANNEL]
        delivered = False
        for channel in channels:
            try:
                channel.deliver(alert)
                delivered = True
            except DeliveryFailed as error:
                errors.append(str(error))
            except Exception as error:
                errors.append(f"{channel.name}: {type(error).__name__}")
        return delivered, "; ".join(errors) or None

    def _deliver(self, connection: sa.Connection, alert_id: UUID, alert: Alert) -> AlertOutcome:
        delivered, error_text = self._send_to_channels(connection, alert)
        if error_text == NO_ALERT_CHANNEL:
            store.mark_waiting_for_channel(connection, alert_id, NO_ALERT_CHANNEL)
        else:
            store.mark_delivery(connection, alert_id, delivered=delivered, error=error_text)
        return AlertOutcome(alert.kind, alert.job_name, alert_id, delivered, error_text)

    def send(self, alert: Alert) -> AlertOutcome | None:
        """Record and deliver; None when the incident was alerted already. With the database down,
        deliver without recording (the outcome says so)."""
        return self.deliver_new([alert])[0]

    def deliver_new(self, alerts: Sequence[Alert]) -> list[AlertOutcome | None]:
        """Record each alert once per incident and deliver the ones that are new (None for a repeat)."""
        try:
            with self._connect(autocommit=True) as connection:
                outcomes: list[AlertOutcome | None] = []
                for alert in alerts:
                    enriched = self._with_log_details(connection, alert)
                    alert_id = store.record(connection, enriched)
                    if alert_id is None:
                        outcomes.append(None)
                        continue
                    resolved = tuple(store.resolve_closed(connection, enriched))
                    outcome = self._deliver(connection, alert_id, enriched)
                    outcomes.append(dataclasses.replace(outcome, resolved=resolved))
                return outcomes
        except DatabaseUnavailable as error:
            return [self._deliver_unrecorded(alert, f"not recorded ({error})") for alert in alerts]
        except Exception as error:
            return [
                AlertOutcome(alert.kind, alert.job_name, None, False, safe_error_message(error)) for alert in alerts
            ]

    def _deliver_unrecorded(self, alert: Alert, reason: str) -> AlertOutcome:
        payload = dict(alert.payload)
        if alert.kind == CONSECUTIVE_FAILURES and not payload.get("error_message"):
            payload["error_message"] = NO_LOG_ROW_MESSAGE
        delivered, error = self._send_to_channels(None, dataclasses.replace(alert, payload=payload))
        return AlertOutcome(alert.kind, alert.job_name, None, delivered, "; ".join(filter(None, [reason, error])))

    @staticmethod
    def _with_log_details(connection: sa.Connection, alert: Alert) -> Alert:
        """A failure alert decided from Dagster's run storage, completed from the execution log: the
        log row, its sanitised error, and the last success when Dagster's history did not reach it."""
        if alert.kind != CONSECUTIVE_FAILURES or alert.dagster_run_id is None or alert.execution_log_id:
            return alert
        row = store.log_row_of_run(connection, alert.dagster_run_id)
        payload = dict(alert.payload)
        payload["error_message"] = (row.error_message if row is not None else None) or NO_LOG_ROW_MESSAGE
        if row is not None:
            payload["execution_log_id"] = str(row.id)
        if payload.get("last_success_at") is None:
            last = store.last_success_at(connection, alert.job_name)
            payload["last_success_at"] = last.isoformat() if last else None
        return dataclasses.replace(alert, execution_log_id=row.id if row is not None else None, payload=payload)

    def redeliver(self, *, send: bool = True) -> list[AlertOutcome]:
        """Retry the undelivered alerts that are due (capped backoff; not with `send=False`, when
        there is no channel to try), once the ones whose long run has ended are resolved; mark
        day-old ones expired."""
        with self._connect() as connection, connection.begin():
            resolved = store.resolve_finished_long_runs(connection)
            due = store.claim_due(connection) if send else []
            outcomes = [self._deliver(connection, alert_id, alert) for alert_id, alert in due]
            expired = store.expire_stale(connection)
        return (
            outcomes
            + [
                AlertOutcome(RESOLVED, "-", alert_id, False, "resolved unsent: its long run ended first")
                for alert_id in resolved
            ]
            + [
                AlertOutcome(EXPIRED, "-", alert_id, False, "marked expired: undelivered for 24 hours")
                for alert_id in expired
            ]
        )

    def is_recorded(self, alert: Alert) -> bool:
        """Whether this incident's alert is in `ops_alerts` (False when the database cannot tell)."""
        try:
            with self._connect(autocommit=True) as connection:
                return store.is_recorded(connection, alert)
        except DatabaseUnavailable:
            return False

    def open_incident(self, kind: str, closed_by: str, job_name: str) -> str | None:
        with self._connect(autocommit=True) as connection:
            return store.open_incident(connection, kind, closed_by, job_name)

    def backlog(self) -> store.DeliveryBacklog:
        with self._connect(autocommit=True) as connection:
            return store.backlog(connection)

    # -- watching --------------------------------------------------------------------------------

    def long_running_alerts(self) -> list[Alert]:
        """One alert per log row still `running` after `long_running_minutes` (reads only)."""
        with self._connect(autocommit=True) as connection:
            rows = store.running_longer_than(connection, self.settings.long_running_minutes)
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
        return alerts

    def missed_run_alerts(self, watching_since: dt.datetime, windows: dict[str, float]) -> list[Alert]:
        """A job with no success for longer than its window (hours, by job name): one alert per
        incident, and one more when it succeeds again. Without any success, the clock starts at the
        job's first log row, or when watching started if it never ran at all. Reads only."""
        found: list[Alert] = []
        with self._connect(autocommit=True) as connection:
            for job_name, hours in sorted(windows.items()):
                state = store.success_state(connection, job_name)
                open_incidents = store.open_missed_run_incidents(connection, job_name, state.last_success_id)
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
                found += alerts
        return found
