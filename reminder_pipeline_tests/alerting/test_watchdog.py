"""The watchdog and the database's own schedule watch: with no Dagster process alive, a scheduled run
that did not happen is recorded overdue (once), resolved by the next success; a silent daemon is
reported down; the external monitor gets `/fail`; operations get exactly one alert per incident."""

import datetime as dt
import time

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance
from dagster._daemon.types import DaemonHeartbeat

from reminder_pipeline.alerting import schedule_watch
from reminder_pipeline.alerting.watchdog import watch
from reminder_pipeline.core.daemon_health import REQUIRED_DAEMONS, daemon_health
from reminder_pipeline.definitions import JOB_SPECS
from reminder_pipeline_tests.dagster_helpers import run_assignment_reminders
from reminder_pipeline_tests.http_peers import HttpPeer

pytestmark = pytest.mark.database
JOB = "assignment_reminders"


@pytest.fixture
def watched(db: sa.Connection) -> list[str]:
    return schedule_watch.sync_job_schedules(db, JOB_SPECS)


def _expect(db: sa.Connection, job: str, hours_ago: float, watched_days: float = 2) -> None:
    """Move the job's daily time to `hours_ago` before now (local), watched since `watched_days` ago."""
    db.execute(
        sa.text(
            "UPDATE public.job_schedules SET daily_at = CAST((now() - make_interval(secs => :secs))"
            " AT TIME ZONE timezone AS time), watched_since = now() - make_interval(secs => :days * 86400)"
            " WHERE job_name = :job"
        ),
        {"secs": hours_ago * 3600, "days": watched_days, "job": job},
    )


def _beat(instance: DagsterInstance, age_seconds: float) -> None:
    for daemon in REQUIRED_DAEMONS:
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time() - age_seconds, daemon, "test-daemon", []))


def test_the_daily_schedules_are_watched_and_a_non_daily_one_is_not(db: sa.Connection, watched: list[str]) -> None:
    assert watched == ["assignment_reminders", "certification_reminders"]
    assert schedule_watch.daily_time("0 7 * * *") == dt.time(7, 0)
    assert schedule_watch.daily_time("*/5 * * * *") is None
    # A second sync changes nothing, so watched_since stays where it was.
    since = db.execute(sa.text("SELECT watched_since FROM public.job_schedules WHERE job_name = :j"), {"j": JOB})
    before = since.scalar_one()
    schedule_watch.sync_job_schedules(db, JOB_SPECS)
    after = db.execute(sa.text("SELECT watched_since FROM public.job_schedules WHERE job_name = :j"), {"j": JOB})
    assert after.scalar_one() == before


def test_a_missed_run_is_recorded_once_and_resolved_by_the_next_success(
    db: sa.Connection, database_url: str, watched: list[str]
) -> None:
    _expect(db, JOB, hours_ago=2)
    first = schedule_watch.record_overdue(db)
    second = schedule_watch.record_overdue(db)

    assert [item.job_name for item in first] == [JOB] and second == first
    assert first[0].last_success_at is None and "SCHEDULE OVERDUE" in first[0].describe()
    assert db.execute(sa.text("SELECT count(*) FROM public.schedule_overdue")).scalar_one() == 1
    assert schedule_watch.open_overdue(db, JOB) == first

    assert run_assignment_reminders(database_url, dt.date(2026, 11, 22)).success
    assert schedule_watch.record_overdue(db) == []
    resolved = db.execute(sa.text("SELECT resolved_at FROM public.schedule_overdue")).scalar_one()
    assert resolved is not None and schedule_watch.open_overdue(db) == []


def test_nothing_is_overdue_within_the_grace_or_before_watching_began(db: sa.Connection, watched: list[str]) -> None:
    _expect(db, JOB, hours_ago=0.2, watched_days=0.5)  # 12 minutes late: the grace is 30
    _expect(db, "certification_reminders", hours_ago=2, watched_days=0.01)  # installed after it was due
    assert schedule_watch.record_overdue(db) == []

    _expect(db, JOB, hours_ago=0.6, watched_days=0.5)  # 36 minutes late
    assert [item.job_name for item in schedule_watch.record_overdue(db)] == [JOB]


