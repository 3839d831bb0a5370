"""Dead-man's-switch pings from real runs to a real HTTP server on 127.0.0.1 standing in for
Healthchecks.io / Cronitor / Sentry Crons: `<url>/start`, `<url>` on success, `<url>/fail` with a
sanitised reason; a monitor that is down never fails the run it watches."""

import datetime as dt

import pytest
import sqlalchemy as sa

from reminder_pipeline.core import heartbeat
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import run_assignment_reminders
from reminder_pipeline_tests.http_peers import HttpPeer

pytestmark = pytest.mark.database
AS_OF = dt.date(2026, 11, 22)
VARIABLE = "HEARTBEAT_URL_ASSIGNMENT_REMINDERS"


@pytest.fixture
def monitor(monkeypatch: pytest.MonkeyPatch) -> HttpPeer:
    with HttpPeer() as peer:
        monkeypatch.setenv(VARIABLE, f"{peer.url}/ping/0b1c-check/")
        yield peer


def _paths(peer: HttpPeer) -> list[str]:
    return [request.path for request in peer.requests]


def test_a_successful_run_pings_start_then_success_and_says_so_in_its_metadata(
    db: sa.Connection, database_url: str, monitor: HttpPeer
) -> None:
    coordinator = factories.coordinator(db)
    factories.assignment(db, factories.mentor(db, coordinator), assigned_on=dt.date(2026, 10, 1))

    result = run_assignment_reminders(database_url, AS_OF)

    assert result.success
    assert _paths(monitor) == ["/ping/0b1c-check/start", "/ping/0b1c-check"]
    finish = [
        event
        for event in result.all_node_events
        if event.step_key == "finish_guarded_run" and event.event_type_value == "STEP_OUTPUT"
    ]
    assert finish[0].event_specific_data.metadata["heartbeat"].value == heartbeat.SENT


def test_a_failed_run_pings_fail_once_with_a_reason_that_carries_no_personal_data(
    db: sa.Connection, database_url: str, monitor: HttpPeer
) -> None:
    coordinator = factories.coordinator(db)
    factories.assignment(db, factories.mentor(db, coordinator), assigned_on=dt.date(2026, 10, 1))
    db.execute(sa.text("ALTER TABLE public.notifications RENAME TO notifications_moved"))

    result = run_assignment_reminders(database_url, AS_OF)

    assert not result.success
    assert _paths(monitor) == ["/ping/0b1c-check/start", "/ping/0b1c-check/fail"]
    reason = monitor.requests[1].body.decode()
    assert "notifications" in reason and len(reason) <= heartbeat.MAX_REASON_CHARS
    assert "Mentor Test" not in reason and "example.invalid" not in reason


def test_a_monitor_that_is_down_or_slow_leaves_the_run_green_with_a_warning(
    db: sa.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch, unused_port: int
) -> None:
    monkeypatch.setenv(VARIABLE, f"http://127.0.0.1:{unused_port}/ping")
    result = run_assignment_reminders(database_url, AS_OF)
    assert result.success
    assert heartbeat.ping("assignment_reminders", "success") == "failed: could not reach the monitor (ConnectError)"

    with HttpPeer(delay_seconds=3) as slow:
        monkeypatch.setenv(VARIABLE, slow.url)
        monkeypatch.setenv("HEARTBEAT_TIMEOUT_SECONDS", "0.5")
        assert heartbeat.ping("assignment_reminders", "start") == "failed: the monitor did not answer in time"


def test_a_dry_run_pings_nothing(db: sa.Connection, database_url: str, monitor: HttpPeer) -> None:
    assert run_assignment_reminders(database_url, AS_OF, dry_run=True).success
    assert monitor.requests == []


def test_unset_is_not_configured_and_a_bad_url_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    assert heartbeat.ping("assignment_reminders", "start") == heartbeat.NOT_CONFIGURED
    monkeypatch.setenv(VARIABLE, "ftp://monitor.invalid/secret-token")
    outcome = heartbeat.ping("assignment_reminders", "start")
    assert outcome.startswith(f"failed: {VARIABLE}: must be an http") and "secret-token" not in outcome
