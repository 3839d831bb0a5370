"""Where alerts go. Each channel has a short timeout and raises :class:`DeliveryFailed` with a message
that never contains the secret it was configured with (a webhook URL is a credential)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from reminder_pipeline.alerting.policy import email_message, slack_message
from reminder_pipeline.core.alerts import Alert
from reminder_pipeline.core.errors import DeliveryFailed


class AlertChannel(Protocol):
    name: str

    def deliver(self, alert: Alert) -> None: ...


@dataclass
class SlackWebhookChannel:
    """Slack incoming webhook through slack_sdk. `WebhookClient` does not raise on 4xx/5xx, so the
    status is checked; its retry handlers are turned off so a dead endpoint costs one timeout."""

    webhook_url: str
    timeout_seconds: float = 5.0
    name: str = "slack"

    def deliver(self, alert: Alert) -> None:
        from slack_sdk.webhook import WebhookClient

        client = WebhookClient(self.webhook_url, timeout=self.timeout_seconds, retry_handlers=[])  # type: ignore[arg-type]
        try:
            response = client.send_dict(slack_message(alert))
        except Exception as error:  # timeouts, refused connections, TLS errors ...
            raise DeliveryFailed(self._scrub(f"slack webhook: {type(error).__name__}: {error}")) from None
        if response.status_code != 200:
            raise DeliveryFailed(f"slack webhook answered HTTP {response.status_code}")

    def __repr__(self) -> str:  # never show the URL
        return "SlackWebhookChannel(webhook_url='[secret]')"

    def _scrub(self, text: str) -> str:
        return text.replace(self.webhook_url, "[webhook]")[:300]


@dataclass
class SlackBotChannel:
    """A Slack app's bot token through dagster-slack's `SlackResource` (slack_sdk's `WebClient`): a
    second Slack path that does not depend on the webhook (revoked, rotated, or read from Vault)."""

    token: str
    channel: str
    timeout_seconds: float = 5.0
    api_url: str = "https://slack.com/api/"
    name: str = "slack_bot"

    def deliver(self, alert: Alert) -> None:
        from dagster_slack import SlackResource

        client = SlackResource(token=self.token).get_client()
        client.base_url, client.timeout, client.retry_handlers = self.api_url, int(self.timeout_seconds), []
        message = slack_message(alert)
        try:
            response = client.chat_postMessage(channel=self.channel, text=message["text"], blocks=message["blocks"])
        except Exception as error:  # SlackApiError (not ok), timeouts, refused connections ...
            raise DeliveryFailed(f"slack bot: {type(error).__name__}") from None
        if not response.get("ok", False):
            raise DeliveryFailed("slack bot: the API answered not ok")

    def __repr__(self) -> str:
        return f"SlackBotChannel(channel={self.channel!r}, token='[secret]')"


@dataclass
class EmailChannel:
    """Plain SMTP (STARTTLS when the server offers it), as an optional second channel."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    timeout_seconds: float = 5.0
    username: str | None = None
    password: str | None = None
    name: str = "email"

    def deliver(self, alert: Alert) -> None:
        subject, body = email_message(alert)
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, self.sender, ", ".join(self.recipients)
        message.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                if smtp.has_extn("starttls"):
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryFailed(f"email: {type(error).__name__}") from None

    def __repr__(self) -> str:
        return f"EmailChannel(host={self.host!r}, port={self.port}, password='[secret]')"
