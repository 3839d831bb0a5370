"""Reading assignments for the reminder rules: one set-based query, streamed with COPY."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack

import pandas as pd
import sqlalchemy as sa

from reminder_pipeline.core.bulk import frame_stream, read_frame, stream_frames
from reminder_pipeline.core.settings import LOCAL_TIMEZONE

# Active assignments with their mentor's status and coordinator. Closed assignments are never due,
# so they are not even read; paused mentors are read and left to the rules (and counted).
ACTIVE_ASSIGNMENTS_SQL = f"""
SELECT a.id AS assignment_id,
       a.mentor_id,
       m.coordinator_id,
       a.status AS assignment_status,
       m.status AS mentor_status,
       (a.assigned_at AT TIME ZONE '{LOCAL_TIMEZONE}')::date AS assigned_on,
       a.last_contact_date
FROM public.assignments AS a
JOIN public.peer_mentors AS m ON m.id = a.mentor_id
WHERE a.status = 'active'
"""


#: A full read of at least this many assignments (the planner's count) is split in two queries.
SPLIT_FROM_ROWS = 200_000
#: The share of the ids the first of them reads: at a million assignments writing that tenth takes
#: about 1 s, longer than the rest's sort before its first row (about 0.5 s, measured 2026-12-04);
#: a twentieth (about 0.5 s to write) would leave the writer waiting for the rest.
HEAD_PERCENT = 10
#: Where the first query ends: the id at `:percent` of the id column's histogram (statistics that
#: autovacuum's ANALYZE keeps; none yet, no split), when the table has `:minimum` rows or more.
HEAD_BOUNDARY_SQL = """
SELECT (s.histogram_bounds::text::uuid[])[1 + :percent * (cardinality(s.histogram_bounds::text::uuid[]) - 1) / 100]
FROM pg_catalog.pg_stats AS s
WHERE s.schemaname = 'public' AND s.tablename = 'assignments' AND s.attname = 'id' AND NOT s.inherited
  AND (SELECT c.reltuples FROM pg_catalog.pg_class AS c WHERE c.oid = 'public.assignments'::regclass) >= :minimum
