"""Every registration path moves last_contact_date, and the next reminder run leaves it alone."""

import datetime as dt
import json
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from reminder_pipeline.activities.registration import (
    Activity,
    RegistrationRejected,
    register_bulk,
    register_coordinator_proxy,
    register_direct,
    register_proxy,
)
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.run_config import today_local
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import run_assignment_reminders

pytestmark = pytest.mark.database
TODAY = today_local()


@pytest.fixture
def world(db: sa.Connection) -> dict:
    coordinator_auth, mentor_auth = uuid.uuid4(), uuid.uuid4()
    coordinator = factories.coordinator(db, auth_user_id=coordinator_auth)
    mentor = factories.mentor(db, coordinator, auth_user_id=mentor_auth)
    overdue = factories.assignment(
        db, mentor, assigned_on=TODAY - dt.timedelta(days=60), last_contact_date=TODAY - dt.timedelta(days=30)
    )
    other_coordinator = factories.coordinator(db)
    stranger = factories.assignment(
        db, factories.mentor(db, other_coordinator), assigned_on=TODAY - dt.timedelta(days=60)
    )
    closed = factories.assignment(db, mentor, assigned_on=TODAY - dt.timedelta(days=60), status="closed")
    return {
        "coordinator": coordinator,
        "coordinator_auth": coordinator_auth,
        "mentor": mentor,
        "mentor_auth": mentor_auth,
        "overdue": overdue,
        "stranger": stranger,
        "closed": closed,
    }


def _last_contact(db: sa.Connection, assignment: uuid.UUID) -> dt.date | None:
    return db.execute(
        sa.text("SELECT last_contact_date FROM public.assignments WHERE id = :id"), {"id": assignment}
    ).scalar()


def _activities(db: sa.Connection) -> list[sa.Row]:
    return db.execute(
        sa.text(
            "SELECT assignment_id, mentor_id, activity_date, registration_path, registered_by"
            " FROM public.activities ORDER BY created_at"
        )
    ).all()


def _reminded(db: sa.Connection, database_url: str, assignment: uuid.UUID) -> bool:
    assert run_assignment_reminders(database_url, TODAY).success
    return bool(
        db.execute(
            sa.text("SELECT count(*) FROM public.notifications WHERE assignment_id = :id"), {"id": assignment}
        ).scalar()
    )


def _write(database_url: str, register, **kwargs) -> int:
    with connect(database_url) as connection, connection.begin():
        return register(connection, **kwargs)


def test_direct_registration(db: sa.Connection, database_url: str, world: dict) -> None:
    written = _write(
        database_url,
        register_direct,
        mentor_id=world["mentor"],
        auth_user_id=world["mentor_auth"],
        activity=Activity(world["overdue"], TODAY - dt.timedelta(days=1)),
    )
    assert written == 1
    (activity,) = _activities(db)
    assert (activity.registration_path, activity.registered_by, activity.mentor_id) == (
        "direct",
        world["mentor_auth"],
        world["mentor"],
    )
    assert _last_contact(db, world["overdue"]) == TODAY - dt.timedelta(days=1)
    assert not _reminded(db, database_url, world["overdue"])


def test_proxy_registration(db: sa.Connection, database_url: str, world: dict) -> None:
    helper = uuid.uuid4()
    _write(database_url, register_proxy, registered_by=helper, activity=Activity(world["overdue"], TODAY))
    (activity,) = _activities(db)
    assert (activity.registration_path, activity.registered_by) == ("proxy", helper)
    assert _last_contact(db, world["overdue"]) == TODAY
    assert not _reminded(db, database_url, world["overdue"])


def test_coordinator_proxy_registration(db: sa.Connection, database_url: str, world: dict) -> None:
    _write(
        database_url,
        register_coordinator_proxy,
        coordinator_id=world["coordinator"],
        auth_user_id=world["coordinator_auth"],
        activity=Activity(world["overdue"], TODAY - dt.timedelta(days=2)),
    )
    (activity,) = _activities(db)
    assert (activity.registration_path, activity.registered_by) == ("coordinator_proxy", world["coordinator_auth"])
    assert _last_contact(db, world["overdue"]) == TODAY - dt.timedelta(days=2)
    assert not _reminded(db, database_url, world["overdue"])


def test_bulk_registration(db: sa.Connection, database_url: str, world: dict) -> None:
    written = _write(
        database_url,
        register_bulk,
        registered_by=None,
        activities=[
            Activity(world["overdue"], TODAY - dt.timedelta(days=5)),
            Activity(world["overdue"], TODAY - dt.timedelta(days=3)),
            Activity(world["stranger"], TODAY - dt.timedelta(days=4)),
        ],
    )
    assert written == 3
    assert {row.registration_path for row in _activities(db)} == {"bulk"}
    assert _last_contact(db, world["overdue"]) == TODAY - dt.timedelta(days=3)
    assert _last_contact(db, world["stranger"]) == TODAY - dt.timedelta(days=4)
    assert not _reminded(db, database_url, world["overdue"])


