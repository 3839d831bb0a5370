"""Set-based transfer between PostgreSQL and pandas through COPY (no per-row statements).

Both directions go through Apache Arrow's CSV reader and writer (multi-threaded C++), and the
upload is cut into batches so that memory stays flat however many rows there are.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa

UPLOAD_BATCH_ROWS = 200_000
#: The pandas type text columns are read as: Arrow-backed, NaN where missing.
TEXT = pd.StringDtype(na_value=float("nan"))


def read_frame(connection: sa.Connection, select_sql: str, dtypes: dict[str, str] | None = None) -> pd.DataFrame:
    """Run one SELECT and return its rows as a DataFrame, streamed with COPY ... TO STDOUT (CSV)."""
    buffer = io.BytesIO()
    with connection.connection.cursor() as cursor:
        cursor.copy_expert(f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    buffer.seek(0)
    column_types = {name: pa.string() for name, kind in (dtypes or {}).items() if kind == "str"}
    table = pa_csv.read_csv(
        buffer, convert_options=pa_csv.ConvertOptions(column_types=column_types, strings_can_be_null=True)
    )
    del buffer
    return table.to_pandas(types_mapper={pa.string(): TEXT}.get)


#: How much CSV the streaming reader parses at a time.
STREAM_BLOCK_BYTES = 256 << 10


def stream_frames(
    connection: sa.Connection, select_sql: str, string_columns: list[str], rows_per_frame: int
) -> Iterator[pd.DataFrame]:
    """Run one SELECT and yield its rows as DataFrames of `rows_per_frame` rows (the last one fewer),
    in the query's order, while the query is still sending: one statement however many rows, in
    memory only a frame and a parser's block at a time. Every column is read as text
    (`string_columns` names them, in order)."""
    with frame_stream(connection, select_sql, string_columns, rows_per_frame) as frames:
        yield from frames


@contextmanager
def frame_stream(
    connection: sa.Connection, select_sql: str, string_columns: list[str], rows_per_frame: int
) -> Iterator[Iterator[pd.DataFrame]]:
    """`stream_frames`, with the query started on entering the block rather than at the first frame,
    so that its work (a sort before the first row, say) runs while the caller does something else.
    The COPY runs in a thread that writes into a pipe, which Arrow's streaming CSV reader parses (a
    query that gets ahead of the reader waits on the full pipe); leaving the block ends the COPY."""
    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    def copy_out() -> None:
        try:
            with os.fdopen(write_end, "wb") as sink, connection.connection.cursor() as cursor:
                cursor.copy_expert(f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", sink)
        except BaseException as error:  # raised by the caller, below
            failure.append(error)

    copier = threading.Thread(target=copy_out, name="copy-out", daemon=True)
    copier.start()
    source = os.fdopen(read_end, "rb")
    types = {name: pa.string() for name in string_columns}

    def end_copy() -> bool:
        """Stop a COPY still sending (cancel it, read what it still sends; if the cancel cannot be
        sent, close the pipe so that the thread's next write fails) and wait for its thread; True
        if it had to be cancelled. Never joins first: a COPY blocked on a full pipe would
        never end, and a backend blocked on its socket ignores cancels and timeouts."""
        cancelled = copier.is_alive()
        if cancelled:
            try:
                _cancel(connection)
            except Exception:  # the cancel did not reach the server: the thread's next write fails instead
                source.close()
            else:
                while source.read(1 << 16):
                    pass
        copier.join()
        return cancelled

    def frames() -> Iterator[pd.DataFrame]:
        pending: list[pa.RecordBatch] = []
        held = 0
        try:
            reader = pa_csv.open_csv(
                source,
                read_options=pa_csv.ReadOptions(block_size=STREAM_BLOCK_BYTES, use_threads=False),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(column_types=types, strings_can_be_null=True),
            )
            for batch in reader:
                pending.append(batch)
                held += batch.num_rows
                while held >= rows_per_frame:
                    table = pa.Table.from_batches(pending)
                    yield _to_pandas(table.slice(0, rows_per_frame))
                    rest = table.slice(rows_per_frame)
                    pending, held = rest.to_batches(), rest.num_rows
        except pa.ArrowInvalid:
            if not end_copy() and failure:  # the COPY failed (nothing came, or it stopped mid-row)
                raise failure[0] from None
            raise  # the rows themselves did not parse
        end_copy()
        if failure:
            raise failure[0]
        if held:
            yield _to_pandas(pa.Table.from_batches(pending))

    try:
        yield frames()
    finally:
        end_copy()  # left early: the query is cancelled
        source.close()


def _cancel(connection: sa.Connection) -> None:
    """Ask the server to cancel the connection's running statement (a connection of its own)."""
    connection.connection.dbapi_connection.cancel()


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper={pa.string(): TEXT}.get)


def as_csv(frame: pd.DataFrame) -> list[bytes]:
    """`frame` as CSV (no header), a batch of rows per buffer: what `copy_csv` loads."""
    return [
        _csv(pa.Table.from_pandas(frame.iloc[start : start + UPLOAD_BATCH_ROWS], preserve_index=False, nthreads=1))
        for start in range(0, len(frame), UPLOAD_BATCH_ROWS)
    ]


def table_as_csv(table: pa.Table) -> list[bytes]:
    """`as_csv` of an Arrow table."""
    return [_csv(table.slice(start, UPLOAD_BATCH_ROWS)) for start in range(0, table.num_rows, UPLOAD_BATCH_ROWS)]


def _csv(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer, write_options=pa_csv.WriteOptions(include_header=False))
    return buffer.getvalue()


#: How much a COPY FROM sends per call into the driver: psycopg2's default of 8 KiB takes Python's
#: lock for every block, so a busy thread beside it (the next chunk being prepared) slows the COPY.
COPY_IN_BLOCK_BYTES = 1 << 20


def copy_csv(connection: sa.Connection, table: str, columns: list[str], batches: list[bytes]) -> None:
    """Load CSV buffers (`as_csv`) into `table`'s `columns` with COPY."""
    names = ", ".join(f'"{column}"' for column in columns)
    statement = f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)"
    with connection.connection.cursor() as cursor:
        for batch in batches:
            cursor.copy_expert(statement, io.BytesIO(batch), size=COPY_IN_BLOCK_BYTES)


def copy_frame(connection: sa.Connection, frame: pd.DataFrame, table: str) -> None:
    """Load `frame` into `table` (whose columns are named like the frame's) with COPY, a batch at a time."""
    copy_csv(connection, table, list(frame.columns), as_csv(frame))


def stage(connection: sa.Connection, frame: pd.DataFrame, table: str, columns: Mapping[str, str]) -> None:
    """Load `frame`'s `columns` (name -> SQL type) into a new temporary table, dropped at commit: the
    one set a statement then joins against (no row-by-row round trips)."""
    stage_csv(connection, as_csv(frame[list(columns)]), table, columns)


def stage_csv(connection: sa.Connection, batches: list[bytes], table: str, columns: Mapping[str, str]) -> None:
    """`stage` of CSV buffers (`as_csv`) already made, whose fields are `columns`, in order."""
    ddl = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
    connection.execute(sa.text(f"CREATE TEMP TABLE {table} ({ddl}) ON COMMIT DROP"))
    copy_csv(connection, table, list(columns), batches)