"""

#: Every column is read as text (ids, statuses, ISO dates); the rules parse the dates.
COLUMNS = [
    "assignment_id",
    "mentor_id",
    "coordinator_id",
    "assignment_status",
    "mentor_status",
    "assigned_on",
    "last_contact_date",
]


def _active_assignments_sql(
    changed_since: dt.datetime | None = None, *, from_id: uuid.UUID | None = None, before_id: uuid.UUID | None = None
) -> str:
    """Active assignments in id order; with `changed_since`, only those whose assignment or mentor
    row changed since then (`changed_at`); with `from_id` / `before_id`, only that range of ids.
    Every value is formatted from a datetime or a UUID: never text from outside."""
    sql = ACTIVE_ASSIGNMENTS_SQL
    if changed_since is not None:
        since = changed_since.isoformat()
        sql += f" AND (a.changed_at >= '{since}'::timestamptz OR m.changed_at >= '{since}'::timestamptz)"
    if from_id is not None:
        sql += f" AND a.id >= '{from_id}'::uuid"
    if before_id is not None:
        sql += f" AND a.id < '{before_id}'::uuid"
    return f"{sql} ORDER BY a.id"


def load_active_assignments(connection: sa.Connection, *, changed_since: dt.datetime | None = None) -> pd.DataFrame:
    """All active assignments (or the changed ones) in one frame."""
    return read_frame(connection, _active_assignments_sql(changed_since), dtypes=dict.fromkeys(COLUMNS, "str"))


def stream_active_assignments(
    connection: sa.Connection,
    chunk_size: int,
    *,
    changed_since: dt.datetime | None = None,
    head_transaction: Callable[[], AbstractContextManager[sa.Connection]] | None = None,
    split_from_rows: int | None = None,
    on_queries: Callable[[int], None] | None = None,
) -> Iterator[pd.DataFrame]:
    """The same rows as `load_active_assignments`, `chunk_size` at a time, in id order.

    One hash join and one sort read a million assignments in about 2 s, where one keyset query per
    chunk spent about 10 s probing the mentors' index (docs/benchmarks.md). The join and the sort
    run in parallel workers, but still take about 0.6 s before the first row, while the writer has
    nothing to write. So a full read of a large table (`split_from_rows` rows or more by the
    planner's count, `SPLIT_FROM_ROWS` unless given) is two queries: the first `HEAD_PERCENT` of
    the ids (by the column's statistics) on a connection of its own (`head_transaction()`), read in
    the index's order with a mentor lookup per row (no hash, no sort: its first chunk is out
    0.09-0.15 s after the read starts at a million, instead of 0.23-0.25 s), while the rest's sort
    runs; then the rest. The head's last chunk may be short. Each assignment is read once, with its
    mentor as its own query saw them; a change that commits between the two queries is read again by
    the next run (it is after this run's start). `on_queries(n)` is told, before the first frame,
    how many queries the read takes (1, or 2 when split), for the run's metadata."""
    _prepare_read(connection)
    boundary = None
    if head_transaction is not None and changed_since is None:
        minimum = SPLIT_FROM_ROWS if split_from_rows is None else split_from_rows
        boundary = connection.execute(
            sa.text(HEAD_BOUNDARY_SQL), {"percent": HEAD_PERCENT, "minimum": minimum}
        ).scalar()
    if on_queries is not None:
        on_queries(1 if boundary is None else 2)
    if boundary is None:
        yield from stream_frames(connection, _active_assignments_sql(changed_since), COLUMNS, chunk_size)
        return
    boundary = uuid.UUID(str(boundary))
    # Held from now, as one query would hold it: a migration that needs these tables exclusively
    # waits for the whole read, rather than slipping in between the head and the rest.
    connection.execute(sa.text("LOCK TABLE public.assignments, public.peer_mentors IN ACCESS SHARE MODE"))
    with ExitStack() as rest_scope:
        rest = None
        with head_transaction() as head:
            _prepare_read(head, in_index_order=True)
            with frame_stream(head, _active_assignments_sql(before_id=boundary), COLUMNS, chunk_size) as head_frames:
                for frame in head_frames:
                    yield frame
                    if rest is None:  # the first chunk is on its way: the rest's sort runs while the head is written
                        rest = rest_scope.enter_context(_rest(connection, boundary, chunk_size))
        if rest is None:  # the head was empty
            rest = rest_scope.enter_context(_rest(connection, boundary, chunk_size))
        yield from rest


def _rest(
    connection: sa.Connection, boundary: uuid.UUID, chunk_size: int
) -> AbstractContextManager[Iterator[pd.DataFrame]]:
    return frame_stream(connection, _active_assignments_sql(from_id=boundary), COLUMNS, chunk_size)


def _prepare_read(connection: sa.Connection, *, in_index_order: bool = False) -> None:
    """Settings for the reading transaction: parallel work before the first row, the sort in memory,
    and ISO dates whatever the role's DateStyle (the rules parse them as such); `in_index_order`
    for a read whose first rows matter more than its total (`INDEX_ORDER`)."""
    settings = (*PARALLEL_BEFORE_THE_FIRST_ROW, f"work_mem = '{SORT_MEMORY}'", "DateStyle = 'ISO, YMD'")
    statements = [f"SET LOCAL {setting}" for setting in (*settings, *(INDEX_ORDER if in_index_order else ()))]
    connection.execute(sa.text("; ".join(statements)))  # one round trip


#: The reading query's sort memory (a million rows sort in about 70 MB; more spills to disk).
SORT_MEMORY = "64MB"
#: The planner's costs say a parallel plan does not pay for rows it must pass through a queue; here
#: it does, because nothing else can run until the sort is done.
PARALLEL_BEFORE_THE_FIRST_ROW = ("parallel_setup_cost = 0", "parallel_tuple_cost = 0")
#: The plan of a read in the id index's order, each mentor looked up by its key: the planner
#: would hash every mentor and sort, which is cheaper in all (0.35 s against 0.5 s for a tenth of a
#: million) but gives no row before the end of it (0.3 s against 0.01 s). One process, not three:
#: its rows come faster than they are written, and the reader thread needs the other core.
INDEX_ORDER = (
    "max_parallel_workers_per_gather = 0",
    "enable_hashjoin = off",
    "enable_mergejoin = off",
    "enable_sort = off",
    "enable_bitmapscan = off",
    "enable_seqscan = off",
)
