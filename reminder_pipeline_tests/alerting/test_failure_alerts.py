"""Consecutive-failure alerts and recovery, from real failed runs (a database fault, not a mock)
to a real HTTP server on 127.0.0.1 standing in for Slack."""

import datetime as dt
import time

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from reminder_pipeline.core.execution_log import FinishedRun
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import alerting_for, run_assignment_reminders, run_log_text
from reminder_pipeline_tests.http_peers import HttpPeer

pytestmark = pytest.mark.database
AS_OF = dt.date(2026, 11, 22)


@pytest.fixture
def overdue(db: sa.Connection) -> None:
    coordinator = factories.coordinator(db)
    factories.assignment(db, factories.mentor(db, coordinator), assigned_on=dt.date(2026, 10, 1))


def _break(db: sa.Connection) -> None:
    db.execute(sa.text("ALTER TABLE public.notifications RENAME TO notifications_moved"))


def _repair(db: sa.Connection) -> None:
    db.execute(sa.text("ALTER TABLE public.notifications_moved RENAME TO notifications"))


def _alert_rows(db: sa.Connection) -> list[sa.Row]:
    return db.execute(
        sa.text(
            "SELECT kind, execution_log_id, dagster_run_id, payload, delivered_at, delivery_attempts,"
            " delivery_error FROM public.ops_alerts ORDER BY created_at"
        )
    ).all()


def test_two_failed_runs_send_exactly_one_alert_with_the_specified_payload(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer
) -> None:
    alerting = alerting_for(database_url, slack_webhook_url=slack.url, webserver_base_url="http://127.0.0.1:3000")
    _break(db)
    first = run_assignment_reminders(database_url, AS_OF, alerting)
    assert slack.requests == []
    second = run_assignment_reminders(database_url, AS_OF, alerting)
    third = run_assignment_reminders(database_url, AS_OF, alerting)

    assert not (first.success or second.success or third.success)
    assert len(slack.requests) == 1
    message = slack.requests[0].json()
    assert [block["type"] for block in message["blocks"]] == ["header", "section", "context"]
    assert message["blocks"][0]["text"]["text"].endswith("assignment_reminders failed 2 times in a row")
    assert "does not exist" in message["blocks"][1]["text"]["text"]
    assert f"<http://127.0.0.1:3000/runs/{second.run_id}|{second.run_id}>" in message["blocks"][1]["text"]["text"]
    assert message["blocks"][2]["elements"][0]["text"] == "Last successful run: never"

    (alert,) = _alert_rows(db)
    second_row = factories.log_rows(db)[1]
    assert (alert.kind, alert.execution_log_id, alert.dagster_run_id) == (
        "consecutive_failures",
        second_row.id,
        second.run_id,
    )
    assert alert.payload["error_message"] == second_row.error_message
    assert alert.payload["consecutive_failure_count"] == 2
    assert alert.payload["last_success_at"] is None
    assert alert.delivered_at is not None and alert.delivery_error is None
    assert slack.url not in str(alert.payload)


def test_fail_fail_success_resets_the_count_and_sends_one_recovery_message(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer
) -> None:
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    assert run_assignment_reminders(database_url, AS_OF - dt.timedelta(days=1), alerting).success
    _break(db)
    run_assignment_reminders(database_url, AS_OF, alerting)
    run_assignment_reminders(database_url, AS_OF, alerting)
    _repair(db)
    assert run_assignment_reminders(database_url, AS_OF, alerting).success
    assert run_assignment_reminders(database_url, AS_OF, alerting).success

    assert [row.consecutive_failure_count for row in factories.log_rows(db)] == [0, 1, 2, 0, 0]
    assert [request.json()["text"].split(" ", 1)[1] for request in slack.requests] == [
        "assignment_reminders failed 2 times in a row",
        "assignment_reminders recovered after 2 consecutive failures",
    ]
    assert "Last successful run: 20" in slack.requests[0].json()["blocks"][2]["elements"][0]["text"]
    assert [row.kind for row in _alert_rows(db)] == ["consecutive_failures", "recovered"]


