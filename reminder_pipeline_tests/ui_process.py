"""Start `reminder-pipeline ui` (dagster dev) on a free loopback port and stop it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

from reminder_pipeline.core.database import connect, sqlalchemy_url, with_database


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def ui_environment(database_url: str, server_url: str, home: Path) -> Iterator[dict[str, str]]:
    """The environment for the CLI: this test's database, its own home and its own run storage."""
    storage = f"rp_dagster_{uuid.uuid4().hex[:12]}"
    with connect(server_url, autocommit=True) as admin:
        admin.execute(sa.text(f'CREATE DATABASE "{storage}"'))
    try:
        yield {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER", "REMINDER_PIPELINE"))},
            "DATABASE_URL": database_url,
            "REMINDER_PIPELINE_HOME": str(home),
            "DAGSTER_PG_URL": sqlalchemy_url(with_database(server_url, storage)).render_as_string(hide_password=False),
        }
    finally:
        with connect(server_url, autocommit=True) as admin:
            admin.execute(sa.text(f'DROP DATABASE IF EXISTS "{storage}" WITH (FORCE)'))


@contextmanager
def running_ui(cli: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> Iterator[tuple[str, int]]:
    """`cli ui` until `/server_info` answers; yields (base URL, port). SIGTERM on the way out."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*cli, "ui", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                assert process.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "dagster dev did not come up"
                try:
                    if httpx.get(f"{base}/server_info", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(1)
            yield base, port
        finally:
            process.send_signal(signal.SIGTERM)  # the CLI hands it to dagster dev as SIGINT: clean shutdown
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
    assert process.returncode is not None


def code_location_errors(base: str) -> list[str]:
    """Load errors of every code location the webserver knows (empty when all loaded)."""
    query = (
        "{ workspaceOrError { ... on Workspace { locationEntries { name"
        " locationOrLoadError { __typename ... on PythonError { message } } } } } }"
    )
    body = httpx.post(f"{base}/graphql", json={"query": query}, timeout=60).json()
    entries = body["data"]["workspaceOrError"]["locationEntries"]
    assert entries, body
    return [
        f"{entry['name']}: {entry['locationOrLoadError'].get('message', '')}"
        for entry in entries
        if entry["locationOrLoadError"]["__typename"] != "RepositoryLocation"
    ]
