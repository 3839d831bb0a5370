"""The notification outbox: every domain's notifications land in `public.notifications`.

Dispatch is one COPY into a temporary table and one ``INSERT ... ON CONFLICT (idempotency_key)
DO NOTHING``; only rows actually created are counted and handed to the delivery channels. The
in-app outbox row is itself the first channel (the mobile app reads it); further channels (push,
e-mail, SMS) plug in as :class:`NotificationChannel` objects and receive exactly the newly created
notifications, so a rerun never delivers twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd
import sqlalchemy as sa

from reminder_pipeline.core.bulk import copy_frame, read_frame
from reminder_pipeline.core.errors import InputRejected

OUTBOX_COLUMNS = [
    "idempotency_key",
    "kind",
    "recipient_role",
    "recipient_id",
    "assignment_id",
    "reference_date",
    "step",
    "days_without_contact",
]


class NotificationChannel(Protocol):
    """A delivery channel beyond the in-app outbox."""

    name: str

    def deliver(self, created: pd.DataFrame) -> None:
        """Deliver the newly created notifications (columns: id, kind, recipient_role, recipient_id,
        assignment_id). Raise to fail the run; the outbox rows stay for a retry."""


@dataclass(frozen=True)
class DispatchResult:
    requested: int
    created: int


def dispatch(
    connection: sa.Connection, notifications: pd.DataFrame, channels: Sequence[NotificationChannel] = ()
) -> DispatchResult:
    """Insert the notifications that do not exist yet, inside the caller's transaction."""
    missing = set(OUTBOX_COLUMNS) - set(notifications.columns)
    if missing:
        raise InputRejected(f"notifications frame lacks columns: {sorted(missing)}")
    if notifications.empty:
        return DispatchResult(requested=0, created=0)

    connection.execute(
        sa.text(
            "CREATE TEMP TABLE incoming_notifications ("
            " idempotency_key text NOT NULL, kind text NOT NULL, recipient_role text NOT NULL,"
            " recipient_id uuid NOT NULL, assignment_id uuid, reference_date date, step integer,"
            " days_without_contact integer) ON COMMIT DROP"
        )
    )
    copy_frame(connection, notifications[OUTBOX_COLUMNS], "incoming_notifications")
    # Sorted (bytewise, the cheap order) so that two writers that somehow overlap take row locks in
    # the same order and cannot deadlock. Created rows are kept only when a channel wants them.
    insert = (
        "INSERT INTO public.notifications"
        " (idempotency_key, kind, recipient_role, recipient_id, assignment_id, reference_date, step, payload)"
        " SELECT idempotency_key, kind, recipient_role, recipient_id, assignment_id, reference_date, step,"
        "  jsonb_build_object('days_without_contact', days_without_contact)"
        ' FROM incoming_notifications ORDER BY idempotency_key COLLATE "C"'
        " ON CONFLICT (idempotency_key) DO NOTHING"
    )
    if not channels:
        created = connection.execute(
            sa.text(f"WITH created AS ({insert} RETURNING 1) SELECT count(*) FROM created")
        ).scalar_one()
        return DispatchResult(requested=len(notifications), created=created)

    connection.execute(
        sa.text(
            "CREATE TEMP TABLE created_notifications ON COMMIT DROP AS WITH created AS"
            f" ({insert} RETURNING id, kind, recipient_role, recipient_id, assignment_id) SELECT * FROM created"
        )
    )
    created = connection.execute(sa.text("SELECT count(*) FROM created_notifications")).scalar_one()
    if created:
        frame = read_frame(connection, "SELECT * FROM created_notifications ORDER BY id")
        for channel in channels:
            channel.deliver(frame)
    return DispatchResult(requested=len(notifications), created=created)
