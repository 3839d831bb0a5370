"""The audited correction of an assignment's last contact date (the admin endpoint's rule)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from reminder_pipeline.core.errors import InputRejected


@dataclass(frozen=True)
class Correction:
    correction_id: uuid.UUID
    assignment_id: uuid.UUID
    previous_last_contact_date: dt.date | None
    last_contact_date: dt.date
    corrected_by: uuid.UUID
    corrected_at: dt.datetime


def correct_last_contact_date(
    connection: sa.Connection, assignment_id: uuid.UUID, new_date: dt.date, *, reason: str, corrected_by: uuid.UUID
) -> Correction | None:
    """Set the date (backwards too: that is the point) and write the audit row, both in the caller's
    transaction. None when the assignment does not exist. The row lock serialises two corrections."""
    previous = connection.execute(
        sa.text(
            "SELECT last_contact_date, (assigned_at AT TIME ZONE 'Europe/Oslo')::date AS assigned_on"
            " FROM public.assignments WHERE id = :id FOR UPDATE"
        ),
        {"id": assignment_id},
    ).one_or_none()
    if previous is None:
        return None
    if new_date < previous.assigned_on:
        raise InputRejected("last_contact_date cannot be before the assignment was made")
    connection.execute(
        sa.text("UPDATE public.assignments SET last_contact_date = :new WHERE id = :id"),
        {"id": assignment_id, "new": new_date},
    )
    audit = connection.execute(
        sa.text(
            "INSERT INTO public.last_contact_corrections (assignment_id, corrected_by, old_value, new_value, reason)"
            " VALUES (:id, :by, :old, :new, :reason) RETURNING id, corrected_at"
        ),
        {"id": assignment_id, "by": corrected_by, "old": previous.last_contact_date, "new": new_date, "reason": reason},
    ).one()
    return Correction(audit.id, assignment_id, previous.last_contact_date, new_date, corrected_by, audit.corrected_at)
