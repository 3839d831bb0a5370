import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reminder_pipeline.core import database
from reminder_pipeline.core.database import (
    EMBEDDED_SETTINGS_FILE,
    connect,
    dagster_storage_url,
    describe,
    embedded_shared_buffers_mib,
    libpq_url,
    require_migrated,
    sqlalchemy_url,
    start_embedded_server,
)
from reminder_pipeline.core.errors import ConfigurationError, DatabaseNotMigrated, DatabaseUnavailable


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db.example:5432/app",
        "postgres://u:p@db.example:5432/app",
        "postgresql+psycopg2://u:p@db.example:5432/app",
    ],
)
def test_every_url_form_is_pinned_to_psycopg2(url: str) -> None:
    assert sqlalchemy_url(url).drivername == "postgresql+psycopg2"
    assert libpq_url(url).startswith("postgresql://u:p@db.example:5432/app")


def test_dagster_storage_gets_a_database_of_its_own_on_the_same_server() -> None:
    assert dagster_storage_url("postgresql://u:p@h:5433/app") == "postgresql+psycopg2://u:p@h:5433/dagster"


def test_describe_names_host_port_and_database_but_never_the_password() -> None:
    text = describe("postgresql://admin:hunter2-secret@db.example:6543/app")
    assert text == "db.example:6543/app"
    assert "hunter2" not in text


def test_describe_names_the_socket_directory_of_a_socket_url() -> None:
    assert describe("postgresql://postgres:@/app?host=/tmp/sock") == "/tmp/sock/app"


@pytest.mark.parametrize("url", ["mysql://u:p4ss@h/db", "not a url at all p4ss", "postgresql://u:p4ss@h:notaport/db"])
def test_a_malformed_or_non_postgres_url_is_a_configuration_error_that_does_not_echo_it(url: str) -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL") as caught:
        sqlalchemy_url(url)
    assert "p4ss" not in str(caught.value)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_gives_one_line_naming_the_host_without_the_password() -> None:
    port = _closed_port()
    with (
        pytest.raises(DatabaseUnavailable) as caught,
        connect(f"postgresql://ops:s3cr3t-pw@127.0.0.1:{port}/app"),
    ):
        pass
    message = str(caught.value)
    assert f"127.0.0.1:{port}/app" in message
    assert "s3cr3t-pw" not in message
    assert "\n" not in message


@pytest.mark.database
def test_an_unmigrated_database_is_reported_as_such(empty_database_url: str) -> None:
    with connect(empty_database_url) as connection, pytest.raises(DatabaseNotMigrated, match="migrate"):
        require_migrated(connection)


@pytest.mark.database
def test_connections_reach_a_real_server(database_url: str) -> None:
    with connect(database_url) as connection:
        assert connection.execute(sa.text("SELECT current_setting('server_version_num')::int")).scalar() >= 150000


@pytest.mark.database
@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="TEST_DATABASE_URL is not the embedded server")
def test_the_embedded_server_runs_with_its_own_shared_buffers(server_url: str) -> None:
    """The session's server came from start_embedded_server: our settings file is in force, not the
    wheel's default of 128 MB, and a second start of the same home adds nothing twice."""
    with connect(server_url) as connection:
        setting, source_file = connection.execute(
            sa.text(
                "SELECT setting::bigint * 8192 / 1048576, sourcefile FROM pg_settings WHERE name = 'shared_buffers'"
            )
        ).one()
        data_directory = connection.execute(sa.text("SHOW data_directory")).scalar()
    assert setting == embedded_shared_buffers_mib()
    assert source_file.endswith(EMBEDDED_SETTINGS_FILE)
    assert 128 <= embedded_shared_buffers_mib() <= 1024
    assert start_embedded_server(Path(data_directory).parent) == server_url
    main_conf = (Path(data_directory) / "postgresql.conf").read_text()
    assert main_conf.count(f"include_if_exists = '{EMBEDDED_SETTINGS_FILE}'") == 1


@pytest.mark.parametrize(
    ("limit", "expected_mib"),
    [("536870912", 128), ("2147483648", 512), ("68719476736", 1024), ("67108864", 128)],
)
def test_shared_buffers_follow_a_container_memory_limit_clamped_to_128_mib_1_gib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, expected_mib: int
) -> None:
    """A quarter of the container's limit, not of the host's memory (this host has more than 4 GiB)."""
    limit_file = tmp_path / "memory.max"
    limit_file.write_text(f"{limit}\n")
    monkeypatch.setattr(database, "CGROUP_MEMORY_LIMITS", (limit_file,))
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert embedded_shared_buffers_mib() == max(128, min(1024, min(host, int(limit)) // 4 // 2**20)) == expected_mib


def test_an_unlimited_container_gives_a_quarter_of_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit_file = tmp_path / "memory.max"
    limit_file.write_text("max\n")
    monkeypatch.setattr(database, "CGROUP_MEMORY_LIMITS", (tmp_path / "absent", limit_file))
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert embedded_shared_buffers_mib() == max(128, min(1024, host // 4 // 2**20))


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung server, a black-holed proxy)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_server_that_never_answers_is_an_error_within_the_connect_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_CONNECT_TIMEOUT_SECONDS", "2")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught, connect(f"postgresql://u:secret@127.0.0.1:{silent_server}/app"):
        pass
    waited = time.monotonic() - started
    print(f"measured: a silent server refused after {waited:.1f} s (connect timeout 2 s)")
    assert waited < 10
    assert "secret" not in str(caught.value) and "timeout" in str(caught.value).lower()


def test_the_cli_gives_up_on_a_server_that_never_answers(silent_server: int) -> None:
    env = {**os.environ, "DATABASE_URL": f"postgresql://u:p@127.0.0.1:{silent_server}/app"}
    env["DATABASE_CONNECT_TIMEOUT_SECONDS"] = "2"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "reminder_pipeline.cli", "run", "assignment-reminders"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 60
    assert "cannot connect to PostgreSQL at 127.0.0.1" in done.stderr + done.stdout
