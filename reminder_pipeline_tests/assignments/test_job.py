"""The assignment_reminders job end to end: real Dagster, real PostgreSQL."""

import datetime as dt
import json
import multiprocessing
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance, ReexecutionOptions, build_reconstructable_job, execute_job

from reminder_pipeline.assignments.jobs import ASSIGNMENT_REMINDERS
from reminder_pipeline.core import execution_log
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.run_config import dated_run_config, today_local
from reminder_pipeline.definitions import build_defs
from reminder_pipeline.seed import seed
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import (
    alerting_for,
    run_assignment_reminders,
    run_in_subprocess,
    terminate_once_blocked,
    tick,
)
from reminder_pipeline_tests.http_peers import HttpPeer

pytestmark = pytest.mark.database
AS_OF = dt.date(2026, 11, 22)


@pytest.fixture
def overdue(db: sa.Connection) -> dict:
    """One assignment 12 days without contact (mentor due), one 25 days (mentor + coordinator), one fresh."""
    coordinator = factories.coordinator(db)
    mentor = factories.mentor(db, coordinator, full_name="Kari Nordmann", email="kari@example.invalid")
    return {
        "coordinator": coordinator,
        "mentor": mentor,
        "due": factories.assignment(
            db, mentor, assigned_on=dt.date(2026, 1, 1), last_contact_date=AS_OF - dt.timedelta(days=12)
        ),
        "escalated": factories.assignment(
            db, mentor, assigned_on=dt.date(2026, 1, 1), last_contact_date=AS_OF - dt.timedelta(days=25)
        ),
        "fresh": factories.assignment(
            db, mentor, assigned_on=dt.date(2026, 1, 1), last_contact_date=AS_OF - dt.timedelta(days=1)
        ),
    }


def test_a_run_dispatches_due_reminders_and_logs_success(db: sa.Connection, database_url: str, overdue: dict) -> None:
    result = run_assignment_reminders(database_url, AS_OF)

    assert result.success
    notifications = db.execute(
        sa.text("SELECT assignment_id, kind, recipient_role, recipient_id, payload FROM public.notifications")
    ).all()
    assert sorted((n.assignment_id, n.recipient_role) for n in notifications) == sorted(
        [(overdue["due"], "mentor"), (overdue["escalated"], "mentor"), (overdue["escalated"], "coordinator")]
    )
    assert all("kari" not in str(n.payload).lower() for n in notifications)
    (row,) = factories.log_rows(db)
    assert row.status == "success"
    assert (row.assignments_evaluated, row.reminders_dispatched, row.consecutive_failure_count) == (3, 3, 0)
    assert row.dagster_run_id == result.run_id
    assert row.details["as_of"] == AS_OF.isoformat()


def test_a_rerun_the_same_day_creates_nothing(db: sa.Connection, database_url: str, overdue: dict) -> None:
    assert run_assignment_reminders(database_url, AS_OF).success
    assert run_assignment_reminders(database_url, AS_OF).success

    first, second = factories.log_rows(db)
    assert (first.reminders_dispatched, second.reminders_dispatched) == (3, 0)
    assert factories.notification_count(db) == 3


def test_the_next_reminder_comes_a_week_later_and_the_escalation_only_once(
    db: sa.Connection, database_url: str, overdue: dict
) -> None:
    assert run_assignment_reminders(database_url, AS_OF).success
    assert run_assignment_reminders(database_url, AS_OF + dt.timedelta(days=3)).success
    assert run_assignment_reminders(database_url, AS_OF + dt.timedelta(days=7)).success
    # day +3: both gaps are still in the same step; day +7: each mentor reaches the next step
    assert [row.reminders_dispatched for row in factories.log_rows(db)] == [3, 0, 2]
    escalations = db.execute(
        sa.text("SELECT count(*) FROM public.notifications WHERE recipient_role = 'coordinator'")
    ).scalar()
    assert escalations == 1


