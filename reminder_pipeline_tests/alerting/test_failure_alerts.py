"""Consecutive-failure alerts and recovery, from real failed runs (a database fault, not a mock) in
a real Dagster instance, decided by the `ops_run_failures` sensor over Dagster's run storage and
delivered by the `ops_alert_delivery` job to a real HTTP server on 127.0.0.1 standing in for Slack."""

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from reminder_pipeline.alerting import sensors, store
from reminder_pipeline.alerting.resources import OpsAlerting
from reminder_pipeline.alerting.secrets import slack_webhook_url
from reminder_pipeline.alerting.service import NO_ALERT_CHANNEL, NO_LOG_ROW_MESSAGE
from reminder_pipeline.alerting.store import undelivered_alerts
from reminder_pipeline.core.alerts import CONSECUTIVE_FAILURES, RECOVERED, Alert
from reminder_pipeline.core.backoff import Backoff
from reminder_pipeline.core.database import connect
from reminder_pipeline.definitions import build_defs
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import (
    Tick,
    alerting_for,
    run_assignment_reminders,
    run_job,
    run_log_text,
    tick,
)
from reminder_pipeline_tests.http_peers import HttpPeer

pytestmark = pytest.mark.database
AS_OF = dt.date(2026, 11, 22)
SENSOR = "ops_run_failures"


@pytest.fixture
def overdue(db: sa.Connection) -> None:
    coordinator = factories.coordinator(db)
    factories.assignment(db, factories.mentor(db, coordinator), assigned_on=dt.date(2026, 10, 1))


def _break(db: sa.Connection) -> None:
    db.execute(sa.text("ALTER TABLE public.notifications RENAME TO notifications_moved"))


def _repair(db: sa.Connection) -> None:
    db.execute(sa.text("ALTER TABLE public.notifications_moved RENAME TO notifications"))


def _fail_twice_and_tick(
    db: sa.Connection, database_url: str, alerting: OpsAlerting, instance: DagsterInstance
) -> Tick:
    """Two failed runs of the job (a moved table), then one tick of the failure sensor: one alert."""
    _break(db)
    for _ in range(2):
        run_assignment_reminders(database_url, AS_OF, alerting, instance)
    return tick(SENSOR, instance, database_url, alerting)


def _alert_rows(db: sa.Connection) -> list[sa.Row]:
    return db.execute(
        sa.text(
            "SELECT kind, execution_log_id, dagster_run_id, payload, delivered_at, delivery_attempts,"
            " delivery_error, incident_key, next_attempt_at FROM public.ops_alerts ORDER BY created_at"
        )
    ).all()


def _headlines(slack: HttpPeer) -> list[str]:
    return [request.json()["text"].split(" ", 1)[1] for request in slack.requests]


def test_two_failed_runs_send_exactly_one_alert_with_the_specified_payload(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, instance: DagsterInstance
) -> None:
    alerting = alerting_for(database_url, slack_webhook_url=slack.url, webserver_base_url="http://127.0.0.1:3000")
    _break(db)
    first = run_assignment_reminders(database_url, AS_OF, alerting, instance)
    tick(SENSOR, instance, database_url, alerting)
    assert slack.requests == []
    second = run_assignment_reminders(database_url, AS_OF, alerting, instance)
    delivery = tick(SENSOR, instance, database_url, alerting)
    third = run_assignment_reminders(database_url, AS_OF, alerting, instance)
    again = tick(SENSOR, instance, database_url, alerting)

    assert not (first.success or second.success or third.success)
    assert [run.success for run in delivery.runs] == [True] and again.runs == []
    assert len(slack.requests) == 1
    message = slack.requests[0].json()
    assert [block["type"] for block in message["blocks"]] == ["header", "section", "context"]
    assert message["blocks"][0]["text"]["text"].endswith("assignment_reminders failed 2 times in a row")
    assert "does not exist" in message["blocks"][1]["text"]["text"]
    assert f"<http://127.0.0.1:3000/runs/{second.run_id}|{second.run_id}>" in message["blocks"][1]["text"]["text"]
    assert message["blocks"][2]["elements"][0]["text"] == "Last successful run: never"

    (alert,) = _alert_rows(db)
    second_row = factories.log_rows(db)[1]
    assert (alert.kind, alert.execution_log_id, alert.dagster_run_id, alert.incident_key) == (
        "consecutive_failures",
        second_row.id,
        second.run_id,
        f"run:{first.run_id}",
    )
    assert alert.payload["error_message"] == second_row.error_message
    assert alert.payload["consecutive_failure_count"] == 2
    assert alert.payload["last_success_at"] is None
    assert alert.delivered_at is not None and alert.delivery_error is None
    assert slack.url not in str(alert.payload)


