"""Prepare a Dagster home whose run history lives in PostgreSQL (dagster-postgres)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from reminder_pipeline.core import settings
from reminder_pipeline.core.database import DAGSTER_DATABASE, dagster_storage_url, ensure_database_exists


def prepare_dagster_home(database_url: str, home: Path | None = None) -> Path:
    """Point this process (and the processes it starts) at a Dagster home on `database_url`'s server.

    An explicit `DAGSTER_HOME` is respected; otherwise `$REMINDER_PIPELINE_HOME/dagster_home` is
    used, with the project's `dagster.yaml` copied in. `DAGSTER_PG_URL`, which dagster.yaml reads,
    is set only when absent.
    """
    ensure_database_exists(database_url, DAGSTER_DATABASE)
    os.environ.setdefault("DAGSTER_PG_URL", dagster_storage_url(database_url))
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    dagster_home = home or settings.pipeline_home() / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.DAGSTER_YAML, dagster_home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
