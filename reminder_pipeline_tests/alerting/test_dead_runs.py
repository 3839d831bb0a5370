"""kill -9 of a terminal `reminder-pipeline run` while it waits on a table lock: the database ends
its session within seconds (the advisory lock is free again), `ops_dead_runs` reports the Dagster
run failed and closes its log row, so nothing waits behind it, and the dead run counts toward the
failure alert like any failed run."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from reminder_pipeline.assignments.jobs import ASSIGNMENT_REMINDERS
from reminder_pipeline.core import execution_log
from reminder_pipeline.core.database import connect
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import alerting_for, run_assignment_reminders, tick
from reminder_pipeline_tests.http_peers import HttpPeer
from reminder_pipeline_tests.ui_process import running_ui, ui_environment

pytestmark = pytest.mark.database
AS_OF = dt.date(2026, 11, 22)


@pytest.fixture
def environment(database_url: str, server_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    with ui_environment(database_url, server_url, tmp_path) as env:
        yield env


def _waiting_run(db: sa.Connection, deadline: float) -> str:
    while time.monotonic() < deadline:
        name = db.execute(
            sa.text(
                "SELECT application_name FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND application_name LIKE 'rp:%'"
            )
        ).scalar()
        if name:
            return name.removeprefix("rp:")
        time.sleep(0.2)
    pytest.fail("the run never reached the locked table")


def test_a_killed_terminal_run_is_failed_within_minutes_and_counts_toward_the_alert(
    db: sa.Connection,
    database_url: str,
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    slack: HttpPeer,
) -> None:
    factories.assignment(db, factories.mentor(db, factories.coordinator(db)), assigned_on=dt.date(2026, 10, 1))
    with connect(database_url) as blocker:
        blocker.execute(sa.text("BEGIN; LOCK TABLE public.notifications IN ACCESS EXCLUSIVE MODE"))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reminder_pipeline.cli",
                "run",
                "assignment-reminders",
                "--as-of",
                AS_OF.isoformat(),
                "--allow-any-date",
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        run_id = _waiting_run(db, time.monotonic() + 120)
        os.killpg(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        process.wait(30)
        while execution_log.try_acquire_job_lock(db, ASSIGNMENT_REMINDERS.lock_key) is False:
            assert time.monotonic() - killed_at < 30, "the dead run's session still holds the job's lock"
            time.sleep(0.2)
        session_gone_seconds = time.monotonic() - killed_at
        execution_log.release_job_lock(db, ASSIGNMENT_REMINDERS.lock_key)
        blocker.execute(sa.text("ROLLBACK"))
    print(f"measured: session of the killed run gone {session_gone_seconds:.1f} s after kill -9")
    assert session_gone_seconds < 15

    for name in ("DAGSTER_PG_URL", "REMINDER_PIPELINE_HOME"):
        monkeypatch.setenv(name, environment[name])
    monkeypatch.setenv("DAGSTER_HOME", str(Path(environment["REMINDER_PIPELINE_HOME"]) / "dagster_home"))
    with DagsterInstance.get() as instance:  # the instance the CLI ran in (PostgreSQL run storage)
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED  # what kill -9 leaves
        young = tick("ops_dead_runs", instance, database_url)
        assert young.runs == [] and "none suspect" in (young.skip_message or "")  # within the grace period

        monkeypatch.setenv("DEAD_RUN_GRACE_SECONDS", "5")  # instead of waiting two minutes
        time.sleep(5)
        janitor = tick("ops_dead_runs", instance, database_url)
        assert [run.success for run in janitor.runs] == [True]
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
        (row,) = factories.log_rows(db)
        assert (row.status, row.error_message, row.dagster_run_id, row.consecutive_failure_count) == (
            "failed",
            execution_log.ABANDONED_MESSAGE,
            run_id,
            1,
        )
        assert tick("ops_dead_runs", instance, database_url).runs == []

        # The dead run is failure 1; one more failed run is 2: one alert.
        alerting = alerting_for(database_url, slack_webhook_url=slack.url)
        db.execute(sa.text("ALTER TABLE public.notifications RENAME TO notifications_moved"))
        assert not run_assignment_reminders(database_url, AS_OF, alerting, instance).success
        delivery = tick("ops_run_failures", instance, database_url, alerting)
        assert [run.success for run in delivery.runs] == [True]
        (request,) = slack.requests
        assert request.json()["text"].endswith("assignment_reminders failed 2 times in a row")
        # The row counts the streak the alert counted, from the same run history.
        assert [row.consecutive_failure_count for row in factories.log_rows(db)] == [1, 2]


def test_a_live_run_is_never_reported_dead(
    db: sa.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However old a run is, a database session named after it means it is alive: here a real run
    blocked on a table lock, evaluated with no grace period at all."""
    monkeypatch.setenv("DEAD_RUN_GRACE_SECONDS", "5")
    factories.assignment(db, factories.mentor(db, factories.coordinator(db)), assigned_on=dt.date(2026, 10, 1))
    with DagsterInstance.ephemeral() as instance, connect(database_url) as blocker:
        blocker.execute(sa.text("BEGIN; LOCK TABLE public.notifications IN ACCESS EXCLUSIVE MODE"))
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(run_assignment_reminders, database_url, AS_OF, None, instance)
            run_id = _waiting_run(db, time.monotonic() + 60)
            time.sleep(5.5)  # older than the grace period
            assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
            evaluated = tick("ops_dead_runs", instance, database_url)
            blocker.execute(sa.text("ROLLBACK"))
            assert running.result(timeout=60).success
    assert evaluated.runs == [] and "all alive" in (evaluated.skip_message or "")


