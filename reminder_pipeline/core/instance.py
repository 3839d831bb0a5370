"""Prepare a Dagster home whose run history lives in PostgreSQL (dagster-postgres)."""

from __future__ import annotations

import os
from pathlib import Path

from reminder_pipeline.core import packaged, settings
from reminder_pipeline.core.database import DAGSTER_DATABASE, dagster_storage_url, ensure_database_exists

WORKSPACE_FILE = "workspace.yaml"


def prepare_dagster_home(database_url: str, home: Path | None = None) -> Path:
    """Point this process (and the processes it starts) at a Dagster home on `database_url`'s server.

    An explicit `DAGSTER_HOME` is respected; otherwise `$REMINDER_PIPELINE_HOME/dagster_home` is
    used. Either way the home gets the shipped instance configuration (`dagster.yaml`) when it has
    none, and the shipped code location (`workspace.yaml`), so that `dagster dev`, the daemon and the
    `dagster` CLI all load the same code location from the same place. `DAGSTER_PG_URL`, which
    dagster.yaml reads, is set only when absent.
    """
    current = settings.load()
    ensure_database_exists(database_url, DAGSTER_DATABASE)
    if current.dagster_pg_url is None:
        os.environ["DAGSTER_PG_URL"] = dagster_storage_url(database_url)
    dagster_home = current.dagster_home or home or current.home() / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_file = dagster_home / "dagster.yaml"
    if current.dagster_home is None or not instance_file.exists():
        instance_file.write_text(packaged.read_text("dagster.yaml"))
    (dagster_home / WORKSPACE_FILE).write_text(packaged.read_text(WORKSPACE_FILE))
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
