"""The assignment job streams: chunks change nothing but memory, and a kill between chunks loses
and duplicates nothing. Real PostgreSQL, real Dagster, a real process killed with SIGKILL."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import psycopg2.errors
import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from reminder_pipeline.assignments import repository
from reminder_pipeline.assignments.jobs import ASSIGNMENT_REMINDERS
from reminder_pipeline.assignments.repository import load_active_assignments, stream_active_assignments
from reminder_pipeline.assignments.rules import ReminderRules, decide_reminders
from reminder_pipeline.assignments.streaming import remind_in_chunks
from reminder_pipeline.core import execution_log, outbox
from reminder_pipeline.core.database import connect
from reminder_pipeline.seed import seed
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import alerting_for, run_assignment_reminders, tick
from reminder_pipeline_tests.http_peers import HttpPeer

pytestmark = pytest.mark.database
AS_OF = dt.date(2026, 11, 22)
ASSIGNMENTS = 3_000
CHUNK = 1_000
KEY = outbox.KEY_TEXT_SQL
KEYS_SQL = (
    f"SELECT count(*), count(DISTINCT {KEY}),"
    f" md5(string_agg({KEY} || '|' || n.recipient_id || '|' || n.payload::text, ',' ORDER BY {KEY}))"
    " FROM public.notifications AS n"
)
ALL_KEYS_SQL = f"SELECT {KEY} FROM public.notifications AS n"


@pytest.fixture
def seeded(db: sa.Connection, database_url: str) -> pd.DataFrame:
    """A seeded organisation, and what the rule says is due over all of it at once (the job before
    it streamed: one frame, one dispatch)."""
    with connect(database_url) as connection, connection.begin():
        seed(connection, ASSIGNMENTS, today=AS_OF)
        everything = load_active_assignments(connection)
    due = decide_reminders(everything, AS_OF, ReminderRules())
    assert len(due) > 100 and everything["assignment_id"].nunique() > 2 * CHUNK
    return due


def test_chunks_change_nothing_but_memory(db: sa.Connection, database_url: str, seeded: pd.DataFrame) -> None:
    with DagsterInstance.ephemeral() as instance:
        whole = run_assignment_reminders(database_url, AS_OF, instance=instance, chunk_size=1_000_000)
        whole_keys = db.execute(sa.text(KEYS_SQL)).one()
        db.execute(sa.text("TRUNCATE public.notifications"))
        chunked = run_assignment_reminders(database_url, AS_OF, instance=instance, chunk_size=97, full_run=True)
        chunked_keys = db.execute(sa.text(KEYS_SQL)).one()

    assert whole.success and chunked.success
    assert whole_keys == chunked_keys
    assert whole_keys[0] == whole_keys[1] == len(seeded)  # exactly the rule's notifications, once each
    assert set(outbox.key_text(seeded)) == set(db.execute(sa.text(ALL_KEYS_SQL)).scalars())
    first, second = factories.log_rows(db)
    assert first.details["changed_since"] == second.details["changed_since"] == ""  # both read everything
    assert (first.assignments_evaluated, first.reminders_dispatched) == (
        second.assignments_evaluated,
        second.reminders_dispatched,
    )
    assert first.details["chunks"] == 1
    assert second.details["chunks"] == -(-first.assignments_evaluated // 97)
    assert first.details["read_queries"] == second.details["read_queries"] == 1  # too few rows to split
    assert first.details["due_by_kind"] == second.details["due_by_kind"]
    assert first.details["sample_assignment_ids"] == second.details["sample_assignment_ids"]


def _job_session_waiting(db: sa.Connection) -> str | None:
    """The name of a run's session (`rp:<run id>`) waiting on a lock, if any."""
    return db.execute(
        sa.text(
            "SELECT application_name FROM pg_stat_activity"
            " WHERE application_name LIKE 'rp:%' AND wait_event_type = 'Lock' LIMIT 1"
        )
    ).scalar_one_or_none()


