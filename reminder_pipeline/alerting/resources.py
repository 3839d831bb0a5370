"""The Dagster face of alerting: configuration in, an :class:`AlertService` out."""

import datetime as dt
from collections.abc import Sequence

from pydantic import Field

from reminder_pipeline.alerting.service import AlertOutcome, AlertService, AlertSettings
from reminder_pipeline.alerting.store import DeliveryBacklog
from reminder_pipeline.core.alerts import LONG_RUNNING_MINUTES, Alert, OpsAlertSink
from reminder_pipeline.core.resources import PipelineDatabase


class OpsAlerting(OpsAlertSink):
    """Operations alerts. Secrets are not configured here: the Slack webhook URL is read when an
    alert is sent, from Supabase Vault (`slack_alert_webhook_url`) or `SLACK_WEBHOOK_URL`."""

    database: PipelineDatabase
    failure_threshold: int = Field(default=2, ge=1, description="Alert when this many runs in a row failed.")
    timeout_seconds: float = Field(default=5.0, gt=0, description="Per-channel delivery timeout.")
    webserver_base_url: str | None = Field(default=None, description="Dagster UI URL, for links to runs.")
    slack_webhook_url: str | None = Field(default=None, description="Override for tests; normally unset.")
    long_running_minutes: float = Field(default=LONG_RUNNING_MINUTES, gt=0)

    def service(self) -> AlertService:
        return AlertService(
            self.database.url(),
            engine=self.database.engine(),
            settings=AlertSettings(
                failure_threshold=self.failure_threshold,
                timeout_seconds=self.timeout_seconds,
                webserver_base_url=self.webserver_base_url,
                slack_webhook_url=self.slack_webhook_url,
                long_running_minutes=self.long_running_minutes,
            ),
        )

    def send(self, alert: Alert) -> AlertOutcome | None:
        return self.service().send(alert)

    def deliver_new(self, alerts: Sequence[Alert]) -> list[AlertOutcome | None]:
        return self.service().deliver_new(alerts)

    def redeliver(self, *, send: bool = True) -> list[AlertOutcome]:
        return self.service().redeliver(send=send)

    def open_incident(self, kind: str, closed_by: str, job_name: str) -> str | None:
        return self.service().open_incident(kind, closed_by, job_name)

    def is_recorded(self, alert: Alert) -> bool:
        return self.service().is_recorded(alert)

    def has_channel(self) -> bool:
        return self.service().has_channel()

    def backlog(self) -> DeliveryBacklog:
        return self.service().backlog()

    def long_running_alerts(self) -> list[Alert]:
        return self.service().long_running_alerts()

    def missed_run_alerts(self, watching_since: dt.datetime, windows: dict[str, float]) -> list[Alert]:
        return self.service().missed_run_alerts(watching_since, windows)
