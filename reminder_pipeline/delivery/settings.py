"""The delivery domain's environment variables (docs/delivery.md), read at run time."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from reminder_pipeline.core import doctor, settings

#: The channels that can carry a notification to a person, in their default order.
DELIVERY_CHANNELS = ("push", "email")

_QUIET_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_quiet_hours(text: str) -> tuple[dt.time, dt.time] | None:
    """`21:00-08:00` as (start, end) in Europe/Oslo; `none` (or equal ends) means no quiet hours."""
    if text.strip().lower() == "none":
        return None
    match = _QUIET_HOURS.match(text.strip())
    if match is None:
        raise ValueError("must be HH:MM-HH:MM (24-hour clock) or none")
    hour, minute, end_hour, end_minute = (int(part) for part in match.groups())
    start, end = dt.time(hour, minute), dt.time(end_hour, end_minute)
    return None if start == end else (start, end)


@settings.register()
class DeliverySettings(settings.SettingsGroup):
    push_webhook_url: SecretStr | None = Field(
        default=None, description="Push gateway: one JSON POST per recipient message (else Vault)."
    )
    push_webhook_token: SecretStr | None = Field(default=None, description="Bearer token for the push gateway.")
    notify_smtp_host: str | None = Field(default=None, description="SMTP relay for reminder e-mail.")
    notify_smtp_port: int = Field(default=587, ge=1, le=65535)
    notify_smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (required, the default), tls (implicit, port 465) or none."
    )
    notify_smtp_user: str | None = None
    notify_smtp_password: SecretStr | None = Field(default=None, description="Else Vault `notify_smtp_password`.")
    notify_smtp_ca_file: Path | None = Field(default=None, description="CA bundle to trust for the relay's TLS.")
    notify_email_from: str | None = Field(default=None, description="Sender address of reminder e-mail.")
    notification_channels: str | None = Field(
        default=None, description="Channel order, comma-separated (push,email); unset: every configured one."
    )
    notification_quiet_hours: str = Field(
        default="21:00-08:00", description="Default quiet hours (Europe/Oslo) as HH:MM-HH:MM, or none."
    )
    notification_expire_hours: int = Field(
        default=72, ge=1, le=24 * 30, description="A notification never attempted this long after its creation expires."
    )

    @field_validator("notification_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        parse_quiet_hours(value)
        return value

    @field_validator("notification_channels")
    @classmethod
    def _channels(cls, value: str | None) -> str | None:
        names = [name.strip() for name in (value or "").split(",") if name.strip()]
        if any(name not in DELIVERY_CHANNELS for name in names) or len(set(names)) != len(names):
            raise ValueError(f"must list distinct channels among {', '.join(DELIVERY_CHANNELS)}")
        return value

    def delivery_channel_order(self) -> tuple[str, ...]:
        """The channels in the order a recipient's message tries them (configured or not)."""
        names = [name.strip() for name in (self.notification_channels or "").split(",") if name.strip()]
        return tuple(names) or DELIVERY_CHANNELS

    def quiet_hours(self) -> tuple[dt.time, dt.time] | None:
        return parse_quiet_hours(self.notification_quiet_hours)


def load() -> DeliverySettings:
    return settings.load_group(DeliverySettings)


def _delivery_missing() -> str | None:
    if settings.is_set("PUSH_WEBHOOK_URL") or (
        settings.is_set("NOTIFY_SMTP_HOST") and settings.is_set("NOTIFY_EMAIL_FROM")
    ):
        return None
    return "no delivery channel: set PUSH_WEBHOOK_URL, or NOTIFY_SMTP_HOST with NOTIFY_EMAIL_FROM"


doctor.register_readiness("notification_delivery", _delivery_missing)
