"""Migration 0010 on a real pg_cron (Debian's `postgresql-15-cron`; Supabase has the extension): the
database schedules `record_overdue_jobs('pg_cron')` every five minutes by itself, and that command,
run as pg_cron runs it, records an overdue run with no Dagster process and no watchdog.

A private PostgreSQL 15 cluster with `shared_preload_libraries = pg_cron` is started for the test
(pg_cron cannot be loaded into a running server); without the package the test says so and skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reminder_pipeline.alerting.schedule_watch import open_overdue, sync_job_schedules
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.migrations import apply_migrations
from reminder_pipeline.definitions import JOB_SPECS
from reminder_pipeline_tests.ui_process import free_port

DEBIAN_PG = Path("/usr/lib/postgresql/15")
PG_CRON = DEBIAN_PG / "lib" / "pg_cron.so"


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user Debian's package made."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture
def pg_cron_url() -> Iterator[str]:
    if not PG_CRON.exists():
        pytest.skip("no pg_cron here (Debian package postgresql-15-cron): migration 0010's pg_cron path not run")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start a PostgreSQL cluster")
    # Not under pytest's temporary folder: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="rp-pg-cron-"))
    try:
        yield from _cluster(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _cluster(base: Path) -> Iterator[str]:
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        _as_postgres([str(DEBIAN_PG / "bin" / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    settings = ["listen_addresses=", "shared_preload_libraries=pg_cron", "cron.database_name=postgres"]
    command = [str(DEBIAN_PG / "bin" / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets)]
    server = subprocess.Popen(
        _as_postgres([*command, *(part for setting in settings for part in ("-c", setting))]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"postgresql://postgres@/postgres?host={sockets}&port={port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with connect(url, autocommit=True) as connection:
                    connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_cron"))
                break
            except Exception:
                assert server.poll() is None, "the pg_cron cluster did not start"
                assert time.monotonic() < deadline, "the pg_cron cluster did not accept connections"
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(30)


def test_pg_cron_records_an_overdue_run_with_nothing_of_ours_running(pg_cron_url: str) -> None:
    apply_migrations(pg_cron_url)
    with connect(pg_cron_url, autocommit=True) as db:
        (job,) = db.execute(
            sa.text("SELECT schedule, command FROM cron.job WHERE jobname = 'reminder-pipeline-overdue-jobs'")
        ).all()
        assert job.schedule == "*/5 * * * *"

        sync_job_schedules(db, JOB_SPECS)
        db.execute(
            sa.text(
                "UPDATE public.job_schedules SET daily_at = CAST((now() - interval '2 hours') AT TIME ZONE timezone"
                " AS time), watched_since = now() - interval '2 days' WHERE job_name = 'certification_reminders'"
            )
        )
        db.execute(sa.text(job.command))  # exactly what pg_cron's worker executes every five minutes
        db.execute(sa.text(job.command))  # and again: still one record

        rows = db.execute(sa.text("SELECT job_name, detected_by FROM public.schedule_overdue")).all()
        assert [tuple(row) for row in rows] == [("certification_reminders", "pg_cron")]
        assert [item.job_name for item in open_overdue(db)] == ["certification_reminders"]
