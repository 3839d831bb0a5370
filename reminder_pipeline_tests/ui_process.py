"""Start Dagster as the project runs it, on free loopback ports, and stop it cleanly: `reminder-pipeline
ui` (dagster dev, a laptop) or the production topology, `reminder-pipeline serve code-server`,
`serve webserver` and `serve daemon` as three processes of their own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
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


ROLES = ("code-server", "webserver", "daemon")


@dataclass
class Topology:
    """The three production roles, each a process of its own (docs/deployment.md)."""

    cli: list[str]
    env: dict[str, str]
    cwd: Path
    webserver_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    @property
    def code_server_port(self) -> int:
        return int(self.env["CODE_SERVER_PORT"])

    def log(self, role: str) -> Path:
        return self.cwd / f"{role}.log"

    def start(self, role: str) -> None:
        port = ["--port", str(self.webserver_port)] if role == "webserver" else []
        with self.log(role).open("a") as log:
            self.processes[role] = subprocess.Popen(
                [*self.cli, "serve", role, *port],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill9(self, role: str) -> None:
        """SIGKILL the role's whole process group, as an OOM kill or a crash would end it."""
        process = self.processes.pop(role)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def wait_until_serving(self, role: str, timeout: float = 180) -> None:
        from dagster._grpc.client import DagsterGrpcClient

        deadline = time.monotonic() + timeout
        while True:
            process = self.processes[role]
            assert process.poll() is None, f"{role} exited: " + self.log(role).read_text()[-3000:]
            assert time.monotonic() < deadline, f"{role} did not come up: " + self.log(role).read_text()[-3000:]
            try:
                if role == "code-server":
                    client = DagsterGrpcClient(port=self.code_server_port, host="127.0.0.1")
                    if client.health_check_query() == "SERVING":
                        return
                elif httpx.get(f"{self.base}/server_info", timeout=2).status_code == 200:
                    return
            except Exception:  # not up yet
                pass
            time.sleep(0.5)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.processes.clear()


@contextmanager
def running_topology(cli: list[str], env: dict[str, str], cwd: Path) -> Iterator[Topology]:
    """The code server first (the others reach it over gRPC), then the webserver and the daemon."""
    topology = Topology(cli, {**env, "CODE_SERVER_HOST": "127.0.0.1", "CODE_SERVER_PORT": str(free_port())}, cwd)
    with ExitStack() as stack:
        stack.callback(topology.stop)
        topology.start("code-server")
        topology.wait_until_serving("code-server")
        topology.start("webserver")
        topology.start("daemon")
        topology.wait_until_serving("webserver")
        yield topology
