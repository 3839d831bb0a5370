"""PostgreSQL's own client programs, from the embedded server's wheel (the newest there reads every
older server)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from reminder_pipeline.core.database import connect, libpq_url, pg_client


def pg_binary(name: str) -> Path:
    return pg_client(name)


def psql(url: str, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` as an operator would paste it into psql: unaligned, tuples only, stop on error."""
    return subprocess.run(
        [str(pg_binary("psql")), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", libpq_url(url)],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )


T = TypeVar("T")


def race_two_writers(database_url: str, write: Callable[[sa.Connection], T]) -> dict[str, T]:
    """Two real connections run `write` in a transaction each: the first writes and keeps its
    transaction open until the second is seen waiting on its locks (in pg_stat_activity, read in
    autocommit: the view is a snapshot per transaction); then both commit. Returns what each wrote."""
    results: dict[str, T] = {}
    first_wrote = threading.Event()

    def second() -> None:
        first_wrote.wait(30)
        with connect(database_url) as connection, connection.begin():
            results["second"] = write(connection)

    worker = threading.Thread(target=second)
    worker.start()
    with connect(database_url) as connection, connection.begin():
        results["first"] = write(connection)
        first_wrote.set()
        with connect(database_url, autocommit=True) as observer:
            deadline = time.monotonic() + 30
            while not observer.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
            ).scalar_one():
                assert time.monotonic() < deadline, "the second writer never waited on the first"
                time.sleep(0.05)
    worker.join(60)
    return results
