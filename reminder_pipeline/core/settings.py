"""The one place that reads the process environment.

Everything is read when a function is called (at run time), never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
DAGSTER_YAML = PROJECT_ROOT / "dagster.yaml"

#: Timezone in which "today" and every reminder date are computed.
LOCAL_TIMEZONE = "Europe/Oslo"


def database_url_from_environment() -> str | None:
    """`DATABASE_URL` when set and non-empty, else None (meaning: use the embedded server)."""
    value = os.environ.get("DATABASE_URL", "").strip()
    return value or None


def pipeline_home() -> Path:
    """Where the embedded database and the Dagster home live (`$REMINDER_PIPELINE_HOME`)."""
    value = os.environ.get("REMINDER_PIPELINE_HOME", "").strip()
    return Path(value).expanduser().resolve() if value else (Path.cwd() / ".reminder_pipeline").resolve()
