"""The Dagster face of alerting: configuration in, an :class:`AlertService` out."""

import datetime as dt

from dagster import ConfigurableResource
from pydantic import Field

from reminder_pipeline.alerting.service import DEFAULT_MISSED_RUN_HOURS, AlertOutcome, AlertService, AlertSettings
from reminder_pipeline.core.execution_log import FinishedRun
from reminder_pipeline.core.resources import PipelineDatabase


class OpsAlerting(ConfigurableResource):
    """Operations alerts. Secrets are not configured here: the Slack webhook URL is read when an
    alert is sent, from Supabase Vault (`slack_alert_webhook_url`) or `SLACK_WEBHOOK_URL`."""

    database: PipelineDatabase
    failure_threshold: int = Field(default=2, ge=1, description="Alert when this many runs in a row failed.")
    timeout_seconds: float = Field(default=5.0, gt=0, description="Per-channel delivery timeout.")
    webserver_base_url: str | None = Field(default=None, description="Dagster UI URL, for links to runs.")
    slack_webhook_url: str | None = Field(default=None, description="Override for tests; normally unset.")
    long_running_minutes: float = Field(default=30, gt=0)
    missed_run_hours: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MISSED_RUN_HOURS))

    def service(self) -> AlertService:
        return AlertService(
            self.database.url(),
            AlertSettings(
                failure_threshold=self.failure_threshold,
                timeout_seconds=self.timeout_seconds,
                webserver_base_url=self.webserver_base_url,
                slack_webhook_url=self.slack_webhook_url,
                long_running_minutes=self.long_running_minutes,
                missed_run_hours=dict(self.missed_run_hours),
            ),
        )

    def after_run_finished(self, finished: FinishedRun) -> AlertOutcome | None:
        return self.service().after_run_finished(finished)

    def check_long_running(self) -> list[AlertOutcome]:
        return self.service().check_long_running()

    def check_missed_runs(self, watching_since: dt.datetime) -> list[AlertOutcome]:
        return self.service().check_missed_runs(watching_since)

    def redeliver(self) -> list[AlertOutcome]:
        return self.service().redeliver()
