"""The saga's delivery half against a real HTTP server on 127.0.0.1 standing in for HLF Dynamics."""

import datetime as dt
import json
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from reminder_pipeline.certifications import dynamics_sync
from reminder_pipeline.certifications.jobs import DynamicsPortal
from reminder_pipeline.core.backoff import Backoff
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import alerting_for, run_job, terminate_once_blocked
from reminder_pipeline_tests.http_peers import HttpPeer

pytestmark = pytest.mark.database
AS_OF = dt.date(2026, 11, 22)


@pytest.fixture
def dynamics() -> Iterator[HttpPeer]:
    with HttpPeer() as peer:
        yield peer


@pytest.fixture
def paused(db: sa.Connection, database_url: str) -> dict:
    """A mentor whose certification expired, paused by the nightly job: one pending sync event."""
    coordinator_user = uuid.uuid4()
    coordinator = factories.coordinator(db, auth_user_id=coordinator_user)
    mentor = factories.mentor(db, coordinator, full_name="Ola Nordmann", email="ola@example.invalid")
    factories.certification(db, mentor, expires_on=AS_OF - dt.timedelta(days=1))
    config = {"ops": {"decide_certification_actions": {"config": {"as_of": AS_OF.isoformat()}}}}
    assert run_job(database_url, "certification_reminders", config).success
    event = db.execute(sa.text("SELECT id FROM public.dynamics_sync_events")).scalar_one()
    return {"mentor": mentor, "coordinator": coordinator, "coordinator_user": coordinator_user, "event": event}


def _sync(database_url: str, url: str, run_config: dict | None = None, **portal: object):
    portal = {"timeout_seconds": 2, **portal}
    return run_job(
        database_url,
        "dynamics_sync",
        run_config,
        dynamics=DynamicsPortal(webhook_url=url, **portal),
        alerting=alerting_for(database_url),
    )


def _event(db: sa.Connection) -> sa.Row:
    return db.execute(
        sa.text(
            "SELECT status, attempts, last_error, next_attempt_at > now() AS later, synced_at"
            " FROM public.dynamics_sync_events"
        )
    ).one()


def _open_alerts(db: sa.Connection) -> list[sa.Row]:
    return db.execute(
        sa.text("SELECT coordinator_id, mentor_id, message FROM public.coordinator_alerts WHERE resolved_at IS NULL")
    ).all()


def _make_due(db: sa.Connection) -> None:
    db.execute(sa.text("UPDATE public.dynamics_sync_events SET next_attempt_at = now() WHERE status = 'pending'"))


