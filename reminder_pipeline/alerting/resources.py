"""The Dagster face of alerting: configuration in, an :class:`AlertService` out."""

import datetime as dt

from pydantic import Field

from reminder_pipeline.alerting.service import AlertOutcome, AlertService, AlertSettings
from reminder_pipeline.core.alerts import Alert, OpsAlertSink
from reminder_pipeline.core.execution_log import FinishedRun
from reminder_pipeline.core.resources import PipelineDatabase


class OpsAlerting(OpsAlertSink):
    """Operations alerts. Secrets are not configured here: the Slack webhook URL is read when an
    alert is sent, from Supabase Vault (`slack_alert_webhook_url`) or `SLACK_WEBHOOK_URL`."""

    database: PipelineDatabase
    failure_threshold: int = Field(default=2, ge=1, description="Alert when this many runs in a row failed.")
    timeout_seconds: float = Field(default=5.0, gt=0, description="Per-channel delivery timeout.")
    webserver_base_url: str | None = Field(default=None, description="Dagster UI URL, for links to runs.")
    slack_webhook_url: str | None = Field(default=None, description="Override for tests; normally unset.")
    long_running_minutes: float = Field(default=30, gt=0)

    def service(self) -> AlertService:
        return AlertService(
            self.database.url(),
            AlertSettings(
                failure_threshold=self.failure_threshold,
                timeout_seconds=self.timeout_seconds,
                webserver_base_url=self.webserver_base_url,
                slack_webhook_url=self.slack_webhook_url,
                long_running_minutes=self.long_running_minutes,
            ),
        )

    def after_run_finished(self, finished: FinishedRun) -> AlertOutcome | None:
        return self.service().after_run_finished(finished)

    def send(self, alert: Alert) -> AlertOutcome | None:
        return self.service().send(alert)

    def check_long_running(self) -> list[AlertOutcome]:
        return self.service().check_long_running()

    def check_missed_runs(self, watching_since: dt.datetime, windows: dict[str, float]) -> list[AlertOutcome]:
        return self.service().check_missed_runs(watching_since, windows)

    def redeliver(self) -> list[AlertOutcome]:
        return self.service().redeliver()