def test_logged_contact_stops_the_reminders(db: sa.Connection, database_url: str, overdue: dict) -> None:
    db.execute(sa.text("UPDATE public.assignments SET last_contact_date = :d"), {"d": AS_OF})
    assert run_assignment_reminders(database_url, AS_OF + dt.timedelta(days=5)).success
    assert factories.notification_count(db) == 0


def test_a_paused_mentor_gets_no_reminders(db: sa.Connection, database_url: str, overdue: dict) -> None:
    db.execute(sa.text("UPDATE public.peer_mentors SET status = 'paused'"))
    assert run_assignment_reminders(database_url, AS_OF).success
    assert factories.notification_count(db) == 0
    assert factories.log_rows(db)[0].assignments_evaluated == 3


def test_a_run_that_finds_the_lock_held_is_skipped_and_logged(
    db: sa.Connection, database_url: str, overdue: dict
) -> None:
    with connect(database_url, autocommit=True) as other_run:
        assert execution_log.try_acquire_job_lock(other_run, ASSIGNMENT_REMINDERS.lock_key)
        result = run_assignment_reminders(database_url, AS_OF)

    assert result.success
    assert {step.step_key for step in result.get_step_success_events()} == {"begin_guarded_run"}
    (row,) = factories.log_rows(db)
    assert row.status == "skipped" and row.completed_at is not None and row.duration_ms is None
    assert factories.notification_count(db) == 0


def _break_dispatch(db: sa.Connection) -> None:
    """A real database fault: the outbox table is gone."""
    db.execute(sa.text("ALTER TABLE public.notifications RENAME TO notifications_moved"))


def _repair_dispatch(db: sa.Connection) -> None:
    db.execute(sa.text("ALTER TABLE public.notifications_moved RENAME TO notifications"))


def test_a_failing_run_is_logged_failed_and_the_dagster_run_fails(
    db: sa.Connection, database_url: str, overdue: dict
) -> None:
    _break_dispatch(db)
    with DagsterInstance.ephemeral() as instance:  # one run history, as in production
        first = run_assignment_reminders(database_url, AS_OF, instance=instance)
        second = run_assignment_reminders(database_url, AS_OF, instance=instance)
        _repair_dispatch(db)
        third = run_assignment_reminders(database_url, AS_OF, instance=instance)

    assert (first.success, second.success, third.success) == (False, False, True)
    rows = factories.log_rows(db)
    assert [(r.status, r.consecutive_failure_count) for r in rows] == [
        ("failed", 1),
        ("failed", 2),
        ("success", 0),
    ]
    assert "notifications" in rows[0].error_message and "does not exist" in rows[0].error_message
    assert rows[0].completed_at is not None and rows[0].duration_ms is not None
    assert factories.notification_count(db) == 3  # the recovered run sent what the failed ones could not


def test_personal_data_in_an_error_reaches_neither_the_log_row_nor_dagster(
    db: sa.Connection, database_url: str, overdue: dict
) -> None:
    db.execute(
        sa.text(
            "CREATE FUNCTION public.leaky() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'cannot notify % (%)', (SELECT email FROM public.peer_mentors LIMIT 1),"
            " (SELECT phone FROM public.peer_mentors LIMIT 1); END $$;"
            " CREATE TRIGGER leaky BEFORE INSERT ON public.notifications FOR EACH ROW EXECUTE FUNCTION public.leaky()"
        )
    )
    result = run_assignment_reminders(database_url, AS_OF)

    assert not result.success
    (row,) = factories.log_rows(db)
    assert row.status == "failed" and "cannot notify" in row.error_message
    assert "kari@" not in row.error_message and "000 00 000" not in row.error_message
    events = " ".join(str(event) for event in result.all_events)
    assert "cannot notify [email]" in events
    assert "kari@" not in events


def _wait_until_lock_released(db: sa.Connection, key: int) -> None:
    """The server ends a dead client's backend (and its locks) asynchronously."""
    deadline = time.monotonic() + 10
    query = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key")
    while db.execute(query, {"key": key}).scalar():
        assert time.monotonic() < deadline, "the lock outlived its process"
        time.sleep(0.05)


