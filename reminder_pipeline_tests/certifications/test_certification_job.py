"""The nightly certification job against a real database: reminders once, auto-pause once."""

import datetime as dt
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
import pytest
import sqlalchemy as sa

from reminder_pipeline.certifications import repository, rules
from reminder_pipeline.core.database import connect
from reminder_pipeline.delivery import repository as delivery_repository
from reminder_pipeline.delivery.repository import Window
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import run_assignment_reminders, run_in_subprocess, run_job
from reminder_pipeline_tests.pg_tools import race_two_writers

pytestmark = pytest.mark.database
AS_OF = dt.date(2026, 11, 22)
JOB = "certification_reminders"


def _run(database_url: str, as_of: dt.date = AS_OF):
    return run_job(
        database_url,
        JOB,
        {"ops": {"decide_certification_actions": {"config": {"as_of": as_of.isoformat(), "allow_any_date": True}}}},
    )


@pytest.fixture
def people(db: sa.Connection) -> dict:
    coordinator = factories.coordinator(db)
    return {"coordinator": coordinator, "mentor": factories.mentor(db, coordinator)}


def test_a_certification_30_days_from_expiry_gets_one_reminder_once(
    db: sa.Connection, database_url: str, people: dict
) -> None:
    cert = factories.certification(db, people["mentor"], expires_on=AS_OF + dt.timedelta(days=30))
    assert _run(database_url).success
    assert _run(database_url).success
    assert _run(database_url, AS_OF + dt.timedelta(days=3)).success  # 27 days: same bracket

    (logged,) = db.execute(sa.text("SELECT mentor_id, cert_id, threshold_days FROM public.cert_notification_log")).all()
    assert logged == (people["mentor"], cert, 30)
    (note,) = db.execute(sa.text("SELECT kind, recipient_id, payload FROM public.notifications")).all()
    assert (note.kind, note.recipient_id, note.payload["threshold_days"]) == (
        "certification_expiry_reminder",
        people["mentor"],
        30,
    )
    rows = factories.log_rows(db, JOB)
    assert [(r.status, r.reminders_dispatched) for r in rows] == [("success", 1), ("success", 0), ("success", 0)]
    assert rows[0].details["reminders_sent"] == 1 and rows[0].details["mentors_paused"] == 0


def test_an_expired_certification_pauses_the_mentor_in_one_transaction_once(
    db: sa.Connection, database_url: str, people: dict
) -> None:
    cert = factories.certification(db, people["mentor"], expires_on=AS_OF)  # expired today
    assignment = factories.assignment(db, people["mentor"], assigned_on=AS_OF - dt.timedelta(days=60))
    assert _run(database_url).success
    assert _run(database_url).success

    assert db.execute(sa.text("SELECT status FROM public.peer_mentors WHERE id = :mentor"), people).scalar() == "paused"
    (history,) = db.execute(sa.text("SELECT reason, paused_by, cert_id FROM public.mentor_pause_history")).all()
    assert history == ("certification_expired", "system:certification_reminders", cert)
    (event,) = db.execute(sa.text("SELECT mentor_id, action, status, payload FROM public.dynamics_sync_events")).all()
    assert (event.mentor_id, event.action, event.status) == (people["mentor"], "pause", "pending")
    assert set(event.payload) == {"mentor_id", "action", "reason", "cert_id", "expired_on"}  # ids only
    recipients = db.execute(
        sa.text("SELECT recipient_role, recipient_id FROM public.notifications WHERE kind = 'mentor_auto_paused'")
    ).all()
    assert sorted(recipients) == sorted([("coordinator", people["coordinator"]), ("mentor", people["mentor"])])
    assert [r.details["mentors_paused"] for r in factories.log_rows(db, JOB)] == [1, 0]

    # A paused mentor gets no assignment follow-up reminders.
    assert run_assignment_reminders(database_url, AS_OF).success
    assert factories.count(db, "notifications", "assignment_id = :a", a=assignment) == 0


def test_a_certification_that_expired_during_downtime_pauses_without_a_late_reminder(
    db: sa.Connection, database_url: str, people: dict
) -> None:
    factories.certification(db, people["mentor"], expires_on=AS_OF - dt.timedelta(days=9))
    assert _run(database_url).success
    assert factories.count(db, "cert_notification_log") == 0
    assert factories.count(db, "peer_mentors", "status = 'paused'") == 1


def test_renewed_before_expiry_means_no_reminder_and_no_pause(
    db: sa.Connection, database_url: str, people: dict
) -> None:
    factories.certification(db, people["mentor"], expires_on=AS_OF + dt.timedelta(days=1))
    factories.certification(db, people["mentor"], expires_on=AS_OF + dt.timedelta(days=700))
    assert _run(database_url).success
    assert _run(database_url, AS_OF + dt.timedelta(days=2)).success
    assert factories.count(db, "notifications") == 0
    assert factories.count(db, "peer_mentors", "status = 'active'") == 1


