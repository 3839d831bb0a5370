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


def test_prepare_keeps_the_first_row_of_each_key_in_the_key_order_of_the_database() -> None:
    """Sorted as `_KEY_ORDER` (source, bytewise kind and role, NULLs first), one row per key: the
    first, the source compared in lower case as the uuid column will."""
    first, second = "0a000000-0000-4000-8000-000000000000", "0b000000-0000-4000-8000-000000000000"
    reminder, escalation = "assignment_follow_up_reminder", "assignment_follow_up_escalation"
    frame = pd.DataFrame(
        {
            "source_id": [second.upper(), first, first, first, second, first],
            "kind": [reminder, reminder, reminder, reminder, reminder, escalation],
            "recipient_role": ["mentor", "mentor", "mentor", "mentor", "mentor", "coordinator"],
            "recipient_id": first,
            "assignment_id": [None, first, first, first, second, first],
            "reference_date": [None, "2026-11-01", None, None, None, "2026-11-01"],
            "step": pd.array([0, 1, None, None, 0, 0], dtype="Int64"),
            "days_without_contact": [5, 6, 7, 8, 9, None],
        }
    )
    prepared = outbox.prepare(frame)
    rows = prepared.rows
    assert prepared.requested == 6
    assert list(rows.columns) == [*outbox.OUTBOX_COLUMNS, "payload"]
    assert rows["source_id"].tolist() == [first, first, first, second]
    assert rows["kind"].tolist() == [escalation, reminder, reminder, reminder]
    assert rows["payload"].tolist() == [
        '{"days_without_contact": null}',
        '{"days_without_contact": 7}',
        '{"days_without_contact": 6}',
        '{"days_without_contact": 5}',
    ]
    assert b"".join(prepared.csv).decode().splitlines()[1] == (
        f'"{first}","{reminder}","mentor","{first}","{first}",,,"{{""days_without_contact"": 7}}"'
    )


@pytest.mark.parametrize("days", [1.5, "twelve"])
def test_a_payload_value_not_of_its_declared_type_is_refused_without_echoing_it(days: object) -> None:
    frame = pd.DataFrame(
        {
            "source_id": ["0a000000-0000-4000-8000-000000000000"],
            "kind": ["assignment_follow_up_reminder"],
            "recipient_role": ["mentor"],
            "recipient_id": ["0a000000-0000-4000-8000-000000000000"],
            "assignment_id": [None],
            "reference_date": ["2026-11-01"],
            "step": [0],
            "days_without_contact": [days],
        }
    )
    refused = r"payload key days_without_contact holds a value not of type int$"
    with pytest.raises(InputRejected, match=refused) as error:
        outbox.prepare(frame)
    assert str(days) not in str(error.value)