def test_a_run_killed_between_chunks_loses_and_duplicates_nothing(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame
) -> None:
    """The lock and the log row span every chunk; chunk 1 is committed and counted when the run is
    killed inside chunk 2; the next run closes the abandoned row and creates exactly the rest."""
    with connect(database_url, autocommit=True) as observer:
        active = sorted(
            observer.execute(sa.text("SELECT id::text FROM public.assignments WHERE status = 'active'")).scalars()
        )
    second_chunk = set(active[CHUNK : 2 * CHUNK])
    held = seeded[seeded["assignment_id"].isin(second_chunk)].head(1)
    first_chunk_due = int(seeded["assignment_id"].isin(set(active[:CHUNK])).sum())

    with connect(database_url) as blocker:
        # An uncommitted row with a key chunk 2 will write: its INSERT waits for this transaction.
        blocking = blocker.begin()
        assert outbox.dispatch(blocker, held).created == 1
        run = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import datetime as dt\n"
                "from reminder_pipeline_tests.dagster_helpers import run_assignment_reminders\n"
                f"run_assignment_reminders({database_url!r}, dt.date.fromisoformat({AS_OF.isoformat()!r}),"
                f" chunk_size={CHUNK})\n",
            ],
        )
        try:
            deadline = time.monotonic() + 120
            while (waiting := _job_session_waiting(db)) is None:
                assert run.poll() is None and time.monotonic() < deadline, "the run never reached chunk 2"
                time.sleep(0.1)
            # Mid-run: the lock is held by the run's own session, the row is running, chunk 1 counted.
            holder = db.execute(
                sa.text(
                    "SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.objid = :key AND l.granted"
                ),
                {"key": ASSIGNMENT_REMINDERS.lock_key},
            ).scalar_one()
            assert holder == waiting
            (row,) = factories.log_rows(db)
            assert (row.status, row.reminders_dispatched) == ("running", first_chunk_due)
            assert db.execute(sa.text("SELECT count(*) FROM public.notifications")).scalar() == first_chunk_due
            run.kill()  # SIGKILL: no teardown, no finally
            run.wait(timeout=30)
        finally:
            if run.poll() is None:
                run.kill()
            blocking.rollback()

    deadline = time.monotonic() + 20
    lock = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key")
    while db.execute(lock, {"key": ASSIGNMENT_REMINDERS.lock_key}).scalar():
        assert time.monotonic() < deadline, "the killed run's lock outlived it"
        time.sleep(0.05)
    rerun = run_assignment_reminders(database_url, AS_OF, chunk_size=CHUNK)

    assert rerun.success
    total, distinct, _ = db.execute(sa.text(KEYS_SQL)).one()
    assert total == distinct == len(seeded)
    assert set(outbox.key_text(seeded)) == set(db.execute(sa.text(ALL_KEYS_SQL)).scalars())
    killed, recovered = factories.log_rows(db)
    assert (killed.status, killed.error_message, killed.reminders_dispatched) == (
        "failed",
        execution_log.ABANDONED_MESSAGE,
        first_chunk_due,
    )
    assert (recovered.status, recovered.reminders_dispatched) == ("success", len(seeded) - first_chunk_due)


def _evaluated_and_created(db: sa.Connection) -> tuple[int, int, str]:
    row = factories.log_rows(db)[-1]
    assert row.status == "success"
    return row.assignments_evaluated, row.reminders_dispatched, row.details["changed_since"]


