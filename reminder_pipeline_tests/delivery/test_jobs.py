"""The `notification_delivery` job and its sensor through real Dagster instances: what a run shows in
Dagster, the incident alerts it raises, and when the sensor asks for a run."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRunStatus

from reminder_pipeline.delivery import repository
from reminder_pipeline.delivery.jobs import NotificationDelivery
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import alerting_for, run_assignment_reminders, run_job, run_log_text, tick
from reminder_pipeline_tests.delivery.conftest import Recipients
from reminder_pipeline_tests.http_peers import HttpPeer

pytestmark = pytest.mark.database
AS_OF = dt.date.today()


@pytest.fixture
def push(monkeypatch: pytest.MonkeyPatch, gateway: HttpPeer) -> HttpPeer:
    """The deployment's push gateway, configured as a deployment does it (the environment), and no
    quiet hours, so that the tests do not depend on the hour they run at."""
    monkeypatch.setenv("PUSH_WEBHOOK_URL", gateway.url)
    monkeypatch.setenv("NOTIFICATION_QUIET_HOURS", "none")
    return gateway


def _deliver(database_url: str, instance: DagsterInstance | None = None, slack: HttpPeer | None = None, **config):
    run_config = {"ops": {"deliver_notifications": {"config": config}}} if config else None
    alerting = alerting_for(database_url, slack_webhook_url=slack.url) if slack else None
    delivery = NotificationDelivery(timeout_seconds=2, max_attempts=1)
    return run_job(
        database_url, "notification_delivery", run_config, alerting=alerting, delivery=delivery, instance=instance
    )


def _finish_metadata(result) -> dict:
    (event,) = [
        event for event in result.all_events if event.is_successful_output and event.step_key == "finish_guarded_run"
    ]
    return {key: value.value for key, value in event.step_output_data.metadata.items()}


def test_a_run_delivers_what_the_reminder_job_created_and_shows_it_in_dagster(
    db: sa.Connection, database_url: str, recipients: Recipients, push: HttpPeer, instance: DagsterInstance
) -> None:
    for _ in range(3):
        factories.assignment(db, recipients.mentor(full_name="Ola Nordmann"), assigned_on=AS_OF - dt.timedelta(days=30))
    assert run_assignment_reminders(database_url, AS_OF).success
    assert factories.notification_count(db) == 6  # three reminders, three escalations to one coordinator

    result = _deliver(database_url, instance)

    assert result.success
    assert len(push.requests) == 4  # three mentors, and one digest for the coordinator
    coordinator = next(r.json() for r in push.requests if r.json()["recipient_role"] == "coordinator")
    assert len(coordinator["notification_ids"]) == 3
    metadata = _finish_metadata(result)
    assert {key: metadata[key] for key in ("delivered", "messages", "messages_delivered", "gave_up", "retrying")} == {
        "delivered": 6,
        "messages": 4,
        "messages_delivered": 4,
        "gave_up": 0,
        "retrying": 0,
    }
    assert metadata["messages_delivered_by_channel.push"] == 4 and metadata["channels"] == "push"
    (materialization,) = result.asset_materializations_for_node("finish_guarded_run")
    assert materialization.asset_key.path == ["notification_deliveries"]
    checks = {
        event.asset_check_evaluation_data.check_name: event.asset_check_evaluation_data.passed
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks == {
        "no_notification_gave_up": True,
        "no_notification_stuck_sending": True,
        "no_notification_expired_unsent": True,
        "no_run_running_too_long": True,
    }
    (row,) = factories.log_rows(db, "notification_delivery")
    assert (row.status, row.assignments_evaluated, row.reminders_dispatched) == ("success", 6, 6)
    stored = run_log_text(instance, result.run_id) + str(row.details)
    assert "Ola" not in stored and "Nordmann" not in stored and "@example.invalid" not in stored


def test_giving_up_alerts_once_per_incident_and_once_more_when_delivery_recovers(
    db: sa.Connection, database_url: str, recipients: Recipients, push: HttpPeer
) -> None:
    push.status = 503
    with HttpPeer() as slack:
        recipients.reminders(recipients.mentor(), 2)
        failed = _deliver(database_url, slack=slack)
        assert not failed.success  # it reached no one: not green
        (row,) = factories.log_rows(db, "notification_delivery")
        assert (row.status, row.error_message) == (
            "failed",
            "Failure: delivered none of 1 due message(s): push: HTTP 503 (1)",  # one digest for two
        )
        (alert,) = slack.requests
        assert alert.json()["text"] == (
            ":no_bell: notification_delivery: 2 notification(s) will not reach people (gave up or expired)"
        )
        details = alert.json()["blocks"][1]["text"]["text"]
        assert "push: HTTP 503" in details and "@" not in details

        recipients.reminders(recipients.mentor(), 1)
        assert not _deliver(database_url, slack=slack).success
        assert len(slack.requests) == 1  # the incident is open: alerted already

        push.status = 200
        recipients.reminders(recipients.mentor(), 1)
        assert _deliver(database_url, slack=slack).success
        assert len(slack.requests) == 2
        assert slack.requests[1].json()["text"] == ":bell: notification_delivery is delivering notifications again"

        push.status = 503
        recipients.reminders(recipients.mentor(), 1)
        assert not _deliver(database_url, slack=slack).success
        assert len(slack.requests) == 3  # a new incident
    kinds = db.execute(sa.text("SELECT kind FROM public.ops_alerts ORDER BY created_at")).scalars().all()
    assert kinds == [
        "notification_delivery_gave_up",
        "notification_delivery_recovered",
        "notification_delivery_gave_up",
    ]


def test_an_operator_retry_sends_what_gave_up_once_more(
    db: sa.Connection, database_url: str, recipients: Recipients, push: HttpPeer
) -> None:
    recipients.reminders(recipients.mentor(), 1)
    push.status = 500
    assert not _deliver(database_url).success  # reached no one
    assert repository.status_counts(db) == {"gave_up": 1}
    push.status = 200
    assert _deliver(database_url).success and repository.status_counts(db) == {"gave_up": 1}  # waits for a human
    assert _deliver(database_url, retry_gave_up=True).success
    assert repository.status_counts(db) == {"delivered": 1} and len(push.requests) == 2


def test_no_channel_configured_fails_the_run_and_leaves_the_notifications_waiting(
    db: sa.Connection, database_url: str, recipients: Recipients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFICATION_QUIET_HOURS", "none")
    recipients.reminders(recipients.mentor(), 2)
    result = _deliver(database_url)
    assert not result.success
    (row,) = factories.log_rows(db, "notification_delivery")
    assert row.status == "failed"
    assert "2 notification(s) are due and no delivery channel is configured" in row.error_message
    assert repository.status_counts(db) == {"pending": 2}


def test_naming_a_channel_that_is_not_configured_is_an_error(
    db: sa.Connection, database_url: str, recipients: Recipients, push: HttpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFICATION_CHANNELS", "email,push")
    recipients.reminders(recipients.mentor(), 1)
    assert not _deliver(database_url).success
    (row,) = factories.log_rows(db, "notification_delivery")
    assert "NOTIFICATION_CHANNELS names email, which is not configured" in row.error_message


def test_the_sensor_asks_for_a_run_once_notifications_are_due_and_not_while_one_runs(
    db: sa.Connection, database_url: str, recipients: Recipients, push: HttpPeer, instance: DagsterInstance
) -> None:
    idle = tick("notification_delivery_when_due", instance, database_url)
    assert idle.runs == [] and "no notification is due" in (idle.skip_message or "")

    factories.assignment(db, recipients.mentor(), assigned_on=AS_OF - dt.timedelta(days=12))
    assert run_assignment_reminders(database_url, AS_OF).success
    previewed = tick("notification_delivery_when_due", instance, database_url, launch=False)
    (request,) = previewed.result.run_requests
    assert request.tags == {"due_notifications": "1"}
    assert repository.status_counts(db) == {"pending": 1} and push.requests == []  # a preview changes nothing

    instance.create_run_for_job(job_def=_job(database_url), run_config={}, status=DagsterRunStatus.STARTED)
    busy = tick("notification_delivery_when_due", instance, database_url)
    assert busy.runs == [] and busy.skip_message == "a notification_delivery run is queued or running"


def test_the_sensor_launches_a_delivery_and_then_rests(
    db: sa.Connection, database_url: str, recipients: Recipients, push: HttpPeer, instance: DagsterInstance
) -> None:
    recipients.reminders(recipients.mentor(), 2)
    launched = tick("notification_delivery_when_due", instance, database_url)
    assert [run.success for run in launched.runs] == [True] and len(push.requests) == 1
    assert tick("notification_delivery_when_due", instance, database_url).runs == []


def test_with_no_delivery_channel_the_sensor_launches_nothing_that_must_fail(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PUSH_WEBHOOK_URL", "NOTIFY_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOTIFICATION_QUIET_HOURS", "none")
    recipients.reminders(recipients.mentor(), 2)
    waiting = tick("notification_delivery_when_due", instance, database_url)
    assert waiting.runs == [] and waiting.skip_message == (
        "2 notification(s) are due and no delivery channel is configured"
        " (PUSH_WEBHOOK_URL or NOTIFY_SMTP_HOST, docs/delivery.md): they wait"
    )
    assert repository.status_counts(db) == {"pending": 2}


def test_quiet_hours_keep_the_sensor_quiet(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    push: HttpPeer,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zoneinfo import ZoneInfo

    now = dt.datetime.now(ZoneInfo("Europe/Oslo"))
    around_now = f"{(now - dt.timedelta(hours=1)):%H:%M}-{(now + dt.timedelta(hours=1)):%H:%M}"
    monkeypatch.setenv("NOTIFICATION_QUIET_HOURS", around_now)
    recipients.reminders(recipients.mentor(), 1)
    quiet = tick("notification_delivery_when_due", instance, database_url)
    assert quiet.runs == [] and "quiet hours" in (quiet.skip_message or "")
    assert repository.status_counts(db) == {"pending": 1}

    manual = _deliver(database_url, instance)  # an operator's run during quiet hours says why it sent nothing
    assert manual.success and _finish_metadata(manual)["held_for_quiet_hours"] == 1
    assert "Attempted 0 message(s) carrying 0 notification(s)" in run_log_text(instance, manual.run_id)
    assert "; 1 held for quiet hours" in run_log_text(instance, manual.run_id)
    assert "0 notifications claimed, 0 notifications delivered" in run_log_text(instance, manual.run_id)
    assert repository.status_counts(db) == {"pending": 1}


def _job(database_url: str):
    from reminder_pipeline.definitions import build_defs

    return build_defs(database_url).resolve_job_def("notification_delivery")


def test_certification_reminders_and_pauses_reach_the_mentor_and_the_coordinator(
    db: sa.Connection, database_url: str, recipients: Recipients, push: HttpPeer
) -> None:
    expiring = recipients.mentor(full_name="Kari Nordmann")
    factories.certification(db, expiring, expires_on=AS_OF + dt.timedelta(days=7))
    expired = recipients.mentor(full_name="Per Hansen")
    factories.certification(db, expired, expires_on=AS_OF - dt.timedelta(days=1))
    config = {"ops": {"decide_certification_actions": {"config": {"as_of": AS_OF.isoformat()}}}}
    assert run_job(database_url, "certification_reminders", config).success

    assert _deliver(database_url).success
    bodies = {(r.json()["recipient_role"], r.json()["recipient_id"]): r.json() for r in push.requests}
    reminder = bodies[("mentor", str(expiring))]
    assert reminder["title"] == "Sertifiseringen din utløper snart"
    assert f"om 7 dager ({AS_OF + dt.timedelta(days=7):%d.%m.%Y})" in reminder["body"]
    assert bodies[("mentor", str(expired))]["title"] == "Du er satt på pause"
    assert bodies[("coordinator", str(recipients.coordinator))]["title"] == "Likeperson satt på pause"
    assert repository.status_counts(db) == {"delivered": 3}


@pytest.mark.parametrize("gateway_state", ["refused", "hanging"])
def test_a_run_that_reached_no_one_fails_with_what_the_gateway_did(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    monkeypatch: pytest.MonkeyPatch,
    unused_port: int,
    gateway_state: str,
) -> None:
    monkeypatch.setenv("NOTIFICATION_QUIET_HOURS", "none")
    recipients.reminders(recipients.mentor(), 1)
    with HttpPeer(delay_seconds=5) as hanging:
        url = f"http://127.0.0.1:{unused_port}" if gateway_state == "refused" else hanging.url
        monkeypatch.setenv("PUSH_WEBHOOK_URL", url)
        result = _deliver(database_url)
    assert not result.success
    (row,) = factories.log_rows(db, "notification_delivery")
    reason = "could not connect" if gateway_state == "refused" else "timed out"
    assert row.status == "failed" and row.error_message.startswith("Failure: delivered none of 1 due message(s): push:")
    assert reason in row.error_message
    (failure,) = [
        event for event in result.all_events if event.is_failure and event.step_key == "deliver_notifications"
    ]
    metadata = failure.step_failure_data.user_failure_data.metadata
    assert metadata["messages"].value == 1 and metadata["messages_delivered"].value == 0