def test_fail_fail_success_resets_the_count_and_sends_one_recovery_message(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, instance: DagsterInstance
) -> None:
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    assert run_assignment_reminders(database_url, AS_OF - dt.timedelta(days=1), alerting, instance).success
    _break(db)
    run_assignment_reminders(database_url, AS_OF, alerting, instance)
    run_assignment_reminders(database_url, AS_OF, alerting, instance)
    tick(SENSOR, instance, database_url, alerting)
    _repair(db)
    assert run_assignment_reminders(database_url, AS_OF, alerting, instance).success
    tick(SENSOR, instance, database_url, alerting)
    assert run_assignment_reminders(database_url, AS_OF, alerting, instance).success
    tick(SENSOR, instance, database_url, alerting)

    assert [row.consecutive_failure_count for row in factories.log_rows(db)] == [0, 1, 2, 0, 0]
    assert _headlines(slack) == [
        "assignment_reminders failed 2 times in a row",
        "assignment_reminders recovered after 2 consecutive failures",
    ]
    assert "Last successful run: 20" in slack.requests[0].json()["blocks"][2]["elements"][0]["text"]
    assert [row.kind for row in _alert_rows(db)] == ["consecutive_failures", "recovered"]


def test_a_recovery_is_announced_only_for_an_announced_incident(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, instance: DagsterInstance
) -> None:
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    _break(db)
    run_assignment_reminders(database_url, AS_OF, alerting, instance)
    tick(SENSOR, instance, database_url, alerting)
    _repair(db)
    assert run_assignment_reminders(database_url, AS_OF, alerting, instance).success
    tick(SENSOR, instance, database_url, alerting)
    assert slack.requests == []


def test_runs_that_never_reached_the_database_count_and_alert_once(
    db: sa.Connection, database_url: str, slack: HttpPeer, instance: DagsterInstance, unused_port: int
) -> None:
    """The application database down: runs fail before any log row exists. Dagster's run storage
    still sees them; the alert goes out through the webhook without the database, then is recorded
    neither twice nor never: the next tick asks for nothing."""
    down = f"postgresql://postgres@127.0.0.1:{unused_port}/gone"
    alerting = alerting_for(down, slack_webhook_url=slack.url)
    results = [run_assignment_reminders(down, AS_OF, alerting, instance) for _ in range(3)]
    assert not any(result.success for result in results)
    delivery = tick(SENSOR, instance, down, alerting)
    again = tick(SENSOR, instance, down, alerting)

    assert [run.success for run in delivery.runs] == [True] and again.runs == []
    assert _headlines(slack) == ["assignment_reminders failed 2 times in a row"]
    assert NO_LOG_ROW_MESSAGE in slack.requests[0].json()["blocks"][1]["text"]["text"]
    assert "not recorded" in run_log_text(instance, delivery.runs[0].run_id)
    assert factories.log_rows(db) == []


def test_the_log_row_and_the_alert_count_the_same_streak(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, instance: DagsterInstance, unused_port: int
) -> None:
    """One failure count: a run that failed before it could write a log row (database down) still
    counts in the next failed run's `consecutive_failure_count`, as it does in the alert."""
    down = f"postgresql://postgres@127.0.0.1:{unused_port}/gone"
    assert not run_assignment_reminders(down, AS_OF, alerting_for(down), instance).success
    _break(db)
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    assert not run_assignment_reminders(database_url, AS_OF, alerting, instance).success
    tick(SENSOR, instance, database_url, alerting)

    (row,) = factories.log_rows(db)
    (alert,) = _alert_rows(db)
    assert row.consecutive_failure_count == alert.payload["consecutive_failure_count"] == 2
    assert alert.execution_log_id == row.id


