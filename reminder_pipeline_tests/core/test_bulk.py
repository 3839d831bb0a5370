"""One streamed query cut into frames (`bulk.stream_frames`), on a real server."""

import threading
import time
from collections.abc import Callable

import pandas as pd
import psycopg2.errors
import pyarrow as pa
import pytest
import sqlalchemy as sa

from reminder_pipeline.core import bulk
from reminder_pipeline.core.database import connect

pytestmark = pytest.mark.database

ROWS_SQL = (
    "SELECT i::text AS n, CASE WHEN i % 7 = 0 THEN NULL ELSE 'r' || i END AS label FROM generate_series(1, 2500) AS i"
)


def _copy_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "copy-out"]


def _errors_within_a_minute(read: Callable[[], None]) -> list[BaseException]:
    """Run `read` in a thread of its own: what it raised (nothing: an empty list); it must not hang."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            read()
        except BaseException as error:
            raised.append(error)

    reader = threading.Thread(target=run, daemon=True)
    reader.start()
    reader.join(60)
    assert not reader.is_alive(), "the stream hung"
    return raised


def test_frames_hold_every_row_in_order_in_frames_of_the_size_asked(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "STREAM_BLOCK_BYTES", 4096)  # many parser blocks per frame, and frames across blocks
    with connect(database_url) as connection, connection.begin():
        frames = list(bulk.stream_frames(connection, ROWS_SQL, ["n", "label"], 1000))
        whole = bulk.read_frame(connection, ROWS_SQL, {"n": "str", "label": "str"})
    assert [len(frame) for frame in frames] == [1000, 1000, 500]
    rows = [tuple(row) for frame in frames for row in frame.itertuples(index=False)]
    assert [n for n, _ in rows] == [str(i) for i in range(1, 2501)]
    assert sum(label != label for _, label in rows) == 2500 // 7  # NULL stays missing, never the text "nan"
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole)  # what one read gives


def test_a_query_that_fails_raises_the_database_error(database_url: str) -> None:
    """It fails after sending rows: the error is the database's, not the parser's on a cut-off row."""
    failing = "SELECT (1 / (i - 1500))::text AS n FROM generate_series(1, 3000) AS i"
    raised = pytest.raises(psycopg2.errors.DivisionByZero)
    with connect(database_url) as connection, connection.begin(), raised:
        list(bulk.stream_frames(connection, failing, ["n"], 100))
    assert not _copy_threads()


def test_a_reader_that_stops_early_cancels_the_query_and_leaves_the_connection_usable(database_url: str) -> None:
    endless = "SELECT generate_series(1, 100000000)::text AS n"  # streams (a set function in FROM would not)
    with connect(database_url) as connection:
        with connection.begin():
            stream = bulk.stream_frames(connection, endless, ["n"], 1000)
            assert len(next(stream)) == 1000
            stream.close()  # a generator closed mid-stream: the copy thread must not hang on the pipe
            assert not _copy_threads()
        assert connection.execute(sa.text("SELECT 42")).scalar() == 42


def test_rows_that_do_not_parse_mid_stream_raise_and_end_the_query(database_url: str) -> None:
    """The parser fails while the COPY still has millions of rows to send (blocked on a full pipe):
    the query is cancelled and the parser's error raised, within seconds, never a hang."""
    # `n` is not declared as text: the parser takes it for a number from its first block.
    changing = "SELECT CASE WHEN i < 50000 THEN i::text ELSE 'x' END AS n FROM generate_series(1, 5000000) AS i"

    def read() -> None:
        with connect(database_url) as connection, connection.begin():
            list(bulk.stream_frames(connection, changing, [], 1000))

    outcome = _errors_within_a_minute(read)
    assert len(outcome) == 1 and isinstance(outcome[0], pa.ArrowInvalid)
    assert not _copy_threads()


def _copies_running(database_url: str) -> int:
    with connect(database_url, autocommit=True) as observer:
        return observer.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
                " AND query LIKE 'COPY (%'"
            )
        ).scalar_one()


def test_a_frame_stream_runs_its_query_before_the_first_frame_is_asked_for(database_url: str) -> None:
    """Entering the block starts the query (its sort runs while the caller does something else);
    leaving it without reading a frame ends the query."""
    slow_then_rows = "SELECT (pg_sleep(0.2) IS NULL)::text AS n FROM generate_series(1, 100) AS i"
    with connect(database_url) as connection:
        with connection.begin(), bulk.frame_stream(connection, slow_then_rows, ["n"], 10):
            deadline = time.monotonic() + 10
            while not _copies_running(database_url):  # no frame asked for, and the query runs
                assert time.monotonic() < deadline, "the query did not start on entering the block"
                time.sleep(0.02)
        assert not _copy_threads()
        assert _copies_running(database_url) == 0
        assert connection.execute(sa.text("SELECT 42")).scalar() == 42


def test_a_cancel_that_fails_still_ends_the_copy_thread(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cancel could not be sent (the server unreachable, say): closing the pipe fails the copy
    thread's next write instead, so the thread ends and the caller leaves the stream cleanly."""

    def unreachable(connection: sa.Connection) -> None:
        raise psycopg2.OperationalError("could not send the cancel request")

    monkeypatch.setattr(bulk, "_cancel", unreachable)
    # Far more than the pipe and a parser block hold (the rest is drained by the rollback, uncancelled).
    endless = "SELECT generate_series(1, 3000000)::text AS n"

    def read_one_frame_and_leave() -> None:
        with (
            connect(database_url) as connection,
            connection.begin(),
            bulk.frame_stream(connection, endless, ["n"], 1000) as frames,
        ):
            assert len(next(frames)) == 1000

    left = _errors_within_a_minute(read_one_frame_and_leave)
    assert left == []  # leaving early is no error of the caller's, even when the cancel could not be sent
    assert not _copy_threads()