def test_a_row_abandoned_by_a_crashed_process_is_closed_by_the_next_run(
    db: sa.Connection, database_url: str, overdue: dict
) -> None:
    crash = (
        "import os, sqlalchemy as sa\n"
        "from reminder_pipeline.core import execution_log as log\n"
        "from reminder_pipeline.core.database import create_engine\n"
        f"c = create_engine({database_url!r}).connect().execution_options(isolation_level='AUTOCOMMIT')\n"
        f"assert log.try_acquire_job_lock(c, {ASSIGNMENT_REMINDERS.lock_key})\n"
        "log.start_run(c, 'assignment_reminders')\n"
        "os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", crash], timeout=60).returncode == 9
    _wait_until_lock_released(db, ASSIGNMENT_REMINDERS.lock_key)

    assert run_assignment_reminders(database_url, AS_OF).success
    abandoned, recovered = factories.log_rows(db)
    assert (abandoned.status, abandoned.error_message) == ("failed", execution_log.ABANDONED_MESSAGE)
    assert abandoned.consecutive_failure_count == 1
    assert (recovered.status, recovered.consecutive_failure_count) == ("success", 0)


def test_the_log_row_counts_what_the_dispatch_committed_even_when_the_run_dies_after_it(
    db: sa.Connection, database_url: str, overdue: dict
) -> None:
    """The dispatch transaction writes its count on the row: when finalising fails afterwards (here a
    trigger refuses the `success` update, as a crash at that moment would), the row still says 3."""
    db.execute(
        sa.text(
            "CREATE FUNCTION public.refuse_success() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'finalising refused'; END $$;"
            " CREATE TRIGGER refuse_success BEFORE UPDATE ON public.cron_execution_logs FOR EACH ROW"
            " WHEN (NEW.status = 'success') EXECUTE FUNCTION public.refuse_success()"
        )
    )
    assert not run_assignment_reminders(database_url, AS_OF).success
    assert db.execute(sa.text("SELECT count(*) FROM public.notifications")).scalar() == 3
    (row,) = factories.log_rows(db)
    assert (row.status, row.reminders_dispatched) == ("failed", 3)


def test_two_racing_runs_give_one_success_one_skip_and_no_duplicates(
    db: sa.Connection, database_url: str, overdue: dict
) -> None:
    """Two real processes. The test blocks inserts into the outbox, so whichever run takes the lock
    first is held inside its dispatch while the other one arrives and must skip."""
    with connect(database_url) as blocker:
        transaction = blocker.begin()
        blocker.execute(sa.text("LOCK TABLE public.notifications IN EXCLUSIVE MODE"))
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = [pool.submit(run_in_subprocess, database_url, AS_OF.isoformat()) for _ in range(2)]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                statuses = [row.status for row in factories.log_rows(db)]
                if "skipped" in statuses or all(run.done() for run in runs):
                    break
                time.sleep(0.2)
            transaction.commit()
            outcomes = [run.result(timeout=120) for run in runs]

    assert outcomes == [True, True]
    assert sorted(row.status for row in factories.log_rows(db)) == ["skipped", "success"]
    assert factories.notification_count(db) == 3


# An independent statement of the rule, in SQL, to check the job's counts against.
EXPECTED_SQL = """
WITH gaps AS (
    SELECT CAST(:as_of AS date)
           - coalesce(a.last_contact_date, (a.assigned_at AT TIME ZONE 'Europe/Oslo')::date) AS days
    FROM public.assignments a JOIN public.peer_mentors m ON m.id = a.mentor_id
    WHERE a.status = 'active' AND m.status = 'active'
)
SELECT count(*) FILTER (WHERE days >= 10) + count(*) FILTER (WHERE days >= 21) FROM gaps
"""