def test_a_rerun_for_a_covered_date_reads_only_what_changed_and_misses_nothing(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame
) -> None:
    """After a successful run for a date, a second run for the same date and rules reads only the
    assignments whose row, or whose mentor's row, changed since (less a margin); a full run after it
    finds nothing left to create."""
    assert run_assignment_reminders(database_url, AS_OF).success
    active_assignments, created, since = _evaluated_and_created(db)
    assert since == "" and created == len(seeded)

    # Between the runs: a new overdue assignment, a paused mentor set active again (their
    # assignments become due), and a contact logged then a gap again (a new reference date).
    coordinator = factories.coordinator(db)
    newcomer = factories.assignment(db, factories.mentor(db, coordinator), assigned_on=AS_OF - dt.timedelta(days=30))
    paused = db.execute(
        sa.text(
            "SELECT m.id FROM public.peer_mentors AS m WHERE m.status = 'paused'"
            " AND EXISTS (SELECT 1 FROM public.assignments AS a WHERE a.mentor_id = m.id AND a.status = 'active'"
            "   AND coalesce(a.last_contact_date, a.assigned_at::date) <= CAST(:due AS date))"
            " ORDER BY m.id LIMIT 1"
        ),
        {"due": AS_OF - dt.timedelta(days=10)},
    ).scalar_one()
    db.execute(sa.text("UPDATE public.peer_mentors SET status = 'active' WHERE id = :id"), {"id": paused})
    regapped = seeded.iloc[0]["assignment_id"]
    db.execute(
        sa.text("UPDATE public.assignments SET last_contact_date = :day WHERE id = :id"),
        {"day": AS_OF - dt.timedelta(days=11), "id": regapped},
    )

    assert run_assignment_reminders(database_url, AS_OF).success
    evaluated, created_again, since = _evaluated_and_created(db)
    assert since != ""
    assert 3 <= evaluated < 50 < active_assignments  # the changed ones, not all
    keys = set(db.execute(sa.text(ALL_KEYS_SQL)).scalars())
    assert any(key.startswith(f"{newcomer}:") for key in keys)
    assert any(key.startswith(f"{regapped}:") and f":{AS_OF - dt.timedelta(days=11)}:" in key for key in keys)
    assert (
        db.execute(
            sa.text(
                "SELECT count(*) FROM public.notifications AS n JOIN public.assignments AS a ON a.id = n.assignment_id"
                " WHERE a.mentor_id = :m"
            ),
            {"m": paused},
        ).scalar()
        > 0
    )
    assert created_again >= 3

    assert run_assignment_reminders(database_url, AS_OF, full_run=True).success
    assert _evaluated_and_created(db)[1:] == (0, "")  # the rerun missed nothing


def test_a_change_committed_after_a_run_read_it_is_read_again_by_the_rerun(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame
) -> None:
    """A change is stamped when its statement runs, but a run sees it only once it commits: a
    transaction open across the first run's start is still read by the rerun (the margin)."""
    day = AS_OF - dt.timedelta(days=13)
    already = seeded.loc[seeded["reference_date"] == day.isoformat(), "assignment_id"]
    target = seeded.loc[~seeded["assignment_id"].isin(already), "assignment_id"].iloc[0]  # a new key, not one seeded
    with connect(database_url) as writer, writer.begin():
        writer.execute(
            sa.text("UPDATE public.assignments SET last_contact_date = :day WHERE id = :id"), {"day": day, "id": target}
        )
        time.sleep(0.2)
        assert run_assignment_reminders(database_url, AS_OF).success  # reads the old row
        # committed now, stamped before the first run started
    key_prefix = f"{target}:%:{day}:%"
    count = sa.text(f"SELECT count(*) FROM public.notifications AS n WHERE {KEY} LIKE :p")
    assert db.execute(count, {"p": key_prefix}).scalar() == 0

    assert run_assignment_reminders(database_url, AS_OF).success
    assert _evaluated_and_created(db)[2] != ""
    assert db.execute(count, {"p": key_prefix}).scalar() == 1
    assert run_assignment_reminders(database_url, AS_OF, full_run=True).success
    assert _evaluated_and_created(db)[1:] == (0, "")


def test_another_date_or_other_rules_read_everything(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame
) -> None:
    assert run_assignment_reminders(database_url, AS_OF).success
    everything = _evaluated_and_created(db)[0]
    assert run_assignment_reminders(database_url, AS_OF + dt.timedelta(days=1)).success
    assert _evaluated_and_created(db)[0] == everything and _evaluated_and_created(db)[2] == ""
    assert run_assignment_reminders(database_url, AS_OF, reminder_after_days=9).success
    assert _evaluated_and_created(db)[0] == everything and _evaluated_and_created(db)[2] == ""


