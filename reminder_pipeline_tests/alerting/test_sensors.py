"""Long-run and missed-run sensors, evaluated against real execution-log rows."""

import datetime as dt

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from reminder_pipeline.alerting.resources import OpsAlerting
from reminder_pipeline.definitions import defs
from reminder_pipeline_tests.dagster_helpers import Tick, alerting_for, tick
from reminder_pipeline_tests.http_peers import HttpPeer

pytestmark = pytest.mark.database


def _log_row(db: sa.Connection, status: str, started_minutes_ago: float, job: str = "assignment_reminders") -> None:
    db.execute(
        sa.text(
            "INSERT INTO public.cron_execution_logs (job_name, status, started_at, completed_at, dagster_run_id)"
            " VALUES (:job, :status, now() - make_interval(secs => :ago * 60),"
            "  CASE WHEN :status <> 'running' THEN now() - make_interval(secs => :ago * 60) + interval '2 seconds' END,"
            "  'run-' || :status)"
        ),
        {"job": job, "status": status, "ago": started_minutes_ago},
    )


def _evaluate(
    sensor_name: str, instance: DagsterInstance, alerting: OpsAlerting, cursor: str | None = None
) -> tuple[Tick, str | None]:
    database_url = alerting.database.database_url
    assert database_url is not None
    result = tick(sensor_name, instance, database_url, alerting, cursor)
    return result, result.cursor


def test_the_sensors_are_registered_and_running_by_default() -> None:
    sensors = {sensor.name: sensor for sensor in defs.get_repository_def().sensor_defs}
    assert set(sensors) == {
        "ops_long_running_runs",
        "ops_missed_runs",
        "ops_alert_redelivery",
        "ops_run_failures",
        "ops_dead_runs",
        "dynamics_sync_when_due",
        "notification_delivery_when_due",
    }
    assert all(s.default_status.value == "RUNNING" for s in sensors.values())
    assert {name: s.minimum_interval_seconds for name, s in sensors.items()} == {
        "ops_long_running_runs": 300,
        "ops_missed_runs": 300,
        "ops_alert_redelivery": 300,
        "ops_run_failures": 60,
        "ops_dead_runs": 60,
        "dynamics_sync_when_due": 60,
        "notification_delivery_when_due": 60,
    }


def test_a_run_still_running_after_31_minutes_is_alerted_once(
    db: sa.Connection, database_url: str, instance: DagsterInstance, slack: HttpPeer
) -> None:
    _log_row(db, "success", 60 * 24)
    _log_row(db, "running", 31)
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)

    first, _ = _evaluate("ops_long_running_runs", instance, alerting)
    second, _ = _evaluate("ops_long_running_runs", instance, alerting)

    assert [run.success for run in first.runs] == [True] and second.runs == []
    (request,) = slack.requests
    message = request.json()
    assert message["text"].endswith("assignment_reminders has been running for 31 minutes")
    assert "run-running" in message["blocks"][1]["text"]["text"]
    assert message["blocks"][2]["elements"][0]["text"].startswith("Last successful run: 20")


def test_a_run_running_for_29_minutes_is_not_alerted(
    db: sa.Connection, database_url: str, instance: DagsterInstance, slack: HttpPeer
) -> None:
    _log_row(db, "running", 29)
    _evaluate("ops_long_running_runs", instance, alerting_for(database_url, slack_webhook_url=slack.url))
    assert slack.requests == []


def test_a_job_without_success_for_27_hours_is_alerted_once_and_once_more_on_recovery(
    db: sa.Connection, database_url: str, instance: DagsterInstance, slack: HttpPeer
) -> None:
    _log_row(db, "success", 27 * 60 + 1)
    _log_row(db, "failed", 3 * 60)
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)

    _, cursor = _evaluate("ops_missed_runs", instance, alerting)
    _evaluate("ops_missed_runs", instance, alerting, cursor)
    assert [r.json()["text"].split(" ", 1)[1] for r in slack.requests] == [
        "assignment_reminders has not succeeded for 27 hours"
    ]

    _log_row(db, "success", 1)
    _evaluate("ops_missed_runs", instance, alerting, cursor)
    _evaluate("ops_missed_runs", instance, alerting, cursor)
    assert [r.json()["text"].split(" ", 1)[1] for r in slack.requests][1:] == [
        "assignment_reminders is succeeding again after a missed run"
    ]


def test_a_job_that_ran_25_hours_ago_is_not_missed(
    db: sa.Connection, database_url: str, instance: DagsterInstance, slack: HttpPeer
) -> None:
    _log_row(db, "success", 25 * 60)
    _evaluate("ops_missed_runs", instance, alerting_for(database_url, slack_webhook_url=slack.url))
    assert slack.requests == []


def test_a_job_that_never_ran_is_missed_once_the_watch_is_older_than_the_limit(
    db: sa.Connection, database_url: str, instance: DagsterInstance, slack: HttpPeer
) -> None:
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    _, cursor = _evaluate("ops_missed_runs", instance, alerting)
    assert cursor is not None and slack.requests == []  # the watch just started

    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)).isoformat()
    _evaluate("ops_missed_runs", instance, alerting, long_ago)
    _evaluate("ops_missed_runs", instance, alerting, long_ago)
    # every job with a missed-run window never ran, and each window is shorter than 30 hours: one
    # alert each, once (dynamics_sync runs only when events are due, so it has no window)
    assert sorted(request.json()["text"].split(" ")[1] for request in slack.requests) == [
        "assignment_reminders",
        "certification_reminders",
    ]
    assert {request.json()["blocks"][2]["elements"][0]["text"] for request in slack.requests} == {
        "Last successful run: never"
    }


def test_undelivered_alerts_are_redelivered_by_their_sensor(
    db: sa.Connection, database_url: str, instance: DagsterInstance, slack: HttpPeer
) -> None:
    _log_row(db, "running", 45)
    slack.status = 503
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    _evaluate("ops_long_running_runs", instance, alerting)
    slack.status = 200
    db.execute(sa.text("UPDATE public.ops_alerts SET next_attempt_at = now()"))  # the backoff has passed
    result, _ = _evaluate("ops_alert_redelivery", instance, alerting)
    assert [run.success for run in result.runs] == [True]
    assert len(slack.requests) == 2
    assert db.execute(sa.text("SELECT delivery_attempts FROM public.ops_alerts")).scalar() == 2


def test_previewing_a_tick_changes_nothing_and_sends_nothing(
    db: sa.Connection, database_url: str, instance: DagsterInstance, slack: HttpPeer
) -> None:
    """What "Preview tick result" in the UI does: evaluate without launching. Every sensor, with
    something to report, must leave the database and Slack untouched."""
    _log_row(db, "success", 27 * 60 + 1)
    _log_row(db, "running", 45)
    db.execute(
        sa.text(
            "INSERT INTO public.ops_alerts (kind, job_name, payload, incident_key)"
            " VALUES ('long_running', 'certification_reminders', '{}', 'x')"
        )
    )
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    before = db.execute(sa.text("SELECT * FROM public.ops_alerts ORDER BY id")).all()
    requested = 0
    for sensor in defs.get_repository_def().sensor_defs:
        previewed = tick(sensor.name, instance, database_url, alerting, "2026-01-01T00:00:00+00:00", launch=False)
        requested += len(previewed.result.run_requests or [])
    assert requested >= 3  # long-running, missed run, redelivery: each had something to ask for
    assert slack.requests == []
    assert db.execute(sa.text("SELECT * FROM public.ops_alerts ORDER BY id")).all() == before
    assert instance.get_runs() == []
