"""Real PostgreSQL for every test: the embedded server (or TEST_DATABASE_URL), one migrated template
database per session, and a fresh `CREATE DATABASE ... TEMPLATE` clone for each test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from reminder_pipeline import definitions  # noqa: F401  (every domain declares its notification kinds on import)
from reminder_pipeline.core.database import connect, start_embedded_server, with_database
from reminder_pipeline.core.migrations import apply_migrations


def _drop(server_url: str, name: str) -> None:
    with connect(server_url, autocommit=True) as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a maintenance database on the test server."""
    return os.environ.get("TEST_DATABASE_URL") or start_embedded_server(tmp_path_factory.mktemp("pg"))


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    name = f"rp_template_{os.getpid()}"
    _drop(server_url, name)
    with connect(server_url, autocommit=True) as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    apply_migrations(with_database(server_url, name))
    yield name
    _drop(server_url, name)


@pytest.fixture
def database_url(server_url: str, template_database: str) -> Iterator[str]:
    """A freshly migrated database of this test's own."""
    name = f"rp_test_{uuid.uuid4().hex[:16]}"
    with connect(server_url, autocommit=True) as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    yield with_database(server_url, name)
    _drop(server_url, name)


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A database with no migrations applied."""
    name = f"rp_empty_{uuid.uuid4().hex[:16]}"
    with connect(server_url, autocommit=True) as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield with_database(server_url, name)
    _drop(server_url, name)


@pytest.fixture
def db(database_url: str) -> Iterator[sa.Connection]:
    """An autocommit connection to this test's database, for arranging and asserting."""
    with connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on: a database (or peer) that refuses connections."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """A Dagster instance of the test's own (in memory): run history for sensors and checks to read."""
    with DagsterInstance.ephemeral() as instance:
        yield instance
