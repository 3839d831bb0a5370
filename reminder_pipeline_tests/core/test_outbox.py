import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from reminder_pipeline.core import outbox
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.errors import InputRejected
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.pg_tools import race_two_writers

pytestmark = pytest.mark.database


def _notifications(db: sa.Connection, count: int) -> pd.DataFrame:
    coordinator = factories.coordinator(db)
    mentor = factories.mentor(db, coordinator)
    assignment = factories.assignment(db, mentor, assigned_on=dt.date(2026, 1, 1))
    return pd.DataFrame(
        {
            "source_id": str(assignment),
            "kind": "assignment_follow_up_reminder",
            "recipient_role": "mentor",
            "recipient_id": str(mentor),
            "assignment_id": str(assignment),
            "reference_date": "2026-11-01",
            "step": range(count),
            "days_without_contact": 12,
        }
    )


def test_only_new_keys_are_created(db: sa.Connection, database_url: str) -> None:
    frame = _notifications(db, 5)
    with connect(database_url) as connection, connection.begin():
        first = outbox.dispatch(connection, frame.iloc[:3])
    with connect(database_url) as connection, connection.begin():
        second = outbox.dispatch(connection, frame)
    assert (first.created, second.created) == (3, 2)
    assert factories.notification_count(db) == 5
    assert db.execute(sa.text("SELECT DISTINCT status FROM public.notifications")).scalars().all() == ["pending"]


def test_a_dry_run_counts_what_a_real_dispatch_creates_and_uses_up_no_identity_value(
    db: sa.Connection, database_url: str
) -> None:
    frame = _notifications(db, 5)
    with connect(database_url) as connection, connection.begin():
        outbox.dispatch(connection, frame.iloc[:3])
    last_id = db.execute(sa.text("SELECT last_value FROM public.notifications_id_seq")).scalar()
    with_repeat = pd.concat([frame, frame.iloc[[4]]])  # a key twice in one frame is created once
    with connect(database_url) as connection, connection.begin():
        dry = outbox.dispatch(connection, with_repeat, dry_run=True)
    assert db.execute(sa.text("SELECT last_value FROM public.notifications_id_seq")).scalar() == last_id
    assert factories.notification_count(db) == 3
    with connect(database_url) as connection, connection.begin():
        real = outbox.dispatch(connection, with_repeat)
    assert (dry.requested, dry.created) == (real.requested, real.created) == (6, 2)


def test_two_concurrent_dispatchers_of_the_same_keys_create_each_once(db: sa.Connection, database_url: str) -> None:
    """Two real connections: the second insert waits on the first's uncommitted keys, then skips them."""
    frame = _notifications(db, 200)
    results = race_two_writers(database_url, lambda connection: outbox.dispatch(connection, frame).created)
    assert results == {"first": 200, "second": 0}
    assert factories.notification_count(db) == 200


def test_nothing_to_dispatch_is_a_no_op(database_url: str) -> None:
    empty = pd.DataFrame(columns=outbox.OUTBOX_COLUMNS)
    with connect(database_url) as connection, connection.begin():
        assert outbox.dispatch(connection, empty) == outbox.DispatchResult(requested=0, created=0)


def test_a_kind_no_domain_declared_is_refused_before_anything_is_written(db: sa.Connection, database_url: str) -> None:
    frame = _notifications(db, 2).assign(kind="made_up_kind")
    rejected = pytest.raises(InputRejected, match=r"undeclared kinds: \['made_up_kind'\]")
    with connect(database_url) as connection, connection.begin(), rejected:
        outbox.dispatch(connection, frame)
    assert factories.notification_count(db) == 0


def test_the_payload_holds_the_declared_keys_of_the_kind() -> None:
    frame = pd.DataFrame({"kind": ["assignment_follow_up_reminder", "assignment_follow_up_escalation"]})
    assert outbox._payload_columns(frame) == {"days_without_contact": "int"}