def test_a_slack_that_hangs_costs_the_run_at_most_the_timeout(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer
) -> None:
    slack.delay_seconds = 30
    alerting = alerting_for(database_url, slack_webhook_url=slack.url, timeout_seconds=2)
    _break(db)
    started = time.monotonic()
    run_assignment_reminders(database_url, AS_OF, alerting)  # count 1: no alert, the same work otherwise
    without_alert = time.monotonic() - started
    started = time.monotonic()
    result = run_assignment_reminders(database_url, AS_OF, alerting)
    with_alert = time.monotonic() - started

    assert not result.success  # the run keeps its own status
    assert with_alert - without_alert < 2 + 2, f"the alert cost {with_alert - without_alert:.1f} s"
    assert with_alert >= 2  # it really waited for the hanging Slack
    assert [row.status for row in factories.log_rows(db)] == ["failed", "failed"]
    (alert,) = _alert_rows(db)
    assert alert.delivered_at is None and "timed out" in alert.delivery_error.lower()
    assert slack.url not in alert.delivery_error


def test_a_slack_answering_500_is_recorded_undelivered_and_retried_later(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer
) -> None:
    slack.status = 500
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    _break(db)
    run_assignment_reminders(database_url, AS_OF, alerting)
    instance = DagsterInstance.ephemeral()
    result = run_assignment_reminders(database_url, AS_OF, alerting, instance)

    assert not result.success
    row_2 = factories.log_rows(db)[1]
    assert (row_2.status, row_2.consecutive_failure_count) == ("failed", 2)
    (alert,) = _alert_rows(db)
    assert (alert.delivered_at, alert.delivery_attempts, alert.delivery_error) == (
        None,
        1,
        "slack webhook answered HTTP 500",
    )
    assert "NOT delivered (slack webhook answered HTTP 500)" in run_log_text(instance, result.run_id)

    slack.status = 200
    outcomes = alerting.redeliver()
    assert [outcome.sent for outcome in outcomes] == [True]
    assert alerting.redeliver() == []
    assert len(slack.requests) == 2
    assert _alert_rows(db)[0].delivered_at is not None


def test_the_webhook_url_comes_from_supabase_vault_when_there_is_one(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HttpPeer() as wrong_slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", wrong_slack.url)
        db.execute(sa.text("CREATE SCHEMA vault"))
        db.execute(
            sa.text(
                "CREATE VIEW vault.decrypted_secrets AS SELECT * FROM (VALUES"
                " ('other_secret', 'http://127.0.0.1:1/'), ('slack_alert_webhook_url', :url))"
                " AS secrets (name, decrypted_secret)"
            ).bindparams(url=slack.url)
        )
        alerting = alerting_for(database_url)
        _break(db)
        run_assignment_reminders(database_url, AS_OF, alerting)
        instance = DagsterInstance.ephemeral()
        result = run_assignment_reminders(database_url, AS_OF, alerting, instance)

        assert len(slack.requests) == 1 and wrong_slack.requests == []
    logs = run_log_text(instance, result.run_id)
    assert "consecutive_failures alert" in logs and "delivered" in logs
    assert slack.url not in logs and "127.0.0.1:1/" not in logs


def test_without_a_vault_secret_the_environment_is_used(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
    alerting = alerting_for(database_url)
    _break(db)
    run_assignment_reminders(database_url, AS_OF, alerting)
    run_assignment_reminders(database_url, AS_OF, alerting)
    assert len(slack.requests) == 1


def test_no_channel_configured_is_recorded_not_silent(db: sa.Connection, database_url: str, overdue: None) -> None:
    alerting = alerting_for(database_url)
    _break(db)
    run_assignment_reminders(database_url, AS_OF, alerting)
    run_assignment_reminders(database_url, AS_OF, alerting)
    (alert,) = _alert_rows(db)
    assert alert.delivered_at is None and "no alert channel configured" in alert.delivery_error


def test_a_retried_finalisation_does_not_alert_twice(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer
) -> None:
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    _break(db)
    run_assignment_reminders(database_url, AS_OF, alerting)
    run_assignment_reminders(database_url, AS_OF, alerting)
    second = factories.log_rows(db)[1]
    finished = FinishedRun(
        second.id,
        "assignment_reminders",
        "failed",
        2,
        second.error_message,
        second.dagster_run_id,
        second.completed_at,
        1,
    )
    assert alerting.after_run_finished(finished) is None
    assert len(slack.requests) == 1
