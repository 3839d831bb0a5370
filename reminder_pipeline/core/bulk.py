"""Set-based transfer between PostgreSQL and pandas through COPY (no per-row statements).

Both directions go through Apache Arrow's CSV reader and writer (multi-threaded C++), and the
upload is cut into batches so that memory stays flat however many rows there are.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa

UPLOAD_BATCH_ROWS = 200_000


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
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype(na_value=float("nan"))}.get)


def copy_frame(connection: sa.Connection, frame: pd.DataFrame, table: str) -> None:
    """Load `frame` into `table` (whose columns are named like the frame's) with COPY, a batch at a time."""
    columns = ", ".join(f'"{column}"' for column in frame.columns)
    statement = f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)"
    options = pa_csv.WriteOptions(include_header=False)
    with connection.connection.cursor() as cursor:
        for start in range(0, len(frame), UPLOAD_BATCH_ROWS):
            batch = pa.Table.from_pandas(frame.iloc[start : start + UPLOAD_BATCH_ROWS], preserve_index=False)
            buffer = io.BytesIO()
            pa_csv.write_csv(batch, buffer, write_options=options)
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)


def stage(connection: sa.Connection, frame: pd.DataFrame, table: str, columns: Mapping[str, str]) -> None:
    """Load `frame`'s `columns` (name -> SQL type) into a new temporary table, dropped at commit: the
    one set a statement then joins against (no row-by-row round trips)."""
    ddl = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
    connection.execute(sa.text(f"CREATE TEMP TABLE {table} ({ddl}) ON COMMIT DROP"))
    copy_frame(connection, frame[list(columns)], table)
