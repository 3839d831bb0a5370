"""How settings and secrets are read from the process environment, and the core's own settings.

Each domain owns its settings: a :class:`SettingsGroup` in its `settings.py`, registered here so that
`reminder-pipeline doctor` lists every variable. Core keeps only the database, instance and timeout
settings. `load()` (and a domain's own loader) reads the environment when it is called (at run
time), never at import time. Secrets are
`SecretStr`: printing the settings, or an error about them, shows `**********`. A malformed value is
a :class:`ConfigurationError` that names the variable and the rule, never the value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from reminder_pipeline.core.errors import ConfigurationError, validation_problems

#: Timezone in which "today", every reminder date and quiet hours are computed.
LOCAL_TIMEZONE = "Europe/Oslo"
#: A run may act for a date at most this far from today (Oslo) without an explicit override
#: (allow_any_date): a typo like 9999-12-31 must not send real reminders.
MAX_DAYS_AHEAD = 1
MAX_DAYS_BACK = 31


class SettingsGroup(BaseSettings):
    """A group of environment variables (the core's, or one domain's). Unset or blank means the default."""

    model_config = SettingsConfigDict(env_ignore_empty=True, str_strip_whitespace=True, extra="ignore")


#: Who reads a group's variables, when it is not the runs (for doctor).
RUNS = "runs"
_GROUPS: dict[type[SettingsGroup], str] = {}

G = TypeVar("G", bound=SettingsGroup)


def register(read_by: str = RUNS) -> Callable[[type[G]], type[G]]:
    """Class decorator: a domain's settings group, listed by doctor with the role that reads it."""

    def add(group: type[G]) -> type[G]:
        _GROUPS[group] = read_by
        return group

    return add


def registered_groups() -> dict[type[SettingsGroup], str]:
    return dict(_GROUPS)


class Settings(SettingsGroup):
    """The core's environment variables: where things live, the watchdog, timeouts."""

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

    def home(self) -> Path:
        """Where the embedded database and the Dagster home live."""
        return (self.reminder_pipeline_home or Path.cwd() / ".reminder_pipeline").expanduser().resolve()


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


def is_set(*variables: str) -> bool:
    """Whether any of `variables` has a value in the environment or the env file."""
    return any(setting_source(variable) for variable in variables)


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
    """The core settings as the environment (and the env file, when one is set) say now."""
    return load_group(Settings)


def load_group(group: type[G]) -> G:
    """A settings group as the environment (and the env file, when one is set) say now. A malformed
    value is refused by variable name and rule, never echoed."""
    try:
        return group(_env_file=env_file())  # type: ignore[call-arg]
    except ValidationError as error:
        raise ConfigurationError(f"invalid setting(s): {validation_problems(error, str.upper)}") from None


def secret(value: SecretStr | None) -> str | None:
    """The plain text of an optional secret, for the one call that needs it."""
    return value.get_secret_value() if value is not None else None