def test_after_kill_9_a_ui_launch_of_the_same_job_succeeds_within_six_minutes(
    db: sa.Connection, database_url: str, server_url: str, tmp_path: Path
) -> None:
    """The acceptance test, with everything as deployed: `dagster dev` (daemon, sensors, run queue
    with its one-run-per-job limit), a terminal run killed while it waits on a table lock, and a
    launch through the UI's GraphQL API right after. Only the grace period is shortened (10 s)."""
    factories.assignment(db, factories.mentor(db, factories.coordinator(db)), assigned_on=dt.date(2026, 10, 1))
    cli = [sys.executable, "-m", "reminder_pipeline.cli"]
    with ui_environment(database_url, server_url, tmp_path) as env:
        env["DEAD_RUN_GRACE_SECONDS"] = "10"
        with running_ui(cli, env, tmp_path, tmp_path / "ui.log") as (_base, port):
            client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
            with connect(database_url) as blocker:
                blocker.execute(sa.text("BEGIN; LOCK TABLE public.notifications IN ACCESS EXCLUSIVE MODE"))
                process = subprocess.Popen(
                    # In the terminal's own process (--in-process): killing it kills the run. A run launched
                    # through the queue would run on in the code server, as a Launchpad run does.
                    [
                        *cli,
                        "run",
                        "--in-process",
                        "assignment-reminders",
                        "--as-of",
                        AS_OF.isoformat(),
                        "--allow-any-date",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                dead_run = _waiting_run(db, time.monotonic() + 120)
                os.killpg(process.pid, signal.SIGKILL)
                killed_at = time.monotonic()
                process.wait(30)
                blocker.execute(sa.text("ROLLBACK"))
            launched = client.submit_job_execution(
                "assignment_reminders",
                run_config={
                    "ops": {"decide_reminders_op": {"config": {"as_of": "2026-11-22", "allow_any_date": True}}}
                },
            )
            while (status := client.get_run_status(launched).value) not in ("SUCCESS", "FAILURE", "CANCELED"):
                assert time.monotonic() - killed_at < 360, f"the UI launch is still {status} six minutes after kill -9"
                time.sleep(2)
            recovered_after = time.monotonic() - killed_at
            dead_status = client.get_run_status(dead_run).value
    print(f"measured: UI launch succeeded {recovered_after:.0f} s after kill -9 (dead-run grace 10 s)")
    assert status == "SUCCESS" and dead_status == "FAILURE"
    assert [row.status for row in factories.log_rows(db)] == ["failed", "success"]
