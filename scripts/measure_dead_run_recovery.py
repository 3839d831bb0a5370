"""Measure issue 11's acceptance by hand: kill -9 a terminal `reminder-pipeline run` while it waits
on a table lock, launch the same job from the UI (`dagster dev` through GraphQL) at once, and time
until that launch succeeds. Takes about three minutes; prints a small table.

    .venv/bin/python scripts/measure_dead_run_recovery.py [postgresql://user@host:port/maintenance_db]

Without an argument it uses TEST_DATABASE_URL, else the embedded server.
"""

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa
from dagster_graphql import DagsterGraphQLClient

from reminder_pipeline.core.database import connect, sqlalchemy_url, start_embedded_server, with_database
from reminder_pipeline.core.migrations import apply_migrations
from reminder_pipeline.seed import seed

PORT = 3917


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="rp-measure-"))
    server = (sys.argv[1:] or [os.environ.get("TEST_DATABASE_URL", "")])[0] or start_embedded_server(home / "pg")
    app, store = f"rp_measure_{uuid.uuid4().hex[:6]}", f"rp_measure_dagster_{uuid.uuid4().hex[:6]}"
    with connect(server, autocommit=True) as admin:
        admin.execute(sa.text(f'CREATE DATABASE "{app}"'))
        admin.execute(sa.text(f'CREATE DATABASE "{store}"'))
    url = with_database(server, app)
    apply_migrations(url)
    with connect(url) as connection, connection.begin():
        seed(connection, 200, today=dt.date.today())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DAGSTER")},
        "DATABASE_URL": url,
        "REMINDER_PIPELINE_HOME": str(home),
        "DAGSTER_PG_URL": sqlalchemy_url(with_database(server, store)).render_as_string(hide_password=False),
    }
    cli = [str(Path(sys.executable).with_name("reminder-pipeline"))]
    log = (home / "ui.log").open("w")
    ui = subprocess.Popen(
        [*cli, "ui", "--port", str(PORT)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        client = DagsterGraphQLClient("127.0.0.1", port_number=PORT, timeout=60)
        engine = sa.create_engine(sqlalchemy_url(url))
        # The watcher reads in autocommit: pg_stat_activity is a snapshot for a whole transaction.
        with engine.connect() as blocker, engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watch:
            blocker.execute(sa.text("LOCK TABLE public.notifications IN ACCESS EXCLUSIVE MODE"))
            run = subprocess.Popen(
                [*cli, "run", "assignment-reminders"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            query = (
                "SELECT application_name FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND application_name LIKE 'rp:%'"
            )
            while not (name := watch.execute(sa.text(query)).scalar()):
                time.sleep(0.2)
            os.killpg(run.pid, signal.SIGKILL)
            killed = time.monotonic()
            blocker.rollback()
        engine.dispose()
        launched = client.submit_job_execution("assignment_reminders")
        seen: list[tuple[float, str]] = []
        while time.monotonic() - killed < 600:
            status = client.get_run_status(launched).value
            if not seen or seen[-1][1] != status:
                seen.append((time.monotonic() - killed, status))
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(2)
        print("| seconds after kill -9 | UI launch status |", flush=True)
        print("| --- | --- |")
        for seconds, status in seen:
            print(f"| {seconds:.0f} | {status} |")
        print(f"\nkilled run {name.removeprefix('rp:')}: {client.get_run_status(name.removeprefix('rp:')).value}")
    finally:
        os.killpg(ui.pid, signal.SIGINT)
        ui.wait(60)
        with connect(server, autocommit=True) as admin:
            admin.execute(sa.text(f'DROP DATABASE IF EXISTS "{app}" WITH (FORCE)'))
            admin.execute(sa.text(f'DROP DATABASE IF EXISTS "{store}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
