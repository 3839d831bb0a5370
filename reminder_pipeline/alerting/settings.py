"""The alerting domain's environment variables (docs/alerting.md), read at run time."""

from __future__ import annotations

from pydantic import Field, SecretStr

from reminder_pipeline.core import doctor, settings


@settings.register()
class AlertingSettings(settings.SettingsGroup):
    slack_webhook_url: SecretStr | None = Field(default=None, description="Slack incoming webhook (else Vault).")
    slack_bot_token: SecretStr | None = Field(
        default=None, description="Slack bot token (dagster-slack), beside the webhook."
    )
    slack_alert_channel: str | None = Field(default=None, description="Channel the bot posts to, e.g. #ops-alerts.")
    slack_api_url: str = Field(default="https://slack.com/api/", description="Slack Web API base (a proxy, a test).")
    alert_smtp_host: str | None = None
    alert_smtp_port: int = Field(default=587, ge=1, le=65535)
    alert_smtp_user: str | None = None
    alert_smtp_password: SecretStr | None = None
    alert_email_from: str = "reminder-pipeline@localhost"
    alert_email_to: str | None = Field(default=None, description="Comma-separated recipients.")

    def alert_email_recipients(self) -> tuple[str, ...]:
        return tuple(address.strip() for address in (self.alert_email_to or "").split(",") if address.strip())


def load() -> AlertingSettings:
    return settings.load_group(AlertingSettings)


def alert_channel_warning() -> str | None:
    """The line to say once (at start-up, in `doctor`) when no alert channel is in the environment;
    alerts then wait in `ops_alerts` unsent instead of failing attempt after attempt."""
    if (
        settings.is_set("SLACK_WEBHOOK_URL")
        or (settings.is_set("ALERT_SMTP_HOST") and settings.is_set("ALERT_EMAIL_TO"))
        or (settings.is_set("SLACK_BOT_TOKEN") and settings.is_set("SLACK_ALERT_CHANNEL"))
    ):
        return None
    # Vault may still hold the webhook (Supabase); only the database can tell, at run time.
    return (
        "alerts: no alert channel in the environment (SLACK_WEBHOOK_URL, SLACK_BOT_TOKEN + SLACK_ALERT_CHANNEL,"
        " ALERT_SMTP_HOST + ALERT_EMAIL_TO); only a webhook in Supabase Vault (slack_alert_webhook_url) would"
        " remain. Alerts are recorded and wait unsent (`reminder-pipeline logs` lists them)"
    )


doctor.register_startup_warning(alert_channel_warning)