def test_a_dead_daemon_is_reported_down_pinged_fail_and_alerted_once(
    database_url: str, instance: DagsterInstance, watched: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with HttpPeer() as monitor, HttpPeer() as slack:
        monkeypatch.setenv("HEARTBEAT_URL_DAGSTER_DAEMON", f"{monitor.url}/daemon")
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        _beat(instance, age_seconds=600)  # it last reported ten minutes ago, then died

        first = watch(database_url, instance, JOB_SPECS)
        second = watch(database_url, instance, JOB_SPECS)

        assert not first.ok and not second.ok
        assert first.lines()[0].startswith("dagster-daemon: DOWN (silent: SCHEDULER 600 s ago")
        assert [request.path for request in monitor.requests] == ["/daemon/fail", "/daemon/fail"]
        assert b"DOWN" in monitor.requests[0].body
        assert len(slack.requests) == 1
        assert "dagster-daemon has not reported for 10 minutes" in slack.requests[0].json()["text"]
        assert [outcome.kind for outcome in first.alerts] == ["daemon_down"] and second.alerts == []

        _beat(instance, age_seconds=5)  # restarted
        healthy = watch(database_url, instance, JOB_SPECS)
        assert healthy.ok and healthy.lines()[0].startswith("dagster-daemon: alive")
        assert monitor.requests[-1].path == "/daemon" and len(slack.requests) == 1


def test_an_overdue_job_alerts_once_per_expected_run(
    db: sa.Connection, database_url: str, instance: DagsterInstance, watched: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _beat(instance, age_seconds=5)
    _expect(db, JOB, hours_ago=2)
    with HttpPeer() as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        first = watch(database_url, instance, JOB_SPECS)
        again = watch(database_url, instance, JOB_SPECS, alert=True)
        report = watch(database_url, instance, JOB_SPECS, alert=False)

    assert not first.ok and [outcome.kind for outcome in first.alerts] == ["schedule_overdue"]
    assert again.alerts == [] and report.alerts == []
    assert len(slack.requests) == 1
    assert "assignment_reminders was expected at" in slack.requests[0].json()["text"]
    assert "daemon heartbeat ping: not configured" in report.lines()


def test_daemon_health_names_each_silent_daemon() -> None:
    health = daemon_health({"SCHEDULER": 100.0, "SENSOR": 290.0}, now=300.0, stale_after_seconds=180)
    assert health.silent == ["SCHEDULER", "QUEUED_RUN_COORDINATOR"]
    assert health.describe() == (
        "dagster-daemon: DOWN (silent: SCHEDULER 200 s ago, QUEUED_RUN_COORDINATOR never; limit 180 s)"
    )
    assert daemon_health({}, now=300.0, stale_after_seconds=180).last_seen is None


def test_while_the_daemon_is_dead_the_watchdog_retries_an_alert_slack_refused(
    db: sa.Connection, database_url: str, instance: DagsterInstance, watched: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with HttpPeer(statuses=[500]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        first = watch(database_url, instance, JOB_SPECS)
        assert [(outcome.kind, outcome.sent) for outcome in first.alerts] == [("daemon_down", False)]
        db.execute(sa.text("UPDATE public.ops_alerts SET next_attempt_at = now()"))  # its backoff has passed

        second = watch(database_url, instance, JOB_SPECS)

    assert [(outcome.kind, outcome.sent) for outcome in second.alerts] == [("daemon_down", True)]
    assert len(slack.requests) == 2
    delivered = db.execute(sa.text("SELECT delivered_at IS NOT NULL FROM public.ops_alerts")).scalar_one()
    assert delivered