class _Transactions:
    """Transactions on connections of their own, counted; the `fail_at`-th fails as it opens."""

    def __init__(self, database_url: str, *, fail_at: int = 0, statement_timeout_ms: int = 0) -> None:
        self.database_url, self.fail_at, self.statement_timeout_ms = database_url, fail_at, statement_timeout_ms
        self.opened = 0

    @contextmanager
    def __call__(self) -> Iterator[sa.Connection]:
        self.opened += 1
        with connect(self.database_url) as connection, connection.begin():
            if self.opened == self.fail_at:
                raise RuntimeError(f"transaction {self.fail_at} failed")
            if self.statement_timeout_ms:
                connection.execute(sa.text(f"SET LOCAL statement_timeout = {self.statement_timeout_ms}"))
            yield connection


def _left_running(db: sa.Connection) -> tuple[list[str], int]:
    threads = [t.name for t in threading.enumerate() if t.name in ("reminder-chunk-reader", "copy-out")]
    copies = db.execute(
        sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
            " AND query LIKE 'COPY (%'"
        )
    ).scalar_one()
    return threads, copies


def test_chunks_some_of_whose_keys_exist_create_the_rest_and_count_each_chunk_once(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk is first written by one bare COPY, with no savepoint; a key that exists aborts that
    transaction and the chunk is written again in a new one, without a second COPY. Every key ends
    up once, and each chunk is counted once, with what it created (the aborted try counts nothing)."""
    with connect(database_url) as connection, connection.begin():
        outbox.dispatch(connection, seeded.iloc[::7])  # every seventh due notification exists: every chunk conflicts
    existing = db.execute(sa.text("SELECT count(*) FROM public.notifications")).scalar_one()
    copies: list[tuple[str, bool]] = []
    copy_csv = outbox.copy_csv

    def recorded(connection: sa.Connection, table: str, *rest: object) -> None:
        try:
            copy_csv(connection, table, *rest)
        except psycopg2.errors.UniqueViolation:
            copies.append((table, False))
            raise
        copies.append((table, True))

    monkeypatch.setattr(outbox, "copy_csv", recorded)
    counted: list[int] = []
    writes = _Transactions(database_url)
    run = remind_in_chunks(
        writes,
        _Transactions(database_url),
        AS_OF,
        ReminderRules(),
        chunk_size=CHUNK,
        on_chunk=lambda connection, created: counted.append(created),
    )
    *_, totals = run
    count, distinct, _ = db.execute(sa.text(KEYS_SQL)).one()
    assert count == distinct == len(seeded)
    assert totals.created == sum(counted) == len(seeded) - existing
    assert len(counted) == totals.chunks == 3 and writes.opened == 2 * totals.chunks
    assert [ok for table, ok in copies if table == "public.notifications"] == [False] * totals.chunks
    db.execute(sa.text("TRUNCATE public.notifications"))
    fresh = _Transactions(database_url)
    *_, totals = remind_in_chunks(fresh, _Transactions(database_url), AS_OF, ReminderRules(), chunk_size=CHUNK)
    assert totals.created == len(seeded) and fresh.opened == totals.chunks  # new keys: one transaction a chunk


def test_a_chunk_that_fails_to_write_stops_the_reading_and_leaves_nothing_running(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame
) -> None:
    run = remind_in_chunks(
        _Transactions(database_url, fail_at=2), _Transactions(database_url), AS_OF, ReminderRules(), chunk_size=500
    )
    with pytest.raises(RuntimeError, match="transaction 2 failed"):
        for _ in run:
            pass
    assert _left_running(db) == ([], 0)
    first_chunk = decide_reminders(load_active_assignments(db).iloc[:500], AS_OF, ReminderRules())
    assert factories.notification_count(db) == len(first_chunk)  # chunk 1 committed, nothing after it


@pytest.mark.parametrize("split", [False, True], ids=["one query", "two queries"])
def test_a_read_that_fails_fails_the_run_with_the_database_error(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    if split:
        _split_every_read(db, monkeypatch)
    run = remind_in_chunks(
        _Transactions(database_url), _Transactions(database_url, statement_timeout_ms=1), AS_OF, ReminderRules()
    )
    # Raised by the COPY (psycopg2's own error) or, on a loaded machine, by a SET before it (wrapped).
    with pytest.raises((psycopg2.errors.QueryCanceled, sa.exc.OperationalError), match="statement timeout"):
        list(run)
    assert _left_running(db) == ([], 0)
    assert factories.notification_count(db) == 0


def _split_every_read(db: sa.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a full read of the seeded organisation as the job's read of a million is: two queries."""
    _analyzed(db)
    monkeypatch.setattr(repository, "SPLIT_FROM_ROWS", 0)


def _fail_the_second_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rest of a split read fails on the server after sending rows (a division by zero stands
    for any error: a cancel would race the rows already in the socket's buffers)."""
    failing = "SELECT (1 / (i - 1500))::text AS n FROM generate_series(1, 3000) AS i"
    monkeypatch.setattr(
        repository,
        "_rest",
        lambda connection, boundary, size: repository.frame_stream(connection, failing, ["n"], size),
    )


def _analyzed(db: sa.Connection) -> None:
    db.execute(sa.text("ANALYZE public.assignments"))  # the id histogram the split is taken from


def _head_transactions_of_a_split_read(db: sa.Connection, database_url: str) -> _Transactions:
    """The statistics a split needs, and the counted transactions its head query opens."""
    _analyzed(db)
    return _Transactions(database_url)


def test_a_large_table_is_read_in_two_queries_with_the_same_rows_in_the_same_order(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame
) -> None:
    heads = _head_transactions_of_a_split_read(db, database_url)
    with connect(database_url) as connection, connection.begin():
        frames = list(stream_active_assignments(connection, 97, head_transaction=heads, split_from_rows=0))
        boundary = connection.execute(
            sa.text(repository.HEAD_BOUNDARY_SQL), {"percent": repository.HEAD_PERCENT, "minimum": 0}
        ).scalar_one()
        whole = load_active_assignments(connection)
        unsplit = [
            list(stream_active_assignments(connection, 97, head_transaction=heads, split_from_rows=10**9)),
            list(stream_active_assignments(connection, 97, changed_since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))),
        ]

    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole)
    assert heads.opened == 1  # the head, on a connection of its own; the two reads after it opened none
    head_rows = int((whole["assignment_id"] < str(boundary)).sum())
    assert 0.05 * len(whole) < head_rows < 0.15 * len(whole)
    ends = [int(end) for end in pd.Series([len(frame) for frame in frames]).cumsum()]
    assert head_rows in ends  # the head's last frame ends at the boundary (it may be short)
    assert all(len(frame) <= 97 for frame in frames)
    for frames in unsplit:
        assert [len(frame) for frame in frames[:-1]] == [97] * (len(frames) - 1)
        pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole)