def test_a_delivery_that_could_neither_record_nor_send_fails_and_is_asked_for_again(
    database_url: str, slack: HttpPeer, instance: DagsterInstance, unused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Database and Slack both down: the delivery run fails (visible in Dagster), and the sensor asks
    again after its backoff (shortened here to one second) until a delivery gets through."""
    down = f"postgresql://postgres@127.0.0.1:{unused_port}/gone"
    slack.status = 503
    alerting = alerting_for(down, slack_webhook_url=slack.url)
    for _ in range(2):
        run_assignment_reminders(down, AS_OF, alerting, instance)
    failed = tick(SENSOR, instance, down, alerting)
    assert [run.success for run in failed.runs] == [False]
    assert tick(SENSOR, instance, down, alerting).runs == []  # backing off (one minute after the first failure)

    monkeypatch.setattr(sensors, "RETRY_BACKOFF", Backoff(base_seconds=1, cap_seconds=1800))
    time.sleep(1.2)
    slack.status = 200
    retried = tick(SENSOR, instance, down, alerting)
    assert [run.success for run in retried.runs] == [True]
    assert tick(SENSOR, instance, down, alerting).runs == []
    assert _headlines(slack)[-1] == "assignment_reminders failed 2 times in a row"


def test_a_slack_that_hangs_costs_the_delivery_run_at_most_the_timeout_and_never_the_job(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, instance: DagsterInstance
) -> None:
    slack.delay_seconds = 30
    alerting = alerting_for(database_url, slack_webhook_url=slack.url, timeout_seconds=2)
    _break(db)
    run_assignment_reminders(database_url, AS_OF, alerting, instance)
    started = time.monotonic()
    result = run_assignment_reminders(database_url, AS_OF, alerting, instance)
    job_seconds = time.monotonic() - started
    started = time.monotonic()
    sensor_tick = tick(SENSOR, instance, database_url, alerting, launch=False)
    tick_seconds = time.monotonic() - started
    delivery = tick(SENSOR, instance, database_url, alerting)

    print(f"measured: job {job_seconds:.1f} s, sensor tick {tick_seconds:.2f} s with Slack hanging for 30 s")
    assert not result.success and job_seconds < 10  # the job never waits for Slack
    assert tick_seconds < 5  # evaluating the sensor sends nothing, so it cannot hang on Slack
    assert sensor_tick.result.run_requests
    # Green means delivered: the alert reached no one, so the delivery run is red, and says why.
    assert [run.success for run in delivery.runs] == [False]
    assert "1 of 1 alert(s) not delivered" in _failure(instance, delivery.runs[0].run_id)
    (alert,) = _alert_rows(db)
    assert alert.delivered_at is None and "timed out" in alert.delivery_error.lower()
    assert slack.url not in alert.delivery_error
    assert slack.url not in run_log_text(instance, delivery.runs[0].run_id)


def test_an_undelivered_alert_is_retried_with_backoff_until_delivered(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, instance: DagsterInstance
) -> None:
    slack.status = 500
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    _fail_twice_and_tick(db, database_url, alerting, instance)
    (alert,) = _alert_rows(db)
    assert (alert.delivered_at, alert.delivery_attempts, alert.delivery_error) == (
        None,
        1,
        "slack webhook answered HTTP 500",
    )
    assert tick("ops_alert_redelivery", instance, database_url, alerting).runs == []  # next attempt in a minute

    for attempt in range(2, 9):  # Slack stays down for hours: attempts go on, the backoff is capped
        db.execute(sa.text("UPDATE public.ops_alerts SET next_attempt_at = now() - interval '1 second'"))
        tick("ops_alert_redelivery", instance, database_url, alerting)
        (alert,) = _alert_rows(db)
        assert alert.delivery_attempts == attempt and alert.delivered_at is None
    waits = db.execute(sa.text("SELECT next_attempt_at - now() FROM public.ops_alerts")).scalar()
    assert dt.timedelta(minutes=29) < waits <= dt.timedelta(minutes=30)

    slack.status = 200
    db.execute(sa.text("UPDATE public.ops_alerts SET next_attempt_at = now() - interval '1 second'"))
    tick("ops_alert_redelivery", instance, database_url, alerting)
    assert _alert_rows(db)[0].delivered_at is not None
    assert tick("ops_alert_redelivery", instance, database_url, alerting).runs == []


def test_an_alert_undelivered_for_a_day_is_marked_expired_not_dropped(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, instance: DagsterInstance
) -> None:
    slack.status = 500
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    _fail_twice_and_tick(db, database_url, alerting, instance)
    db.execute(sa.text("UPDATE public.ops_alerts SET created_at = now() - interval '25 hours'"))
    tick("ops_alert_redelivery", instance, database_url, alerting)
    expired = db.execute(sa.text("SELECT expired_at, delivered_at FROM public.ops_alerts")).one()
    assert expired.expired_at is not None and expired.delivered_at is None


def test_the_webhook_url_comes_from_supabase_vault_when_there_is_one(
    db: sa.Connection,
    database_url: str,
    overdue: None,
    slack: HttpPeer,
    monkeypatch: pytest.MonkeyPatch,
    instance: DagsterInstance,
    tmp_path: object,
) -> None:
    monkeypatch.setenv("REMINDER_PIPELINE_HOME", str(tmp_path))
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
        delivery = _fail_twice_and_tick(db, database_url, alerting, instance)
        assert len(slack.requests) == 1 and wrong_slack.requests == []
    logs = run_log_text(instance, delivery.runs[0].run_id)
    assert "consecutive_failures alert" in logs and "delivered" in logs
    assert slack.url not in logs and "127.0.0.1:1/" not in logs


def test_with_the_database_down_the_last_webhook_read_from_vault_is_used(
    db: sa.Connection,
    database_url: str,
    slack: HttpPeer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
    unused_port: int,
) -> None:
    monkeypatch.setenv("REMINDER_PIPELINE_HOME", str(tmp_path))
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    db.execute(sa.text("CREATE SCHEMA vault"))
    db.execute(
        sa.text(
            "CREATE VIEW vault.decrypted_secrets AS SELECT 'slack_alert_webhook_url'::text AS name,"
            " CAST(:url AS text) AS decrypted_secret"
        ).bindparams(url=slack.url)
    )
    assert slack_webhook_url(db) == slack.url  # read from Vault while it is up, and remembered
    assert slack_webhook_url(None) == slack.url  # database down: the remembered value
    cache = next(Path(str(tmp_path)).glob("slack-webhook*"))
    assert oct(cache.stat().st_mode & 0o777) == "0o600"


def test_no_channel_configured_is_recorded_waits_unretried_and_goes_out_once_one_is(
    db: sa.Connection,
    database_url: str,
    overdue: None,
    instance: DagsterInstance,
    slack: HttpPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No channel: the alert is recorded, its delivery run is red (nobody was told), and it is not
    retried attempt after attempt: it waits, and the redelivery sensor says why on its tick. Once a
    channel is configured, it goes out."""
    alerting = alerting_for(database_url)
    delivery = _fail_twice_and_tick(db, database_url, alerting, instance)
    assert [run.success for run in delivery.runs] == [False]
    assert "no alert channel configured" in _failure(instance, delivery.runs[0].run_id)
    (alert,) = _alert_rows(db)
    assert (alert.delivered_at, alert.delivery_attempts, alert.next_attempt_at) == (None, 0, None)
    assert alert.delivery_error == NO_ALERT_CHANNEL

    monkeypatch.setattr(sensors, "RETRY_BACKOFF", Backoff(base_seconds=0.001, cap_seconds=0.001))
    assert tick(SENSOR, instance, database_url, alerting).runs == []  # recorded: not asked for again
    waiting = tick("ops_alert_redelivery", instance, database_url, alerting)
    assert waiting.runs == [] and waiting.result.skip_reason is not None
    assert waiting.result.skip_reason.skip_message == f"1 alert(s) wait: {NO_ALERT_CHANNEL}"

    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)  # the operator configures a channel
    sent = tick("ops_alert_redelivery", instance, database_url, alerting)
    assert [run.success for run in sent.runs] == [True]
    assert _headlines(slack) == ["assignment_reminders failed 2 times in a row"]
    assert _alert_rows(db)[0].delivered_at is not None