def test_a_200_marks_the_event_synced_with_an_idempotency_key(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    result = _sync(database_url, dynamics.url)
    assert result.success
    (request,) = dynamics.requests
    assert request.headers["Idempotency-Key"] == str(paused["event"])
    body = request.json()
    assert (body["event_id"], body["mentor_id"], body["action"]) == (
        str(paused["event"]),
        str(paused["mentor"]),
        "pause",
    )
    assert "ola" not in json.dumps(body).lower()
    event = _event(db)
    assert (event.status, event.attempts, event.last_error) == ("synced", 1, None)
    assert _open_alerts(db) == []
    assert _sync(database_url, dynamics.url).success and len(dynamics.requests) == 1  # nothing left to send


def test_a_500_then_200_opens_the_coordinator_alert_then_resolves_it(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    dynamics.statuses = [500]
    assert _sync(database_url, dynamics.url).success  # a failed delivery is not a failed run
    event = _event(db)
    assert (event.status, event.attempts, event.last_error, event.later) == (
        "pending",
        1,
        "portal answered HTTP 500",
        True,
    )
    assert _open_alerts(db) == [
        (paused["coordinator"], paused["mentor"], "Dynamics sync pending — mentor may still be visible on portal")
    ]

    assert _sync(database_url, dynamics.url).success  # not due yet: backoff
    assert len(dynamics.requests) == 1
    _make_due(db)
    assert _sync(database_url, dynamics.url).success
    assert _event(db).status == "synced"
    assert _open_alerts(db) == []
    assert factories.count(db, "coordinator_alerts", "resolved_at IS NOT NULL") == 1


def test_a_portal_that_times_out_is_a_failed_attempt(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    dynamics.delay_seconds = 5
    assert _sync(database_url, dynamics.url, timeout_seconds=1).success
    event = _event(db)
    assert (event.status, event.attempts, event.last_error) == ("pending", 1, "timed out after 1 s")
    assert len(_open_alerts(db)) == 1


def test_a_refused_connection_is_a_failed_attempt_without_the_url(
    db: sa.Connection, database_url: str, paused: dict
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook?token=s3cret"
    assert _sync(database_url, url).success
    event = _event(db)
    assert event.status == "pending" and event.attempts == 1
    assert event.last_error == "ConnectError: could not reach the portal"


def test_after_the_last_attempt_the_event_is_dead_and_operations_are_alerted_once(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    dynamics.status = 503
    with HttpPeer() as slack:
        alerting = alerting_for(database_url, slack_webhook_url=slack.url)
        portal = DynamicsPortal(webhook_url=dynamics.url, max_attempts=3, backoff_base_seconds=1)
        for _ in range(4):
            assert run_job(database_url, "dynamics_sync", dynamics=portal, alerting=alerting).success
            _make_due(db)
        event = _event(db)
        assert (event.status, event.attempts) == ("dead", 3)
        assert len(dynamics.requests) == 3
        (alert,) = slack.requests
        assert "gave up after 3 attempts" in alert.json()["text"]
        assert str(paused["event"]) in alert.json()["blocks"][1]["text"]["text"]
    assert factories.count(db, "ops_alerts", "kind = 'dynamics_sync_dead' AND subject_id = :e", e=paused["event"]) == 1


def test_a_manual_retry_of_a_dead_event_that_fails_again_alerts_again(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    dynamics.status = 503
    with HttpPeer() as slack:
        alerting = alerting_for(database_url, slack_webhook_url=slack.url)
        portal = DynamicsPortal(webhook_url=dynamics.url, max_attempts=2, backoff_base_seconds=1)
        for _ in range(2):
            run_job(database_url, "dynamics_sync", dynamics=portal, alerting=alerting)
            _make_due(db)
        assert _event(db).status == "dead" and len(slack.requests) == 1
        for retry in (1, 2):  # an admin retries; the portal is still down
            retried = {"ops": {"sync_dynamics_events": {"config": {"event_id": str(paused["event"])}}}}
            assert run_job(database_url, "dynamics_sync", retried, dynamics=portal, alerting=alerting).success
            assert _event(db).status == "dead"
            assert len(slack.requests) == 1 + retry
        assert run_job(database_url, "dynamics_sync", dynamics=portal, alerting=alerting).success
        assert len(slack.requests) == 3  # a run with nothing dying alerts nothing


def test_an_event_written_by_a_process_that_crashed_after_the_pause_is_delivered_later(
    db: sa.Connection, database_url: str, dynamics: HttpPeer
) -> None:
    coordinator = factories.coordinator(db)
    mentor = factories.mentor(db, coordinator)
    cert = factories.certification(db, mentor, expires_on=AS_OF - dt.timedelta(days=2))
    crash = (
        "import os, pandas as pd\n"
        "from reminder_pipeline.certifications import repository\n"
        "from reminder_pipeline.core.database import connect\n"
        f"pauses = pd.DataFrame({{'mentor_id': ['{mentor}'], 'coordinator_id': ['{coordinator}'],"
        f" 'cert_id': ['{cert}'], 'expired_on': ['{AS_OF - dt.timedelta(days=2)}']}})\n"
        f"with connect({database_url!r}) as c, c.begin():\n"
        "    assert repository.auto_pause(c, pauses) == (1, 1)\n"
        "os._exit(3)  # the transaction committed; the process dies before any sync\n"
    )
    assert subprocess.run([sys.executable, "-c", crash], timeout=120).returncode == 3
    assert _event(db).status == "pending"

    assert _sync(database_url, dynamics.url).success
    assert _event(db).status == "synced"
    assert dynamics.requests[0].json()["mentor_id"] == str(mentor)


def test_two_sync_workers_racing_deliver_each_event_once(
    db: sa.Connection, database_url: str, dynamics: HttpPeer
) -> None:
    coordinator = factories.coordinator(db)
    for i in range(12):
        mentor = factories.mentor(db, coordinator)
        db.execute(
            sa.text(
                "INSERT INTO public.dynamics_sync_events (mentor_id, action, payload, dedupe_key)"
                " VALUES (:m, 'pause', jsonb_build_object('mentor_id', :m), :k)"
            ),
            {"m": mentor, "k": f"test:{i}"},
        )
    dynamics.delay_seconds = 0.2  # both workers are mid-batch at the same time
    client = dynamics_sync.DynamicsClient(dynamics.url, timeout_seconds=5)
    results: list[dynamics_sync.SyncResult] = []
    start = threading.Barrier(2)

    def worker() -> None:
        database = PipelineDatabase(database_url=database_url)  # each worker its own sessions
        start.wait()
        results.append(dynamics_sync.sync_due_events(database.transaction, lambda: client, Backoff(), batch_size=4))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    keys = [request.headers["Idempotency-Key"] for request in dynamics.requests]
    assert len(keys) == len(set(keys)) == 12
    assert sum(result.synced for result in results) == 12
    assert all(result.synced > 0 for result in results)  # both really worked
    assert factories.count(db, "dynamics_sync_events", "status = 'synced'") == 12


def test_a_manual_retry_job_with_an_event_id_syncs_that_event_now(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    dynamics.statuses = [500]
    _sync(database_url, dynamics.url)
    assert _event(db).later  # backing off
    result = _sync(
        database_url, dynamics.url, {"ops": {"sync_dynamics_events": {"config": {"event_id": str(paused["event"])}}}}
    )
    assert result.success and _event(db).status == "synced"


def test_without_a_webhook_url_pending_events_fail_the_run_clearly(
    db: sa.Connection, database_url: str, paused: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DYNAMICS_WEBHOOK_URL", raising=False)
    result = run_job(database_url, "dynamics_sync", alerting=alerting_for(database_url))
    assert not result.success
    (row,) = factories.log_rows(db, "dynamics_sync")
    assert row.status == "failed" and "DYNAMICS_WEBHOOK_URL is not set" in row.error_message


def test_coordinators_read_only_their_own_mentors_alerts(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    dynamics.status = 500
    _sync(database_url, dynamics.url)
    other_user = uuid.uuid4()
    factories.coordinator(db, auth_user_id=other_user)
    for user, expected in ((paused["coordinator_user"], 1), (other_user, 0), (uuid.uuid4(), 0)):
        db.execute(sa.text("BEGIN"))
        db.execute(sa.text("SET LOCAL ROLE authenticated"))
        db.execute(
            sa.text("SELECT set_config('request.jwt.claims', :c, true)"),
            {"c": json.dumps({"sub": str(user), "app_metadata": {"role": "admin"} if expected == 0 else {}})},
        )
        assert factories.count(db, "coordinator_alerts") == expected
        db.execute(sa.text("ROLLBACK"))


def test_make_due_now_gives_a_dead_event_one_more_attempt(db: sa.Connection, database_url: str, paused: dict) -> None:
    db.execute(sa.text("UPDATE public.dynamics_sync_events SET status = 'dead', attempts = 8"))
    with connect(database_url) as connection, connection.begin():
        assert dynamics_sync.make_due_now(connection, mentor_id=paused["mentor"]) == [paused["event"]]
    assert db.execute(sa.text("SELECT status, attempts FROM public.dynamics_sync_events")).one() == ("pending", 7)


def test_an_idle_sync_needs_no_webhook(db: sa.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DYNAMICS_WEBHOOK_URL", raising=False)
    assert run_job(database_url, "dynamics_sync", alerting=alerting_for(database_url)).success
    (row,) = factories.log_rows(db, "dynamics_sync")
    assert (row.status, row.details["claimed"]) == ("success", 0)


def test_a_manual_retry_of_a_synced_event_sends_nothing_else(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    db.execute(sa.text("UPDATE public.dynamics_sync_events SET status = 'synced'"))
    other = factories.mentor(db, paused["coordinator"])
    db.execute(
        sa.text(
            "INSERT INTO public.dynamics_sync_events (mentor_id, action, payload, dedupe_key)"
            " VALUES (:m, 'pause', '{}', 'other')"
        ),
        {"m": other},
    )
    result = _sync(
        database_url, dynamics.url, {"ops": {"sync_dynamics_events": {"config": {"event_id": str(paused["event"])}}}}
    )
    assert result.success and dynamics.requests == []  # the other due event waits for its own run
    assert factories.count(db, "dynamics_sync_events", "status = 'pending'") == 1


def test_the_sync_starts_only_when_events_are_due(db: sa.Connection, database_url: str) -> None:
    """No schedule: the sensor asks for a run when, and only when, an event is due; evaluating it
    writes nothing, and the same state of due events asks once."""
    from dagster import DagsterInstance

    from reminder_pipeline_tests.dagster_helpers import tick

    with DagsterInstance.ephemeral() as instance:
        idle = tick("dynamics_sync_when_due", instance, database_url, launch=False)
        assert not idle.result.run_requests and "no Dynamics sync event is due" in (idle.skip_message or "")
        mentor = factories.mentor(db, factories.coordinator(db))
        db.execute(
            sa.text(
                "INSERT INTO public.dynamics_sync_events (mentor_id, action, payload, dedupe_key)"
                " VALUES (:m, 'pause', '{}', 'due-now')"
            ),
            {"m": mentor},
        )
        before = db.execute(sa.text("SELECT status, attempts FROM public.dynamics_sync_events")).all()
        first = tick("dynamics_sync_when_due", instance, database_url, launch=False)
        second = tick("dynamics_sync_when_due", instance, database_url, launch=False)
        (request,) = first.result.run_requests or []
        assert [r.run_key for r in second.result.run_requests or []] == [request.run_key]  # Dagster dedupes it
        assert db.execute(sa.text("SELECT status, attempts FROM public.dynamics_sync_events")).all() == before


def test_a_reactivation_reaches_the_portal_only_after_the_pause_it_ends(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    dynamics.statuses = [500]
    assert _sync(database_url, dynamics.url).success  # the pause fails once: pending, backing off
    factories.certification(db, paused["mentor"], expires_on=AS_OF + dt.timedelta(days=700))
    renewed = {
        "ops": {"decide_certification_actions": {"config": {"as_of": (AS_OF + dt.timedelta(days=1)).isoformat()}}}
    }
    assert run_job(database_url, "certification_reminders", renewed).success
    reactivate = db.execute(
        sa.text("SELECT id FROM public.dynamics_sync_events WHERE action = 'reactivate'")
    ).scalar_one()

    with connect(database_url) as connection:
        assert dynamics_sync.due_events(connection)[0] == 0  # due, but behind the pause: the sensor waits
    assert _sync(database_url, dynamics.url).success
    assert len(dynamics.requests) == 1
    _make_due(db)
    assert _sync(database_url, dynamics.url).success  # the pause first, alone
    assert _sync(database_url, dynamics.url).success  # then the reactivation
    assert [(r.json()["action"], r.headers["Idempotency-Key"]) for r in dynamics.requests] == [
        ("pause", str(paused["event"])),
        ("pause", str(paused["event"])),
        ("reactivate", str(reactivate)),
    ]
    assert factories.count(db, "dynamics_sync_events", "status = 'synced'") == 2
    assert _open_alerts(db) == []


def test_a_reactivation_that_cannot_be_synced_tells_the_coordinator_the_mentor_may_still_be_hidden(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    assert _sync(database_url, dynamics.url).success
    factories.certification(db, paused["mentor"], expires_on=AS_OF + dt.timedelta(days=700))
    renewed = {
        "ops": {"decide_certification_actions": {"config": {"as_of": (AS_OF + dt.timedelta(days=1)).isoformat()}}}
    }
    assert run_job(database_url, "certification_reminders", renewed).success
    dynamics.status = 503
    assert _sync(database_url, dynamics.url).success
    assert _open_alerts(db) == [
        (
            paused["coordinator"],
            paused["mentor"],
            "Dynamics sync pending — reactivated mentor may still be hidden on portal",
        )
    ]


def test_terminate_stops_a_sync_run_blocked_in_a_query_within_seconds(
    db: sa.Connection, database_url: str, paused: dict, dynamics: HttpPeer
) -> None:
    """The sync's queries run on the run's own sessions (`rp:<run id>`), which Terminate's watchdog
    cancels: the run fails at once, long before the lock timeout, and nothing reached the portal."""
    with DagsterInstance.ephemeral() as instance, connect(database_url) as blocker:
        blocker.execute(sa.text("BEGIN; LOCK TABLE public.dynamics_sync_events IN ACCESS EXCLUSIVE MODE"))
        portal = DynamicsPortal(webhook_url=dynamics.url)
        result, stopped_after = terminate_once_blocked(
            db, instance, lambda: run_job(database_url, "dynamics_sync", dynamics=portal, instance=instance)
        )
        blocker.execute(sa.text("ROLLBACK"))
    print(f"measured: a sync run blocked in a query stopped {stopped_after:.1f} s after Terminate")
    assert not result.success and stopped_after < 30
    (row,) = factories.log_rows(db, "dynamics_sync")
    assert row.status == "failed" and "QueryCanceled" in row.error_message
    assert dynamics.requests == [] and _event(db).status == "pending"
