import datetime as dt
import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from reminder_pipeline.core import outbox
from reminder_pipeline.core.database import connect
from reminder_pipeline_tests import factories

pytestmark = pytest.mark.database


def _notifications(db: sa.Connection, count: int) -> pd.DataFrame:
    coordinator = factories.coordinator(db)
    mentor = factories.mentor(db, coordinator)
    assignment = factories.assignment(db, mentor, assigned_on=dt.date(2026, 1, 1))
    return pd.DataFrame(
        {
            "idempotency_key": [f"{assignment}:test:{i}" for i in range(count)],
            "kind": "test",
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


def test_two_concurrent_dispatchers_of_the_same_keys_create_each_once(db: sa.Connection, database_url: str) -> None:
    """Two real connections: the second insert waits on the first's uncommitted keys, then skips them."""
    frame = _notifications(db, 200)
    results: dict[str, int] = {}
    first_inserted = threading.Event()

    def second_dispatcher() -> None:
        first_inserted.wait(30)
        with connect(database_url) as connection, connection.begin():
            results["second"] = outbox.dispatch(connection, frame).created

    worker = threading.Thread(target=second_dispatcher)
    worker.start()
    with connect(database_url) as connection, connection.begin():
        results["first"] = outbox.dispatch(connection, frame).created
        first_inserted.set()
        # keep the transaction open until the second dispatcher is blocked on our rows
        with connect(database_url) as observer:
            deadline = time.monotonic() + 60  # generous: a loaded CI machine was seen needing over 15 s
            while time.monotonic() < deadline:
                waiting = observer.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database()"
                    )
                ).scalar()
                if waiting:
                    break
                threading.Event().wait(0.05)
        assert waiting == 1
    worker.join(60)
    assert results == {"first": 200, "second": 0}
    assert factories.notification_count(db) == 200


def test_nothing_to_dispatch_is_a_no_op(database_url: str) -> None:
    empty = pd.DataFrame(columns=outbox.OUTBOX_COLUMNS)
    with connect(database_url) as connection, connection.begin():
        assert outbox.dispatch(connection, empty) == outbox.DispatchResult(requested=0, created=0)
