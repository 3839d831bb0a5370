"""The one place that reads settings and secrets from the process environment.

Everything is read when a function is called (at run time), never at import time, and nothing here
logs what it reads.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
DAGSTER_YAML = PROJECT_ROOT / "dagster.yaml"

#: Timezone in which "today" and every reminder date are computed.
LOCAL_TIMEZONE = "Europe/Oslo"


def env(name: str, default: str | None = None) -> str | None:
    """A variable's value, stripped; unset or blank gives `default`."""
    value = os.environ.get(name, "").strip()
    return value or default


def database_url_from_environment() -> str | None:
    """`DATABASE_URL` when set and non-empty, else None (meaning: use the embedded server)."""
    return env("DATABASE_URL")


def pipeline_home() -> Path:
    """Where the embedded database and the Dagster home live (`$REMINDER_PIPELINE_HOME`)."""
    value = env("REMINDER_PIPELINE_HOME")
    return Path(value).expanduser().resolve() if value else (Path.cwd() / ".reminder_pipeline").resolve()