@pytest.mark.parametrize("slack_fault", ["refused", "500"])
def test_an_alert_delivery_run_that_reached_no_one_fails(
    db: sa.Connection,
    database_url: str,
    overdue: None,
    instance: DagsterInstance,
    slack: HttpPeer,
    unused_port: int,
    slack_fault: str,
) -> None:
    """The rule (docs/alerting.md): an `ops_alert_delivery` run fails when an alert it attempted
    reached no channel. A refused port and a 500ing Slack here; a hanging one above."""
    url = f"http://127.0.0.1:{unused_port}/hook" if slack_fault == "refused" else slack.url
    slack.status = 500
    alerting = alerting_for(database_url, slack_webhook_url=url)
    delivery = _fail_twice_and_tick(db, database_url, alerting, instance)
    assert [run.success for run in delivery.runs] == [False]
    failure = _failure(instance, delivery.runs[0].run_id)
    expected = "Connection refused" if slack_fault == "refused" else "answered HTTP 500"
    assert "1 of 1 alert(s) not delivered" in failure and expected in failure and url not in failure
    (alert,) = _alert_rows(db)
    assert (alert.delivered_at, alert.delivery_attempts) == (None, 1)


def test_a_recovery_resolves_the_failure_alert_that_was_never_sent(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, instance: DagsterInstance
) -> None:
    """Slack down while the job failed, back when it recovered: on-call gets the recovery (which says
    how many runs failed), the never-sent failure alert is resolved, not retried, and `logs` no longer
    lists it as undelivered."""
    slack.status = 500
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    _fail_twice_and_tick(db, database_url, alerting, instance)
    _repair(db)
    slack.status = 200
    assert run_assignment_reminders(database_url, AS_OF, alerting, instance).success
    recovery = tick(SENSOR, instance, database_url, alerting)

    assert [run.success for run in recovery.runs] == [True]
    assert _headlines(slack) == [  # the attempt Slack answered 500, then the recovery only
        "assignment_reminders failed 2 times in a row",
        "assignment_reminders recovered after 2 consecutive failures",
    ]
    rows = {row.kind: row for row in _resolution_rows(db)}
    assert rows["consecutive_failures"].resolved_at is not None
    assert rows["consecutive_failures"].delivered_at is None and rows["consecutive_failures"].next_attempt_at is None
    assert rows["recovered"].delivered_at is not None and rows["recovered"].resolved_at is None
    db.execute(sa.text("UPDATE public.ops_alerts SET created_at = now() - interval '25 hours'"))
    assert tick("ops_alert_redelivery", instance, database_url, alerting).runs == []  # nothing due, nothing expires
    assert undelivered_alerts(db) == []


