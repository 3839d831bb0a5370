"""Set-based transfer between PostgreSQL and pandas through COPY (no per-row statements)."""

from __future__ import annotations

import io

import pandas as pd
import sqlalchemy as sa


def read_frame(connection: sa.Connection, select_sql: str, dtypes: dict[str, str] | None = None) -> pd.DataFrame:
    """Run one SELECT and return its rows as a DataFrame, streamed with COPY ... TO STDOUT (CSV)."""
    buffer = io.StringIO()
    with connection.connection.cursor() as cursor:
        cursor.copy_expert(f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    buffer.seek(0)
    return pd.read_csv(buffer, dtype=dtypes, keep_default_na=False, na_values=[""])


def copy_frame(connection: sa.Connection, frame: pd.DataFrame, table: str) -> None:
    """Load `frame` into `table` (whose columns are named like the frame's) with one COPY."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    columns = ", ".join(f'"{column}"' for column in frame.columns)
    with connection.connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
