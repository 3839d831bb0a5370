"""The notification outbox: every domain's notifications land in `public.notifications`.

Dispatch is one COPY into a temporary table and one ``INSERT ... ON CONFLICT (idempotency_key)
DO NOTHING``: only rows actually created are counted, so a rerun never creates (or sends) twice.
Nothing is sent here: the `notification_delivery` job takes due rows from the outbox and sends them
(`reminder_pipeline/delivery/`), after the transaction that created them has committed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from reminder_pipeline.core.bulk import copy_frame
from reminder_pipeline.core.errors import InputRejected

#: Every kind of notification the domains create (the delivery templates cover each).
ASSIGNMENT_REMINDER = "assignment_follow_up_reminder"
ASSIGNMENT_ESCALATION = "assignment_follow_up_escalation"
CERTIFICATION_EXPIRY_REMINDER = "certification_expiry_reminder"
MENTOR_AUTO_PAUSED = "mentor_auto_paused"
MENTOR_REACTIVATED = "mentor_reactivated"
KINDS = (
    ASSIGNMENT_REMINDER,
    ASSIGNMENT_ESCALATION,
    CERTIFICATION_EXPIRY_REMINDER,
    MENTOR_AUTO_PAUSED,
    MENTOR_REACTIVATED,
)
#: Kinds about an assignment's contact gap: no longer worth sending once the gap has ended.
CONTACT_GAP_KINDS = (ASSIGNMENT_REMINDER, ASSIGNMENT_ESCALATION)

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


@dataclass(frozen=True)
class DispatchResult:
    requested: int
    created: int


def dispatch(connection: sa.Connection, notifications: pd.DataFrame, *, dry_run: bool = False) -> DispatchResult:
    """Insert the notifications that do not exist yet, inside the caller's transaction. A dry run
    counts them instead: an INSERT rolled back would still use up identity values."""
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
    if dry_run:
        would_create = connection.execute(
            sa.text(
                "SELECT count(DISTINCT i.idempotency_key) FROM incoming_notifications AS i WHERE NOT EXISTS"
                " (SELECT 1 FROM public.notifications AS n WHERE n.idempotency_key = i.idempotency_key)"
            )
        ).scalar_one()
        return DispatchResult(requested=len(notifications), created=would_create)
    # Sorted (bytewise, the cheap order) so that two writers that somehow overlap take row locks in
    # the same order and cannot deadlock.
    created = connection.execute(
        sa.text(
            "WITH created AS ("
            " INSERT INTO public.notifications"
            " (idempotency_key, kind, recipient_role, recipient_id, assignment_id, reference_date, step, payload)"
            " SELECT idempotency_key, kind, recipient_role, recipient_id, assignment_id, reference_date, step,"
            "  jsonb_build_object('days_without_contact', days_without_contact)"
            ' FROM incoming_notifications ORDER BY idempotency_key COLLATE "C"'
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1)"
            " SELECT count(*) FROM created"
        )
    ).scalar_one()
    return DispatchResult(requested=len(notifications), created=created)