@pytest.mark.parametrize("channel", ["slack", "none"])
def test_an_unsent_long_running_alert_is_resolved_when_the_run_ends(
    db: sa.Connection, database_url: str, slack: HttpPeer, instance: DagsterInstance, channel: str
) -> None:
    """Slack down, or no channel at all (then the redelivery run only resolves: nothing to try)."""
    slack.status = 503
    alerting = alerting_for(database_url, slack_webhook_url=slack.url if channel == "slack" else None)
    log_id = db.execute(
        sa.text(
            "INSERT INTO public.cron_execution_logs (job_name, status, started_at, dagster_run_id)"
            " VALUES ('assignment_reminders', 'running', now() - interval '45 minutes', 'run-long') RETURNING id"
        )
    ).scalar_one()
    assert [run.success for run in tick("ops_long_running_runs", instance, database_url, alerting).runs] == [False]
    db.execute(
        sa.text("UPDATE public.cron_execution_logs SET status = 'success', completed_at = now() WHERE id = :id"),
        {"id": log_id},
    )
    db.execute(sa.text("UPDATE public.ops_alerts SET next_attempt_at = now()"))  # the backoff has passed
    slack.status = 200
    cleanup = tick("ops_alert_redelivery", instance, database_url, alerting)
    assert [run.success for run in cleanup.runs] == [True]
    assert "resolved unsent: its long run ended first" in run_log_text(instance, cleanup.runs[0].run_id)
    (row,) = _resolution_rows(db)
    assert row.resolved_at is not None and row.delivered_at is None
    # the failed attempt only (none without a channel): the run is over, nothing to say
    assert len(slack.requests) == (1 if channel == "slack" else 0)
    assert tick("ops_alert_redelivery", instance, database_url, alerting).runs == []