def test_a_backdated_activity_does_not_move_the_date_backwards(
    db: sa.Connection, database_url: str, world: dict
) -> None:
    _write(database_url, register_proxy, registered_by=uuid.uuid4(), activity=Activity(world["overdue"], TODAY))
    _write(
        database_url,
        register_proxy,
        registered_by=uuid.uuid4(),
        activity=Activity(world["overdue"], TODAY - dt.timedelta(days=40)),
    )
    assert _last_contact(db, world["overdue"]) == TODAY
    assert len(_activities(db)) == 2


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ({"assignment": "closed"}, "assignment is closed"),
        ({"days_ago": -1}, "activity_date is in the future"),
        ({"assignment": "unknown"}, "unknown assignment"),
        ({"assignment": "garbage"}, "not an assignment id"),
        ({"date": "2026-02-30"}, "activity_date must be a date (YYYY-MM-DD)"),
    ],
)
def test_a_bad_row_rejects_the_whole_bulk_and_is_named(
    db: sa.Connection, database_url: str, world: dict, bad_row: dict, reason: str
) -> None:
    ids = {"closed": str(world["closed"]), "unknown": str(uuid.uuid4()), "garbage": "42"}
    bad_date = bad_row.get("date") or (TODAY - dt.timedelta(days=bad_row.get("days_ago", 1))).isoformat()
    frame = pd.DataFrame(
        {
            "assignment_id": [str(world["overdue"]), ids.get(bad_row.get("assignment"), str(world["stranger"]))],
            "activity_date": [(TODAY - dt.timedelta(days=1)).isoformat(), bad_date],
        }
    )
    with pytest.raises(RegistrationRejected) as caught:
        _write(database_url, register_bulk, registered_by=None, activities=frame)
    (problem,) = caught.value.problems
    assert (problem.row, problem.reason) == (1, reason)
    assert "row 1 (" in str(caught.value) and reason in str(caught.value)
    assert _activities(db) == []
    assert _last_contact(db, world["overdue"]) == TODAY - dt.timedelta(days=30)


def test_a_mentor_cannot_register_directly_on_someone_elses_assignment(
    db: sa.Connection, database_url: str, world: dict
) -> None:
    with pytest.raises(RegistrationRejected, match="not this mentor's assignment"):
        _write(
            database_url,
            register_direct,
            mentor_id=world["mentor"],
            auth_user_id=world["mentor_auth"],
            activity=Activity(world["stranger"], TODAY),
        )
    with pytest.raises(RegistrationRejected, match="not coordinated by this coordinator"):
        _write(
            database_url,
            register_coordinator_proxy,
            coordinator_id=world["coordinator"],
            auth_user_id=world["coordinator_auth"],
            activity=Activity(world["stranger"], TODAY),
        )
    assert _activities(db) == []


def test_ten_thousand_activities_in_one_bulk_call(db: sa.Connection, database_url: str) -> None:
    coordinator = factories.coordinator(db)
    mentor = factories.mentor(db, coordinator)
    db.execute(
        sa.text(
            "INSERT INTO public.assignments (mentor_id, assigned_at) SELECT :m, now() - interval '90 days'"
            " FROM generate_series(1, 10000)"
        ),
        {"m": mentor},
    )
    ids = db.execute(sa.text("SELECT id::text FROM public.assignments ORDER BY id")).scalars().all()
    frame = pd.DataFrame(
        {
            "assignment_id": ids,
            "activity_date": [(TODAY - dt.timedelta(days=i % 20)).isoformat() for i in range(10_000)],
        }
    )
    assert _write(database_url, register_bulk, registered_by=None, activities=frame) == 10_000
    stale = db.execute(
        sa.text(
            "SELECT count(*) FROM public.assignments a WHERE a.last_contact_date IS DISTINCT FROM"
            " (SELECT max(activity_date) FROM public.activities WHERE assignment_id = a.id)"
        )
    ).scalar()
    assert stale == 0


def test_the_database_covers_writers_that_bypass_this_code(db: sa.Connection, world: dict) -> None:
    """The mobile app inserts through Supabase as the signed-in mentor: the trigger still applies."""
    claims = json.dumps({"sub": str(world["mentor_auth"]), "role": "authenticated"})
    insert = sa.text("INSERT INTO public.activities (assignment_id, mentor_id, activity_date) VALUES (:a, :m, :d)")
    db.execute(sa.text("BEGIN"))
    db.execute(sa.text("SET LOCAL ROLE authenticated"))
    db.execute(sa.text("SELECT set_config('request.jwt.claims', :c, true)"), {"c": claims})
    db.execute(insert, {"a": world["overdue"], "m": world["mentor"], "d": TODAY})
    db.execute(sa.text("COMMIT"))
    assert _last_contact(db, world["overdue"]) == TODAY

    with pytest.raises(sa.exc.DataError, match="in the future"):
        db.execute(insert, {"a": world["overdue"], "m": world["mentor"], "d": TODAY + dt.timedelta(days=1)})
    with pytest.raises(sa.exc.IntegrityError, match="closed assignment"):
        db.execute(insert, {"a": world["closed"], "m": world["mentor"], "d": TODAY})
    db.execute(sa.text("UPDATE public.activities SET activity_date = activity_date"))  # the update path runs too
    assert len(_activities(db)) == 1
