"""Prepare a Dagster home whose run history lives in PostgreSQL (dagster-postgres)."""

from __future__ import annotations

import os
from pathlib import Path

from reminder_pipeline.core import packaged, settings
from reminder_pipeline.core.database import DAGSTER_DATABASE, dagster_storage_url, ensure_database_exists
from reminder_pipeline.core.launch import LOCATION_NAME

WORKSPACE_FILE = "workspace.yaml"
#: The production workspace: the webserver and the daemon reach the code location over gRPC.
GRPC_WORKSPACE_FILE = "workspace-grpc.yaml"


def grpc_workspace_text(host: str, port: int) -> str:
    return (
        "# Written by reminder-pipeline from CODE_SERVER_HOST / CODE_SERVER_PORT: the code location is served\n"
        "# by `reminder-pipeline serve code-server` (dagster code-server start), a process of its own.\n"
        "load_from:\n"
        "  - grpc_server:\n"
        f"      host: {host}\n"
        f"      port: {port}\n"
        f"      location_name: {LOCATION_NAME}\n"
    )


def cli_workspace(dagster_home: Path) -> Path:
    """The workspace the CLI launches runs through: the running code server when one is configured
    (`CODE_SERVER_HOST` or `CODE_SERVER_PORT` set), else the python module in a local gRPC server."""
    configured = any(settings.setting_source(name) for name in ("CODE_SERVER_HOST", "CODE_SERVER_PORT"))
    return dagster_home / (GRPC_WORKSPACE_FILE if configured else WORKSPACE_FILE)


def _written_by_us(instance_file: Path, shipped: str) -> bool:
    """An instance file that starts like the shipped one was copied by us (an older version, perhaps)."""
    first_line = shipped.splitlines()[0]
    return instance_file.read_text(errors="replace").startswith(first_line)


def prepare_dagster_home(database_url: str, home: Path | None = None) -> Path:
    """Point this process (and the processes it starts) at a Dagster home on `database_url`'s server.

    An explicit `DAGSTER_HOME` is respected; otherwise `$REMINDER_PIPELINE_HOME/dagster_home` is
    used. Either way the home gets the shipped instance configuration (`dagster.yaml`) when it has
    none, and the shipped code location (`workspace.yaml`), so that `dagster dev`, the daemon and the
    `dagster` CLI all load the same code location from the same place. `DAGSTER_PG_URL`, which
    dagster.yaml reads, is exported: the setting's value (environment or env file), else the
    `dagster` database beside `database_url`.
    """
    current = settings.load()
    ensure_database_exists(database_url, DAGSTER_DATABASE)
    # Dagster reads DAGSTER_PG_URL from the process environment only: one from the env file is exported.
    os.environ["DAGSTER_PG_URL"] = settings.secret(current.dagster_pg_url) or dagster_storage_url(database_url)
    dagster_home = current.dagster_home or home or current.home() / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_file = dagster_home / "dagster.yaml"
    shipped = packaged.read_text("dagster.yaml")
    if current.dagster_home is None or not instance_file.exists() or _written_by_us(instance_file, shipped):
        # Ours is refreshed on every start, so an upgrade's instance settings apply; an operator's own is kept.
        instance_file.write_text(shipped)
    (dagster_home / WORKSPACE_FILE).write_text(packaged.read_text(WORKSPACE_FILE))
    (dagster_home / GRPC_WORKSPACE_FILE).write_text(
        grpc_workspace_text(current.code_server_host, current.code_server_port)
    )
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