def test_two_concurrent_writers_of_the_same_reminders_send_each_once(
    db: sa.Connection, database_url: str, people: dict
) -> None:
    """Two real connections: the unique key on cert_notification_log decides who sends."""
    certs = [
        factories.certification(
            db, people["mentor"], expires_on=AS_OF + dt.timedelta(days=7), certification_type=f"type-{i}"
        )
        for i in range(50)
    ]
    reminders = pd.DataFrame(
        {
            "cert_id": [str(c) for c in certs],
            "mentor_id": str(people["mentor"]),
            "threshold_days": 7,
            "days_left": 7,
            "expires_on": (AS_OF + dt.timedelta(days=7)).isoformat(),
        }
    )
    sent = race_two_writers(
        database_url, lambda connection: repository.record_and_dispatch_reminders(connection, reminders)
    )
    assert sent == {"first": 50, "second": 0}
    assert factories.count(db, "notifications") == 50


def test_two_racing_nightly_runs_send_no_duplicate(db: sa.Connection, database_url: str, people: dict) -> None:
    for i in range(20):
        mentor = factories.mentor(db, people["coordinator"])
        factories.certification(db, mentor, expires_on=AS_OF + dt.timedelta(days=1 + i % 30))
    with connect(database_url) as blocker:
        transaction = blocker.begin()
        blocker.execute(sa.text("LOCK TABLE public.cert_notification_log IN EXCLUSIVE MODE"))
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = [pool.submit(run_in_subprocess, database_url, AS_OF.isoformat(), JOB) for _ in range(2)]
            deadline = time.monotonic() + 120
            while (
                time.monotonic() < deadline
                and not any(row.status == "skipped" for row in factories.log_rows(db, JOB))
                and not all(r.done() for r in runs)
            ):
                time.sleep(0.2)
            transaction.commit()
            assert [run.result(timeout=120) for run in runs] == [True, True]
    assert sorted(row.status for row in factories.log_rows(db, JOB)) == ["skipped", "success"]
    assert factories.count(db, "notifications") == 20 == factories.count(db, "cert_notification_log")


def test_unknown_mentor_ids_are_not_invented(db: sa.Connection, database_url: str) -> None:
    pauses = pd.DataFrame(
        {
            "mentor_id": [str(uuid.uuid4())],
            "coordinator_id": [str(uuid.uuid4())],
            "cert_id": [str(uuid.uuid4())],
            "expired_on": [AS_OF.isoformat()],
        }
    )
    with connect(database_url) as connection, connection.begin():
        assert repository.auto_pause(connection, pauses) == (0, 0)


def _pause_history(db: sa.Connection) -> list[sa.Row]:
    return db.execute(
        sa.text(
            "SELECT reason, paused_by, resumed_by, resumed_cert_id, resumed_at >= paused_at AS closed"
            " FROM public.mentor_pause_history ORDER BY paused_at"
        )
    ).all()


def _status(db: sa.Connection, mentor: uuid.UUID) -> str:
    return db.execute(sa.text("SELECT status FROM public.peer_mentors WHERE id = :m"), {"m": mentor}).scalar_one()


def test_a_certification_renewed_after_the_auto_pause_reactivates_the_mentor_once(
    db: sa.Connection, database_url: str, people: dict
) -> None:
    expired = factories.certification(db, people["mentor"], expires_on=AS_OF - dt.timedelta(days=3))
    assert _run(database_url).success
    assert _status(db, people["mentor"]) == "paused"
    # A renewal of another type does not end a pause for an expired basic certification.
    factories.certification(db, people["mentor"], expires_on=AS_OF + dt.timedelta(days=700), certification_type="y")
    assert _run(database_url, AS_OF + dt.timedelta(days=1)).success
    assert _status(db, people["mentor"]) == "paused"

    renewal = factories.certification(db, people["mentor"], expires_on=AS_OF + dt.timedelta(days=700))
    assert _run(database_url, AS_OF + dt.timedelta(days=2)).success
    assert _run(database_url, AS_OF + dt.timedelta(days=2)).success

    assert _status(db, people["mentor"]) == "active"
    (history,) = _pause_history(db)
    assert history == (
        "certification_expired",
        "system:certification_reminders",
        "system:certification_reminders",
        renewal,
        True,
    )
    events = db.execute(
        sa.text("SELECT action, status, payload, dedupe_key FROM public.dynamics_sync_events ORDER BY created_at")
    ).all()
    assert [(e.action, e.status) for e in events] == [("pause", "pending"), ("reactivate", "pending")]
    assert events[1].payload == {
        "mentor_id": str(people["mentor"]),
        "action": "reactivate",
        "reason": "certification_renewed",
        "cert_id": str(renewal),
        "valid_until": (AS_OF + dt.timedelta(days=700)).isoformat(),
    }
    assert events[0].payload["cert_id"] == str(expired)
    recipients = db.execute(
        sa.text("SELECT recipient_role, recipient_id FROM public.notifications WHERE kind = 'mentor_reactivated'")
    ).all()
    assert sorted(recipients) == sorted([("coordinator", people["coordinator"]), ("mentor", people["mentor"])])
    rows = factories.log_rows(db, JOB)
    assert [r.details["mentors_reactivated"] for r in rows] == [0, 0, 1, 0]
    assert [r.details["dynamics_events_queued"] for r in rows] == [1, 0, 1, 0]

    # Active again: when the renewal expires in its turn, the mentor is paused again (a new pause).
    assert _run(database_url, AS_OF + dt.timedelta(days=700)).success
    assert _status(db, people["mentor"]) == "paused"
    assert [row.resumed_by for row in _pause_history(db)] == ["system:certification_reminders", None]


