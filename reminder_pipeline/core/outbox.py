"""The notification outbox: every domain's notifications land in `public.notifications`, written here
only, with payloads built from the kinds' declarations (`notification_kinds.py`).

Dispatch is one COPY into a temporary table and one ``INSERT ... ON CONFLICT (idempotency_key)
DO NOTHING``: only rows actually created are counted, so a rerun never creates (or sends) twice.
Nothing is sent here: the `notification_delivery` job takes due rows from the outbox and sends them
(`reminder_pipeline/delivery/`), after the transaction that created them has committed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from reminder_pipeline.core import notification_kinds
from reminder_pipeline.core.bulk import stage
from reminder_pipeline.core.errors import InputRejected
from reminder_pipeline.core.notification_kinds import SQL_TYPES

#: What every outbox row carries, with its type; a kind's payload keys (its declaration's
#: variables) come on top.
OUTBOX_COLUMN_TYPES = {
    "idempotency_key": "text NOT NULL",
    "kind": "text NOT NULL",
    "recipient_role": "text NOT NULL",
    "recipient_id": "uuid NOT NULL",
    "assignment_id": "uuid",
    "reference_date": "date",
    "step": "integer",
}
OUTBOX_COLUMNS = list(OUTBOX_COLUMN_TYPES)


@dataclass(frozen=True)
class DispatchResult:
    requested: int
    created: int


def _payload_columns(notifications: pd.DataFrame) -> dict[str, str]:
    """The payload keys (with their types) of the kinds in the frame, which must all be declared."""
    names = sorted(notifications["kind"].unique()) if "kind" in notifications.columns else []
    kinds = [notification_kinds.kind_named(name) for name in names]
    undeclared = [name for name, kind in zip(names, kinds, strict=True) if kind is None]
    if undeclared:
        raise InputRejected(f"notifications frame has undeclared kinds: {undeclared}")
    return {key: key_type for kind in kinds if kind is not None for key, key_type in kind.payload_keys().items()}


def dispatch(connection: sa.Connection, notifications: pd.DataFrame, *, dry_run: bool = False) -> DispatchResult:
    """Insert the notifications that do not exist yet, inside the caller's transaction. A dry run
    counts them instead: an INSERT rolled back would still use up identity values."""
    if notifications.empty:
        return DispatchResult(requested=0, created=0)
    payload = _payload_columns(notifications)
    missing = set(OUTBOX_COLUMNS + list(payload)) - set(notifications.columns)
    if missing:
        raise InputRejected(f"notifications frame lacks columns: {sorted(missing)}")

    columns = {**OUTBOX_COLUMN_TYPES, **{key: SQL_TYPES[kind] for key, kind in payload.items()}}
    stage(connection, notifications, "incoming_notifications", columns)
    if dry_run:
        would_create = connection.execute(
            sa.text(
                "SELECT count(DISTINCT i.idempotency_key) FROM incoming_notifications AS i WHERE NOT EXISTS"
                " (SELECT 1 FROM public.notifications AS n WHERE n.idempotency_key = i.idempotency_key)"
            )
        ).scalar_one()
        return DispatchResult(requested=len(notifications), created=would_create)
    payload_pairs = ", ".join(f"'{key}', {key}" for key in payload)
    # Sorted (bytewise, the cheap order) so that two writers that somehow overlap take row locks in
    # the same order and cannot deadlock.
    created = connection.execute(
        sa.text(
            "WITH created AS ("
            " INSERT INTO public.notifications"
            " (idempotency_key, kind, recipient_role, recipient_id, assignment_id, reference_date, step, payload)"
            " SELECT idempotency_key, kind, recipient_role, recipient_id, assignment_id, reference_date, step,"
            f"  jsonb_build_object({payload_pairs})"
            ' FROM incoming_notifications ORDER BY idempotency_key COLLATE "C"'
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1)"
            " SELECT count(*) FROM created"
        )
    ).scalar_one()
    return DispatchResult(requested=len(notifications), created=created)
