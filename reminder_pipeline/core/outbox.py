"""The notification outbox: every domain's notifications land in `public.notifications`, written here
only, with payloads built from the kinds' declarations (`notification_kinds.py`).

A notification's idempotency key is what it is about (`KEY_COLUMNS`: the source row, its kind, the
recipient's role, and for a recurring notice its period and step), unique in the table (migration
0014). Dispatch writes only keys that do not exist yet and counts only rows actually created, so a
rerun never creates (or sends) twice. The usual case, a set of new keys, costs one COPY straight
into the table, in a savepoint; if any key exists already (a rerun, another writer), the COPY fails
on the unique key at that row, is rolled back, and the set is written again with
``INSERT ... ON CONFLICT DO NOTHING`` from a staged copy. The database's unique key decides either
way; no key is looked up first. Nothing is sent here: the `notification_delivery` job takes due
rows from the outbox and sends them (`reminder_pipeline/delivery/`), after the transaction that
created them has committed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg2.errors
import sqlalchemy as sa

from reminder_pipeline.core import notification_kinds
from reminder_pipeline.core.bulk import as_csv, copy_csv, stage
from reminder_pipeline.core.errors import InputRejected

#: What every outbox row carries, with its type; a kind's payload keys (its declaration's
#: variables and references) come on top.
OUTBOX_COLUMN_TYPES = {
    "source_id": "uuid NOT NULL",
    "kind": "text NOT NULL",
    "recipient_role": "text NOT NULL",
    "recipient_id": "uuid NOT NULL",
    "assignment_id": "uuid",
    "reference_date": "date",
    "step": "integer",
}
OUTBOX_COLUMNS = list(OUTBOX_COLUMN_TYPES)
#: The idempotency key: unique, NULLs equal (`notifications_key`).
KEY_COLUMNS = ["source_id", "kind", "recipient_role", "reference_date", "step"]
#: The key of notification `n` as one text, for reading and comparing (tests, the benchmark).
KEY_TEXT_SQL = (
    "(n.source_id || ':' || n.kind || ':' || n.recipient_role || ':'"
    " || coalesce(to_char(n.reference_date, 'YYYY-MM-DD'), '') || ':' || coalesce(n.step::text, ''))"
)
#: The columns written, in COPY order: the key, the recipient, and the payload as jsonb.
_WRITTEN = [*OUTBOX_COLUMNS, "payload"]
#: The key order `prepare` sorts by (bytewise text, NULLs first), in SQL: both paths lock alike.
_KEY_ORDER = 'source_id, kind COLLATE "C", recipient_role COLLATE "C", reference_date NULLS FIRST, step NULLS FIRST'
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


@dataclass(frozen=True)
class DispatchResult:
    requested: int
    created: int


@dataclass(frozen=True)
class Prepared:
    """A frame made ready to write, with no database: checked, one row per key, payload as JSON text.
    Built by `prepare`, so that a caller can do this work while another chunk is being written."""

    requested: int
    rows: pd.DataFrame
    #: The rows as CSV, in `_WRITTEN` order: what the COPY sends.
    csv: list[bytes]


def _payload_columns(notifications: pd.DataFrame) -> dict[str, str]:
    """The payload keys (with their types) of the kinds in the frame, which must all be declared."""
    names = sorted(notifications["kind"].unique()) if "kind" in notifications.columns else []
    kinds = [notification_kinds.kind_named(name) for name in names]
    undeclared = [name for name, kind in zip(names, kinds, strict=True) if kind is None]
    if undeclared:
        raise InputRejected(f"notifications frame has undeclared kinds: {undeclared}")
    return {key: key_type for kind in kinds if kind is not None for key, key_type in kind.payload_keys().items()}


def _json_values(values: pd.Series, value_type: str, key: str) -> pd.Series:
    """One payload key's values as JSON text (`null` where missing), vectorised; a value that is not
    of the declared type is refused, naming the key, never echoing the value."""
    missing = values.isna().to_numpy()
    try:
        if value_type == "int":
            text = pd.Series(pd.array(values, dtype="Int64"), index=values.index).astype(str)
        elif value_type == "date":
            text = '"' + pd.to_datetime(values, format="mixed").dt.strftime("%Y-%m-%d") + '"'
        else:
            text = values.astype(str).str.lower()
            if not text[~missing].str.fullmatch(_UUID).all():
                raise ValueError(key)
            text = '"' + text + '"'
    except (TypeError, ValueError):
        raise InputRejected(f"notifications frame: payload key {key} holds a value not of type {value_type}") from None
    return pd.Series(np.where(missing, "null", text), index=values.index)


def prepare(notifications: pd.DataFrame) -> Prepared:
    """Check the frame, keep one row per key (the first), and build each payload from its kind's
    declared keys (the union over the frame's kinds; a key a row's kind lacks is null)."""
    payload = _payload_columns(notifications)
    missing = set(OUTBOX_COLUMNS + list(payload)) - set(notifications.columns)
    if missing:
        raise InputRejected(f"notifications frame lacks columns: {sorted(missing)}")
    unique = notifications.drop_duplicates(subset=KEY_COLUMNS)
    rows = unique[OUTBOX_COLUMNS].copy()
    rows["source_id"] = rows["source_id"].astype(str).str.lower()  # text order is then the uuid order
    parts = [f'"{key}": ' + _json_values(unique[key], key_type, key) for key, key_type in payload.items()]
    rows["payload"] = "{" + functools.reduce(lambda left, right: left + ", " + right, parts) + "}" if parts else "{}"
    # Sorted by key so that two writers that somehow overlap take row locks in the same order.
    rows = rows.sort_values(KEY_COLUMNS, kind="stable", na_position="first")[_WRITTEN]
    return Prepared(requested=len(notifications), rows=rows, csv=as_csv(rows))


def _existing_keys(connection: sa.Connection, rows: pd.DataFrame) -> pd.Series:
    """Which of `rows` (a prepared frame) already exist, as a boolean mask: index probes on the
    key's leading column for the frame's sources (one parameter: a list as text)."""
    sources = ",".join(pd.unique(rows["source_id"].astype(str)))
    existing = connection.execute(
        sa.text(
            f"SELECT {KEY_TEXT_SQL} FROM public.notifications AS n"
            " WHERE n.source_id = ANY(CAST(string_to_array(:sources, ',') AS uuid[]))"
        ),
        {"sources": sources},
    ).scalars()
    found = set(existing)
    if not found:
        return pd.Series(False, index=rows.index)
    return key_text(rows).isin(found)


def key_text(rows: pd.DataFrame) -> pd.Series:
    """`KEY_TEXT_SQL`, computed on a frame of notifications."""
    reference = pd.to_datetime(rows["reference_date"], format="mixed").dt.strftime("%Y-%m-%d").fillna("")
    step = pd.Series(pd.array(rows["step"], dtype="Int64"), index=rows.index).astype("string").fillna("")
    source = rows["source_id"].astype(str).str.lower()
    return source + ":" + rows["kind"] + ":" + rows["recipient_role"] + ":" + reference + ":" + step


def dispatch(
    connection: sa.Connection, notifications: pd.DataFrame | Prepared, *, dry_run: bool = False
) -> DispatchResult:
    """Insert the notifications that do not exist yet, inside the caller's transaction. A dry run
    counts them instead, writing nothing."""
    prepared = notifications if isinstance(notifications, Prepared) else None
    if prepared is None:
        if notifications.empty:
            return DispatchResult(requested=0, created=0)
        prepared = prepare(notifications)
    rows = prepared.rows
    if rows.empty:
        return DispatchResult(requested=prepared.requested, created=0)
    if dry_run:
        return DispatchResult(requested=prepared.requested, created=int((~_existing_keys(connection, rows)).sum()))
    try:
        with connection.begin_nested():
            copy_csv(connection, "public.notifications", _WRITTEN, prepared.csv)
        created = len(rows)
    except psycopg2.errors.UniqueViolation:
        created = _insert_missing(connection, rows)
    return DispatchResult(requested=prepared.requested, created=created)


def _insert_missing(connection: sa.Connection, rows: pd.DataFrame) -> int:
    """The slow path, when another writer got in first: insert what is still missing, key by key."""
    stage(connection, rows, "incoming_notifications", {**OUTBOX_COLUMN_TYPES, "payload": "jsonb NOT NULL"})
    columns = ", ".join(_WRITTEN)
    created = connection.execute(
        sa.text(
            "WITH created AS ("
            f" INSERT INTO public.notifications ({columns}) SELECT {columns} FROM incoming_notifications"
            f" ORDER BY {_KEY_ORDER}"
            f" ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO NOTHING RETURNING 1)"
            " SELECT count(*) FROM created"
        )
    ).scalar_one()
    connection.execute(sa.text("DROP TABLE incoming_notifications"))  # another dispatch may follow
    return created