def test_a_mentor_paused_by_a_coordinator_is_never_reactivated_by_a_renewal(
    db: sa.Connection, database_url: str, people: dict
) -> None:
    other = factories.mentor(db, people["coordinator"])
    for mentor in (people["mentor"], other):
        factories.certification(db, mentor, expires_on=AS_OF - dt.timedelta(days=1))
    assert _run(database_url).success
    # The coordinator also pauses the first mentor, for another reason, while auto-paused.
    db.execute(
        sa.text(
            "INSERT INTO public.mentor_pause_history (mentor_id, reason, paused_by)"
            " VALUES (:m, 'coordinator: follow-up review', 'coordinator:' || :c)"
        ),
        {"m": people["mentor"], "c": people["coordinator"]},
    )
    # The second mentor is reactivated by hand, then paused by hand with no history row at all.
    db.execute(sa.text("UPDATE public.peer_mentors SET status = 'active' WHERE id = :m"), {"m": other})
    db.execute(sa.text("UPDATE public.peer_mentors SET status = 'paused' WHERE id = :m"), {"m": other})
    closed_by_hand = db.execute(
        sa.text("SELECT resumed_by FROM public.mentor_pause_history WHERE mentor_id = :m"), {"m": other}
    ).scalar_one()
    assert closed_by_hand.startswith("database:")  # the trigger closed the automatic pause

    for mentor in (people["mentor"], other):
        factories.certification(db, mentor, expires_on=AS_OF + dt.timedelta(days=700))
    assert _run(database_url, AS_OF + dt.timedelta(days=1)).success
    assert (_status(db, people["mentor"]), _status(db, other)) == ("paused", "paused")
    assert factories.count(db, "dynamics_sync_events", "action = 'reactivate'") == 0
    assert factories.count(db, "notifications", "kind = 'mentor_reactivated'") == 0
    assert factories.log_rows(db, JOB)[-1].details["mentors_reactivated"] == 0


def test_two_concurrent_reactivations_of_the_same_mentor_write_one_of_each(
    db: sa.Connection, database_url: str, people: dict
) -> None:
    """Two real connections: the mentor's row decides; the second finds them active and writes nothing."""
    factories.certification(db, people["mentor"], expires_on=AS_OF - dt.timedelta(days=1))
    assert _run(database_url).success
    factories.certification(db, people["mentor"], expires_on=AS_OF + dt.timedelta(days=700))
    with connect(database_url) as connection, connection.begin():
        decided = repository.load_open_pauses(connection)
    reactivations = rules.decide_reactivations(decided, AS_OF + dt.timedelta(days=1))
    assert len(reactivations) == 1
    written = race_two_writers(database_url, lambda connection: repository.reactivate(connection, reactivations))
    assert written == {"first": (1, 1), "second": (0, 0)}
    assert factories.count(db, "dynamics_sync_events", "action = 'reactivate'") == 1
    assert factories.count(db, "notifications", "kind = 'mentor_reactivated'") == 2
    assert factories.count(db, "mentor_pause_history", "resumed_at IS NOT NULL") == 1


def test_an_unsent_pause_notice_expires_once_the_mentor_is_active_again(
    db: sa.Connection, database_url: str, people: dict
) -> None:
    """The kinds' own "no longer due" rules (certifications/notifications.py), applied by delivery."""
    factories.certification(db, people["mentor"], expires_on=AS_OF - dt.timedelta(days=1))
    assert _run(database_url).success
    with connect(database_url) as connection, connection.begin():
        assert delivery_repository.expire_stale(connection, Window(), 72).no_longer_due == []  # still paused
    factories.certification(db, people["mentor"], expires_on=AS_OF + dt.timedelta(days=700))
    assert _run(database_url, AS_OF + dt.timedelta(days=1)).success
    with connect(database_url) as connection, connection.begin():
        expired = delivery_repository.expire_stale(connection, Window(), 72)
    notices = db.execute(
        sa.text("SELECT kind, status, last_error FROM public.notifications ORDER BY kind, recipient_role")
    ).all()
    assert [(n.kind, n.status) for n in notices] == [
        ("mentor_auto_paused", "expired"),
        ("mentor_auto_paused", "expired"),
        ("mentor_reactivated", "pending"),
        ("mentor_reactivated", "pending"),
    ]
    assert len(expired.no_longer_due) == 2
    assert notices[0].last_error == "expired: no longer due (the mentor is active again)"
