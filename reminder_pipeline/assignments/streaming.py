"""The reminder run as a stream of chunks, so memory stays flat however many assignments there are.

Active assignments are read in id order by one query (two for a full read of a large table),
streamed and cut into chunks of
`chunk_size` as they arrive (`repository.stream_active_assignments`); a thread decides each chunk
(`rules.decide_reminders`, vectorised) and prepares it for the outbox while the chunk before it
is dispatched, in a transaction of its own; only running totals are kept. A run killed between chunks has committed
whole chunks only; its rerun creates exactly what is missing, because every notification's
idempotency key is already decided by the rule. (A contact logged between a chunk's read and its
dispatch is no different from one logged just after: delivery expires a reminder whose gap ended.)
No Dagster here: the job (`assignments/jobs.py`) gives the loop its transactions and a callback
that counts each chunk on the run's log row inside that chunk's transaction.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field

import pandas as pd
import psycopg2.errors
import pyarrow as pa
import sqlalchemy as sa

from reminder_pipeline.assignments.repository import stream_active_assignments
from reminder_pipeline.assignments.rules import ReminderRules, decide_reminders
from reminder_pipeline.core import outbox

#: Assignments per chunk: at 1,000,000 assignments, 10,000 gave a peak of 288 MiB and 25,000 a peak of
#: 366 MiB in the same time (three chunks are in memory: read, queued, written); each chunk costs one
#: transaction (docs/benchmarks.md).
DEFAULT_CHUNK_SIZE = 10_000
#: A rerun for a date and rules an earlier successful run covered reads only the assignments whose
#: row (or mentor's row) changed since that run started, less this margin: a change is stamped when
#: its statement runs but seen by a run only once its transaction commits, so a transaction open
#: across the earlier run's start, for up to this long, is still read again.
RERUN_MARGIN = dt.timedelta(hours=6)
#: How many assignment ids a run keeps as its sample (the smallest, for metadata: ids, never names).
SAMPLE_SIZE = 5


@dataclass(frozen=True)
class Chunk:
    """One chunk, read, decided and made ready to write, with what the run's totals need of it:
    built by the reader thread, so that the writer only writes."""

    evaluated: int
    due: int
    due_by_kind: Counter[str]
    #: The chunk's smallest due assignment ids (at most `SAMPLE_SIZE`).
    sample_assignment_ids: list[str]
    prepared: outbox.Prepared

    @classmethod
    def of(cls, assignments: pd.DataFrame, as_of: dt.date, rules: ReminderRules) -> Chunk:
        due = decide_reminders(assignments, as_of, rules)
        return cls(
            evaluated=len(assignments),
            due=len(due),
            due_by_kind=Counter(due["kind"].value_counts().to_dict()),
            sample_assignment_ids=pa.array(due["assignment_id"]).unique().sort()[:SAMPLE_SIZE].to_pylist(),
            prepared=outbox.prepare(due),
        )


@dataclass
class StreamResult:
    """Running totals of a streamed run: all a run keeps in memory besides its current chunk."""

    chunks: int = 0
    evaluated: int = 0
    due: int = 0
    created: int = 0
    due_by_kind: Counter[str] = field(default_factory=Counter)
    sample_assignment_ids: list[str] = field(default_factory=list)
    #: How many queries read the assignments: 1, or 2 for a split read (`repository`); set by the
    #: reading thread before it hands over its first chunk.
    read_queries: int = 0

    def add(self, chunk: Chunk, created: int) -> None:
        self.chunks += 1
        self.evaluated += chunk.evaluated
        self.due += chunk.due
        self.created += created
        self.due_by_kind.update(chunk.due_by_kind)
        self.sample_assignment_ids = sorted({*self.sample_assignment_ids, *chunk.sample_assignment_ids})[:SAMPLE_SIZE]


def remind_in_chunks(
    transaction: Callable[[], AbstractContextManager[sa.Connection]],
    read_transaction: Callable[[], AbstractContextManager[sa.Connection]],
    as_of: dt.date,
    rules: ReminderRules,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    dry_run: bool = False,
    changed_since: dt.datetime | None = None,
    on_chunk: Callable[[sa.Connection, int], None] | None = None,
    after_read: Callable[[], None] | None = None,
) -> Iterator[StreamResult]:
    """Run the rule over every active assignment (with `changed_since`, only those whose assignment
    or mentor changed since then), one `transaction()` per chunk (two for a chunk some of whose keys
    exist: `_write`); yields the running totals after
    each committed chunk. The reading runs in `read_transaction()`s (two for a split read: see
    `repository.stream_active_assignments`), each of which must give a connection of its own.
    `on_chunk(connection, created)` runs inside each chunk's transaction, after its dispatch (the
    job counts the chunk on its log row there). `after_read()` runs in the reading thread once the
    read is over, while the last chunks are written (the job evaluates its input checks there); an
    error it raises fails the run.

    The next chunk is read, decided and prepared (`_read_ahead`, a thread with a connection of its
    own) while this one is written, so that the database writes all the time and the run costs
    about what its writes cost. At most `READ_AHEAD` chunks wait, so memory stays flat."""
    result = StreamResult()
    def count_queries(queries: int) -> None:
        result.read_queries = queries

    with _read_ahead(read_transaction, as_of, rules, chunk_size, changed_since, after_read, count_queries) as chunks:
        for chunk in chunks:
            result.add(chunk, _write(transaction, chunk.prepared, dry_run=dry_run, on_chunk=on_chunk))
            yield result
    if result.chunks == 0:
        yield result  # nothing to read: the totals, all zero


def _write(
    transaction: Callable[[], AbstractContextManager[sa.Connection]],
    prepared: outbox.Prepared,
    *,
    dry_run: bool,
    on_chunk: Callable[[sa.Connection, int], None] | None,
) -> int:
    """One chunk, in a transaction of its own: how many notifications it created. First one bare
    COPY (a first run's keys are all new), with no savepoint around it: two round trips fewer per
    chunk (0.25 s of 15 at a million assignments). A key that exists (a rerun, another writer)
    aborts that transaction, and `outbox.insert_missing` writes the chunk again in a new one,
    skipping the keys that exist (no second COPY: a day's run repeats most of the week's keys). A
    dry run only counts, with `outbox.dispatch`."""
    if dry_run or not prepared.table.num_rows:
        return _in_transaction(transaction, on_chunk, lambda c: outbox.dispatch(c, prepared, dry_run=dry_run).created)
    try:
        return _in_transaction(transaction, on_chunk, lambda c: outbox.insert_all(c, prepared))
    except psycopg2.errors.UniqueViolation:
        pass  # rolled back: nothing of it was written or counted
    return _in_transaction(transaction, on_chunk, lambda c: outbox.insert_missing(c, prepared))


def _in_transaction(
    transaction: Callable[[], AbstractContextManager[sa.Connection]],
    on_chunk: Callable[[sa.Connection, int], None] | None,
    write: Callable[[sa.Connection], int],
) -> int:
    """`write` and `on_chunk` with what it created, in one `transaction()`."""
    with transaction() as connection:
        created = write(connection)
        if on_chunk is not None:
            on_chunk(connection, created)
    return created


#: Chunks read and decided ahead of the one being written.
READ_AHEAD = 1
_DONE = object()


@contextmanager
def _read_ahead(
    transaction: Callable[[], AbstractContextManager[sa.Connection]],
    as_of: dt.date,
    rules: ReminderRules,
    chunk_size: int,
    changed_since: dt.datetime | None,
    after_read: Callable[[], None] | None = None,
    on_queries: Callable[[int], None] | None = None,
) -> Iterator[Iterator[Chunk]]:
    """Chunks (`Chunk.of`: read, decided, prepared for the outbox, summed up), produced by a thread
    (which then calls `after_read`); an error there is raised here, and leaving the block early
    stops the thread."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with (
                transaction() as connection,
                closing(
                    stream_active_assignments(
                        connection,
                        chunk_size,
                        changed_since=changed_since,
                        head_transaction=transaction,
                        on_queries=on_queries,
                    )
                ) as chunks,
            ):
                for assignments in chunks:
                    if not put(Chunk.of(assignments, as_of, rules)):
                        return
            if after_read is not None and not stop.is_set():  # not for a run already failing
                after_read()
        except BaseException as error:  # handed to the writer, which raises it in the run
            put(error)
            return
        put(_DONE)

    def next_item() -> object:
        while True:
            try:
                return handoff.get(timeout=1)
            except queue.Empty:
                if not reader.is_alive() and handoff.empty():  # cannot happen: every exit hands something
                    raise RuntimeError("the chunk reader ended without a result") from None

    def consume() -> Iterator[Chunk]:
        while (item := next_item()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    reader = threading.Thread(target=produce, name="reminder-chunk-reader", daemon=True)
    reader.start()
    try:
        yield consume()
    finally:
        stop.set()
        reader.join()