def test_a_send_that_succeeds_after_a_recovery_resolved_its_alert_counts_as_sent(db: sa.Connection) -> None:
    """The race of a first send and a concurrent recovery: the row ends delivered, not resolved."""
    failing = Alert(CONSECUTIVE_FAILURES, "assignment_reminders", None, "run-1", {}, incident="run:run-1")
    alert_id = store.record(db, failing)
    assert alert_id is not None
    store.record(db, Alert(RECOVERED, "assignment_reminders", None, "run-3", {}, incident="run:run-1"))
    assert store.resolve_closed(db, Alert(RECOVERED, "assignment_reminders", None, "run-3", {}, incident="run:run-1"))
    store.mark_delivery(db, alert_id, delivered=True, error=None)
    row = db.execute(
        sa.text("SELECT delivered_at, resolved_at FROM public.ops_alerts WHERE id = :id"), {"id": alert_id}
    )
    delivered_at, resolved_at = row.one()
    assert delivered_at is not None and resolved_at is None


def _resolution_rows(db: sa.Connection) -> list[sa.Row]:
    return db.execute(
        sa.text("SELECT kind, delivered_at, resolved_at, next_attempt_at FROM public.ops_alerts ORDER BY created_at")
    ).all()


def _failure(instance: DagsterInstance, run_id: str) -> str:
    """The run's failure as Dagster shows it: the failed step's error message."""
    failures = [
        entry.dagster_event.step_failure_data.error.message
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is not None and entry.dagster_event.is_step_failure
    ]
    return "\n".join(failures)


def test_a_second_delivery_of_the_same_incident_sends_nothing(
    db: sa.Connection, database_url: str, overdue: None, slack: HttpPeer, instance: DagsterInstance
) -> None:
    """Two daemons, or a UI re-execution of the delivery run: the database's unique key holds."""
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    _break(db)
    for _ in range(2):
        run_assignment_reminders(database_url, AS_OF, alerting, instance)
    preview = tick(SENSOR, instance, database_url, alerting, launch=False)
    (request,) = preview.result.run_requests or []
    job = build_defs(database_url, alerting).resolve_job_def(request.job_name)
    first = job.execute_in_process(run_config=request.run_config, instance=instance)
    second = job.execute_in_process(run_config=request.run_config, instance=instance)
    assert first.success and second.success
    assert len(slack.requests) == 1 and len(_alert_rows(db)) == 1


def test_an_alert_delivery_run_queries_on_sessions_named_after_the_run(
    db: sa.Connection, database_url: str, slack: HttpPeer, instance: DagsterInstance
) -> None:
    """Like the jobs' own, the alert service's sessions in a run are named `rp:<run id>` (an operator
    finds them in pg_stat_activity) and carry the job timeouts."""
    alerting = alerting_for(database_url, slack_webhook_url=slack.url)
    config = {"ops": {"deliver_alerts": {"config": {"redeliver": True}}}}
    with ThreadPoolExecutor(1) as pool, connect(database_url) as blocker:
        blocker.execute(sa.text("BEGIN; LOCK TABLE public.ops_alerts IN ACCESS EXCLUSIVE MODE"))
        running = pool.submit(run_job, database_url, "ops_alert_delivery", config, alerting=alerting, instance=instance)
        deadline = time.monotonic() + 60
        while not (waiting := _lock_waiters(db)):
            assert time.monotonic() < deadline and not running.done(), "the run never queried ops_alerts"
            time.sleep(0.1)
        blocker.execute(sa.text("ROLLBACK"))
        result = running.result(timeout=60)
    assert result.success
    assert waiting == [f"rp:{result.run_id}"]


def _lock_waiters(db: sa.Connection) -> list[str]:
    return list(
        db.execute(
            sa.text(
                "SELECT application_name FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalars()
    )