def test_ten_thousand_assignments_complete_with_the_right_counts(db: sa.Connection, database_url: str) -> None:
    with connect(database_url) as connection, connection.begin():
        seed(connection, 10_000, today=AS_OF)
    active = db.execute(sa.text("SELECT count(*) FROM public.assignments WHERE status = 'active'")).scalar()
    expected = db.execute(sa.text(EXPECTED_SQL), {"as_of": AS_OF}).scalar()

    started = time.monotonic()
    result = run_assignment_reminders(database_url, AS_OF)
    elapsed = time.monotonic() - started

    assert result.success
    (row,) = factories.log_rows(db)
    assert row.assignments_evaluated == active
    assert row.reminders_dispatched == expected == factories.notification_count(db)
    assert expected > 1000
    print(f"10,000 assignments: {elapsed:.2f} s in-process, {row.duration_ms} ms logged")


def test_a_run_blocked_by_a_table_lock_fails_at_the_lock_timeout_and_names_its_backend(
    db: sa.Connection, database_url: str, overdue: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOB_LOCK_TIMEOUT_SECONDS", "3")
    with connect(database_url) as blocker:
        blocker.execute(sa.text("BEGIN; LOCK TABLE public.notifications IN ACCESS EXCLUSIVE MODE"))
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            running = pool.submit(run_assignment_reminders, database_url, AS_OF)
            waiting = []
            while not waiting and not running.done():
                waiting = db.execute(
                    sa.text(
                        "SELECT application_name FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND application_name LIKE 'rp:%'"
                    )
                ).all()
                time.sleep(0.1)
            result = running.result(timeout=60)
            elapsed = time.monotonic() - started
        blocker.execute(sa.text("ROLLBACK"))
    print(f"measured: a run blocked by a table lock failed {elapsed:.1f} s after it started (lock timeout 3 s)")
    assert not result.success and elapsed < 30
    assert [row.application_name for row in waiting] == [f"rp:{result.run_id}"]
    (row,) = factories.log_rows(db)
    assert row.status == "failed" and "LockNotAvailable" in row.error_message
    assert db.execute(sa.text("SELECT count(*) FROM public.notifications")).scalar() == 0


def test_terminate_stops_a_run_blocked_in_a_query_within_seconds(
    db: sa.Connection, database_url: str, overdue: dict
) -> None:
    """Terminate marks the run CANCELING; the run's watchdog cancels its blocked query, so the log
    row is closed as failed and the lock released, long before the lock timeout (120 s)."""
    with DagsterInstance.ephemeral() as instance, connect(database_url) as blocker:
        blocker.execute(sa.text("BEGIN; LOCK TABLE public.notifications IN ACCESS EXCLUSIVE MODE"))
        result, stopped_after = terminate_once_blocked(
            db, instance, lambda: run_assignment_reminders(database_url, AS_OF, None, instance)
        )
        blocker.execute(sa.text("ROLLBACK"))
    print(f"measured: a run blocked in a query stopped {stopped_after:.1f} s after Terminate")
    assert not result.success and stopped_after < 30
    (row,) = factories.log_rows(db)
    assert row.status == "failed" and "QueryCanceled" in row.error_message
    assert execution_log.try_acquire_job_lock(db, ASSIGNMENT_REMINDERS.lock_key)
    execution_log.release_job_lock(db, ASSIGNMENT_REMINDERS.lock_key)


def test_reexecution_from_failure_is_refused_with_instructions_and_counts_as_a_failure(
    db: sa.Connection, database_url: str, overdue: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What "Re-execute from failure" in the UI does: a new run of the failed steps only, which would
    skip the lock. It fails with a message saying what to do; "Re-execute all" works."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    job = build_reconstructable_job("reminder_pipeline.definitions", "job_named", ("assignment_reminders",))
    config = dated_run_config(ASSIGNMENT_REMINDERS.dated_op, AS_OF, allow_any_date=True)
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        db.execute(sa.text("ALTER TABLE public.notifications RENAME TO notifications_moved"))
        with execute_job(job, instance, run_config=config) as failed:
            assert not failed.success
        db.execute(sa.text("ALTER TABLE public.notifications_moved RENAME TO notifications"))

        from_failure = ReexecutionOptions.from_failure(failed.run_id, instance)
        with execute_job(job, instance, reexecution_options=from_failure) as partial:
            assert not partial.success
            assert instance.get_run_by_id(partial.run_id).parent_run_id == failed.run_id
        failures = [
            event.dagster_event.step_failure_data.error
            for event in instance.all_logs(partial.run_id)
            if event.dagster_event is not None and event.dagster_event.is_step_failure
        ]
        assert failures and all("Launch the whole job again" in error.to_string() for error in failures)
        every_step = ReexecutionOptions(parent_run_id=failed.run_id)
        with execute_job(job, instance, reexecution_options=every_step) as whole:
            assert whole.success
    assert [row.status for row in factories.log_rows(db)] == ["failed", "success"]
    assert db.execute(sa.text("SELECT count(*) FROM public.notifications")).scalar() == 3


def test_a_run_records_what_it_did_as_dagster_metadata_and_an_asset_materialization(
    db: sa.Connection, database_url: str, overdue: dict
) -> None:
    with DagsterInstance.ephemeral() as instance:
        result = run_assignment_reminders(database_url, AS_OF, instance=instance)
        assert result.success
        event = instance.get_latest_materialization_event(AssetKey("reminder_outbox"))
        assert event is not None and event.run_id == result.run_id
        metadata = {key: value.value for key, value in event.asset_materialization.metadata.items()}
        tags = instance.get_run_by_id(result.run_id).tags
    (row,) = factories.log_rows(db)
    assert metadata["as_of"] == AS_OF.isoformat() and tags["reminder_pipeline/as_of"] == AS_OF.isoformat()
    assert (metadata["evaluated"], metadata["created"], metadata["due"]) == (3, 3, 3)
    assert metadata["due_by_kind.assignment_follow_up_reminder"] == 2
    assert metadata["due_by_kind.assignment_follow_up_escalation"] == 1
    assert metadata["execution_log_id"] == str(row.id) and metadata["duration_seconds"] >= 0
    assert "Kari" not in str(metadata)


def test_a_manual_run_without_a_date_is_tagged_with_the_day_it_acted_for(database_url: str, overdue: dict) -> None:
    with DagsterInstance.ephemeral() as instance:
        job = build_defs(database_url).resolve_job_def("assignment_reminders")
        result = job.execute_in_process(instance=instance)
        assert result.success
        assert instance.get_run_by_id(result.run_id).tags["reminder_pipeline/as_of"] == today_local().isoformat()


def test_a_run_config_refused_in_the_op_names_the_rule_on_its_row_and_in_the_one_alert(
    db: sa.Connection, database_url: str, overdue: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk size of 0 passes Dagster's config schema and is refused by the op's model: the run
    fails, its log row and the one alert after two such runs name the field and its rule (a real
    Slack peer), never the value."""
    for name in ("SLACK_WEBHOOK_URL", "ALERT_SMTP_HOST", "ALERT_EMAIL_TO"):
        monkeypatch.delenv(name, raising=False)
    rule = "chunk_size: Input should be greater than or equal to 1"
    with HttpPeer() as slack, DagsterInstance.ephemeral() as instance:
        alerting = alerting_for(database_url, slack_webhook_url=slack.url)
        runs = [run_assignment_reminders(database_url, AS_OF, alerting, instance, chunk_size=0) for _ in range(2)]
        tick("ops_run_failures", instance, database_url, alerting)
        tick("ops_run_failures", instance, database_url, alerting)
        alerts = [request.json() for request in slack.requests]

    assert [run.success for run in runs] == [False, False]
    rows = factories.log_rows(db)
    assert [(row.status, row.error_message) for row in rows] == [("failed", f"invalid ReminderRunConfig: {rule}")] * 2
    assert factories.notification_count(db) == 0
    assert len(alerts) == 1 and "assignment_reminders failed 2 times in a row" in alerts[0]["text"]
    assert rule in json.dumps(alerts[0])  # the error, in the message's blocks
