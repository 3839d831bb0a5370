"""The one place that reads settings and secrets from the process environment.

`load()` reads the environment when it is called (at run time), never at import time. Secrets are
`SecretStr`: printing the settings, or an error about them, shows `**********`. A malformed value is
a :class:`ConfigurationError` that names the variable and the rule, never the value.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reminder_pipeline.core.errors import ConfigurationError

#: Timezone in which "today", every reminder date and quiet hours are computed.
LOCAL_TIMEZONE = "Europe/Oslo"
#: A run may act for a date at most this far from today (Oslo) without an explicit override
#: (allow_any_date): a typo like 9999-12-31 must not send real reminders.
MAX_DAYS_AHEAD = 1
MAX_DAYS_BACK = 31

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


class Settings(BaseSettings):
    """Every environment variable the project reads. Unset or blank means the default."""

    model_config = SettingsConfigDict(env_ignore_empty=True, str_strip_whitespace=True, extra="ignore")

    # -- where things live -------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None, description="Application database (PostgreSQL 15+); unset: the embedded server."
    )
    reminder_pipeline_home: Path | None = Field(
        default=None, description="Embedded database and Dagster home; default ./.reminder_pipeline."
    )
    dagster_home: Path | None = Field(default=None, description="Dagster's own home; default under the above.")
    dagster_pg_url: SecretStr | None = Field(default=None, description="Dagster's run storage; default: same server.")
    code_server_host: str = Field(
        default="127.0.0.1", max_length=253, description="Where the webserver and daemon reach the gRPC code server."
    )
    code_server_port: int = Field(default=4000, ge=1, le=65535, description="The gRPC code server's port.")

    # -- watching the watcher (docs/deployment.md) --------------------------------------------------
    daemon_stale_seconds: int = Field(
        default=180, ge=60, le=3600, description="A dagster-daemon silent this long is reported down by the watchdog."
    )
    heartbeat_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="A heartbeat ping to the external monitor gives up after this long."
    )

    # -- timeouts: no connection or query of ours waits forever ----------------------------------
    database_connect_timeout_seconds: int = Field(
        default=10, ge=1, le=300, description="Give up connecting to PostgreSQL after this long."
    )
    job_statement_timeout_seconds: int = Field(
        default=1800, ge=0, le=86400, description="A job's query is cancelled after this long (0: never)."
    )
    job_lock_timeout_seconds: int = Field(
        default=120, ge=0, le=86400, description="A job's wait for a table or row lock ends after this long (0: never)."
    )

    notification_pending_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="A notification pending longer fails its asset check (warning)."
    )
    dead_run_grace_seconds: int = Field(
        default=120, ge=5, le=3600, description="A STARTED run without a database session this long is dead."
    )

    # -- operations alerts ---------------------------------------------------------------------
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

    # -- peers -----------------------------------------------------------------------------------
    dynamics_webhook_url: SecretStr | None = None
    dynamics_webhook_token: SecretStr | None = None

    # -- delivery of notifications to people (docs/delivery.md) -------------------------------------
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

    # -- admin API ---------------------------------------------------------------------------------
    supabase_jwt_secret: SecretStr | None = None
    admin_api_docs: bool = Field(default=False, description="Serve /docs, /redoc and /openapi.json (1 to enable).")
    admin_api_cors_origins: str | None = Field(
        default=None, description="Comma-separated origins allowed by CORS; unset: no CORS at all."
    )
    admin_api_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=10 * 1024 * 1024)

    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in (self.admin_api_cors_origins or "").split(",") if origin.strip()]

    def home(self) -> Path:
        """Where the embedded database and the Dagster home live."""
        return (self.reminder_pipeline_home or Path.cwd() / ".reminder_pipeline").expanduser().resolve()

    def alert_email_recipients(self) -> tuple[str, ...]:
        return tuple(address.strip() for address in (self.alert_email_to or "").split(",") if address.strip())


ENV_FILE_VARIABLE = "REMINDER_PIPELINE_ENV_FILE"

#: Heartbeat URLs are one variable per job (`HEARTBEAT_URL_ASSIGNMENT_REMINDERS`) and one for the
#: daemon (`HEARTBEAT_URL_DAGSTER_DAEMON`): an external monitor alarms when their pings stop.
HEARTBEAT_PREFIX = "HEARTBEAT_URL_"
DAEMON_HEARTBEAT = "dagster_daemon"


def env_file() -> Path | None:
    """The env file every role reads at run time (`REMINDER_PIPELINE_ENV_FILE`), if one is set.

    The process environment wins over the file; the file is read afresh by every `load()`, so a run
    the daemon launches sees an edit without a restart of anything."""
    value = os.environ.get(ENV_FILE_VARIABLE, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"{ENV_FILE_VARIABLE}: no such file (it must name a readable env file)")
    return path


def _env_file_values() -> dict[str, str]:
    path = env_file()
    if path is None:
        return {}
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def _raw_setting(variable: str) -> tuple[str, str] | None:
    """A variable's value and where it comes from: the environment first, then the env file."""
    value = os.environ.get(variable, "").strip()
    if value:
        return value, "environment"
    value = _env_file_values().get(variable, "").strip()
    return (value, "env file") if value else None


def setting_source(variable: str) -> str | None:
    """Where a variable's value comes from for this process: `environment`, `env file`, or None."""
    found = _raw_setting(variable)
    return found[1] if found else None


def heartbeat_url(name: str) -> str | None:
    """The external monitor's ping URL for a job (or `dagster_daemon`), from the environment or the
    env file; None when not configured. A value that is not an http(s) URL is refused by name."""
    variable = HEARTBEAT_PREFIX + name.upper()
    found = _raw_setting(variable)
    if found is None:
        return None
    value = found[0]
    if not re.match(r"^https?://[^\s/]+", value) or len(value) > 2000:
        raise ConfigurationError(f"{variable}: must be an http:// or https:// URL of at most 2000 characters")
    return value.rstrip("/")


def load() -> Settings:
    """The settings as the environment (and the env file, when one is set) say now."""
    try:
        return Settings(_env_file=env_file())
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']).upper()}: {problem['msg']}" for problem in error.errors()
        )
        raise ConfigurationError(f"invalid setting(s): {problems}") from None


def secret(value: SecretStr | None) -> str | None:
    """The plain text of an optional secret, for the one call that needs it."""
    return value.get_secret_value() if value is not None else None