def test_the_head_of_a_split_read_comes_in_the_index_order_with_no_sort_before_its_first_row(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame
) -> None:
    """The head is there to give the writer its first chunk at once: planned as the planner would
    (a hash of every mentor, then a sort), nothing would come before the whole head was sorted."""
    _analyzed(db)
    head_sql = repository._active_assignments_sql(before_id=uuid.UUID(int=2**127))
    plans = []

    @contextmanager
    def head_transaction() -> Iterator[sa.Connection]:
        with connect(database_url) as connection, connection.begin():
            yield connection
            plans.append("\n".join(connection.execute(sa.text(f"EXPLAIN {head_sql}")).scalars()))  # as it was read

    with connect(database_url) as connection, connection.begin():
        list(stream_active_assignments(connection, 97, head_transaction=head_transaction, split_from_rows=0))
        default_plan = "\n".join(connection.execute(sa.text(f"EXPLAIN {head_sql}")).scalars())

    (plan,) = plans
    assert "Index Scan using assignments_active_idx" in plan
    assert "Sort" not in plan and "Hash" not in plan
    assert "Sort" in default_plan  # what the planner picks unless told: the test tells them apart


def test_a_job_that_reads_in_two_queries_creates_exactly_the_rules_notifications(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    _split_every_read(db, monkeypatch)
    active = db.execute(sa.text("SELECT count(*) FROM public.assignments WHERE status = 'active'")).scalar_one()
    result = run_assignment_reminders(database_url, AS_OF, chunk_size=active)

    assert result.success
    total, distinct, _ = db.execute(sa.text(KEYS_SQL)).one()
    assert total == distinct == len(seeded)
    assert set(outbox.key_text(seeded)) == set(db.execute(sa.text(ALL_KEYS_SQL)).scalars())
    (row,) = factories.log_rows(db)
    assert row.assignments_evaluated == active
    assert row.details["chunks"] == 2  # one chunk would hold them all: the head, then the rest
    assert row.details["read_queries"] == 2
    (finish,) = [
        event
        for event in result.all_node_events
        if event.step_key == "finish_guarded_run" and event.event_type_value == "STEP_OUTPUT"
    ]
    assert finish.event_specific_data.metadata["read_queries"].value == 2  # what the run page shows


def test_a_write_that_fails_while_both_queries_run_leaves_nothing_running(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    _split_every_read(db, monkeypatch)
    reads = _Transactions(database_url)
    run = remind_in_chunks(_Transactions(database_url, fail_at=2), reads, AS_OF, ReminderRules(), chunk_size=50)
    with pytest.raises(RuntimeError, match="transaction 2 failed"):
        for _ in run:
            pass
    assert reads.opened == 2  # the rest's connection and the head's
    assert _left_running(db) == ([], 0)


def test_a_read_in_two_queries_holds_both_tables_from_its_start(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame
) -> None:
    """While the head is read, the rest's connection already holds what its query will: a migration
    that needs the tables exclusively waits for the whole read, not only for the head."""
    _analyzed(db)
    holders = sa.text(
        "SELECT count(DISTINCT l.pid) FROM pg_locks AS l WHERE l.relation = CAST(:table AS regclass)"
        " AND l.mode = 'AccessShareLock' AND l.granted AND l.pid <> pg_backend_pid()"
    )
    with connect(database_url) as connection, connection.begin():
        stream = stream_active_assignments(
            connection, 97, head_transaction=_Transactions(database_url), split_from_rows=0
        )
        next(stream)  # the head's first chunk: the rest's query has not started
        held = {
            table: db.execute(holders, {"table": table}).scalar_one()
            for table in ("public.assignments", "public.peer_mentors")
        }
        stream.close()
    assert held == {"public.assignments": 2, "public.peer_mentors": 2}  # the head's connection and the rest's


def test_a_second_query_that_fails_ends_the_read_with_its_error_and_leaves_nothing_running(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its error ends the read, and neither query is left running."""
    heads = _head_transactions_of_a_split_read(db, database_url)
    _fail_the_second_query(monkeypatch)
    with connect(database_url) as connection, connection.begin():
        stream = stream_active_assignments(connection, 50, head_transaction=heads, split_from_rows=0)
        assert len(next(stream)) == 50  # the head's
        with pytest.raises(psycopg2.errors.DivisionByZero):
            for _ in stream:
                pass
    assert heads.opened == 1
    assert _left_running(db) == ([], 0)


def test_a_split_read_that_fails_fails_the_run_and_twice_raises_one_alert(
    db: sa.Connection, database_url: str, seeded: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second query of a split read fails on the server: the run fails with the database's
    error on its log row, and two such runs send operations exactly one alert (a real Slack peer)."""
    for name in ("SLACK_WEBHOOK_URL", "ALERT_SMTP_HOST", "ALERT_EMAIL_TO"):
        monkeypatch.delenv(name, raising=False)
    _split_every_read(db, monkeypatch)
    _fail_the_second_query(monkeypatch)
    with HttpPeer() as slack, DagsterInstance.ephemeral() as instance:
        alerting = alerting_for(database_url, slack_webhook_url=slack.url)
        runs = [run_assignment_reminders(database_url, AS_OF, alerting, instance) for _ in range(2)]
        tick("ops_run_failures", instance, database_url, alerting)
        tick("ops_run_failures", instance, database_url, alerting)
        alerts = [request.json()["text"] for request in slack.requests]

    assert [run.success for run in runs] == [False, False]
    rows = factories.log_rows(db)
    assert [(row.status, row.consecutive_failure_count) for row in rows] == [("failed", 1), ("failed", 2)]
    assert "division by zero" in rows[-1].error_message
    assert len(alerts) == 1 and "assignment_reminders failed 2 times in a row" in alerts[0]
