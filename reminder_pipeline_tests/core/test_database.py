import socket

import pytest
import sqlalchemy as sa

from reminder_pipeline.core.database import (
    connect,
    dagster_storage_url,
    describe,
    libpq_url,
    require_migrated,
    sqlalchemy_url,
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
