"""Registering activities on the four paths, each as one set-based write.

The database enforces the rules for every writer (see migrations/0005_activity_registration.sql):
the statement-level trigger moves `last_contact_date` forward and rejects future-dated activities
and closed assignments. This service checks the same rules first, in one query over the whole batch,
so a rejected registration says which rows were wrong; it writes nothing unless every row is valid.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd
import sqlalchemy as sa

from reminder_pipeline.core.bulk import copy_frame
from reminder_pipeline.core.errors import RegistrationRejected
from reminder_pipeline.core.run_config import today_local


class RegistrationPath(StrEnum):
    DIRECT = "direct"  # the mentor registers their own contact
    PROXY = "proxy"  # someone registers on the mentor's behalf
    BULK = "bulk"  # many activities in one call
    COORDINATOR_PROXY = "coordinator_proxy"  # the mentor's coordinator registers on their behalf


@dataclass(frozen=True)
class RowProblem:
    row: int
    assignment_id: str
    reason: str


@dataclass(frozen=True)
class Activity:
    assignment_id: uuid.UUID | str
    activity_date: dt.date
    kind: str = "contact"


def _frame(activities: list[Activity] | pd.DataFrame) -> pd.DataFrame:
    if isinstance(activities, pd.DataFrame):
        frame = activities.reindex(columns=["assignment_id", "activity_date", "kind"])
        frame["kind"] = frame["kind"].fillna("contact")
    else:
        frame = pd.DataFrame(
            [(str(a.assignment_id), a.activity_date, a.kind) for a in activities],
            columns=["assignment_id", "activity_date", "kind"],
        )
    frame = frame.reset_index(drop=True)
    frame.insert(0, "row_number", range(len(frame)))
    return frame


# One query over the whole batch. It finds, per row, the first rule it breaks.
_VALIDATE = """
SELECT i.row_number, coalesce(i.assignment_id, '') AS assignment_id,
       CASE
         WHEN i.assignment_id IS NULL OR i.assignment_id !~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
              THEN 'not an assignment id'
         WHEN i.activity_date IS NULL THEN 'activity_date must be a date (YYYY-MM-DD)'
         WHEN a.id IS NULL THEN 'unknown assignment'
         WHEN a.status <> 'active' THEN 'assignment is closed'
         WHEN i.activity_date::date > CAST(:today AS date) THEN 'activity_date is in the future'
         WHEN CAST(:acting_mentor AS uuid) IS NOT NULL AND a.mentor_id <> CAST(:acting_mentor AS uuid)
              THEN 'not this mentor''s assignment'
         WHEN CAST(:acting_coordinator AS uuid) IS NOT NULL AND m.coordinator_id <> CAST(:acting_coordinator AS uuid)
              THEN 'mentor is not coordinated by this coordinator'
       END AS reason
FROM incoming_activities i
LEFT JOIN public.assignments a  -- CASE, not AND: only a well-formed id is ever cast
       ON a.id = CASE WHEN i.assignment_id ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                      THEN i.assignment_id::uuid END
LEFT JOIN public.peer_mentors m ON m.id = a.mentor_id
ORDER BY i.row_number
"""

_INSERT = """
INSERT INTO public.activities (assignment_id, mentor_id, activity_date, kind, registration_path, registered_by)
SELECT a.id, a.mentor_id, i.activity_date::date, i.kind, :path, :registered_by
FROM incoming_activities i JOIN public.assignments a ON a.id = i.assignment_id::uuid
ORDER BY i.row_number
"""


def register(
    connection: sa.Connection,
    activities: list[Activity] | pd.DataFrame,
    *,
    path: RegistrationPath,
    registered_by: uuid.UUID | None,
    acting_mentor: uuid.UUID | None = None,
    acting_coordinator: uuid.UUID | None = None,
) -> int:
    """Validate the whole batch, then insert it in one statement, inside the caller's transaction.
    Returns the number of activities written; raises :class:`RegistrationRejected` otherwise."""
    frame = _frame(activities)
    if frame.empty:
        return 0
    connection.execute(
        sa.text(
            "CREATE TEMP TABLE incoming_activities (row_number integer, assignment_id text, activity_date text,"
            " kind text) ON COMMIT DROP"
        )
    )
    # Invalid dates become empty (NULL), which the validation query reports row by row.
    dates = pd.to_datetime(frame["activity_date"].astype("string"), format="%Y-%m-%d", errors="coerce")
    frame["activity_date"] = dates.dt.strftime("%Y-%m-%d")
    copy_frame(connection, frame, "incoming_activities")
    checked = connection.execute(
        sa.text(_VALIDATE),
        {"today": today_local(), "acting_mentor": acting_mentor, "acting_coordinator": acting_coordinator},
    ).all()
    problems = [RowProblem(row.row_number, row.assignment_id, row.reason) for row in checked if row.reason]
    if problems:
        connection.execute(sa.text("DROP TABLE incoming_activities"))
        raise RegistrationRejected(problems)
    written = connection.execute(sa.text(_INSERT), {"path": str(path), "registered_by": registered_by}).rowcount
    connection.execute(sa.text("DROP TABLE incoming_activities"))
    return written


def register_direct(
    connection: sa.Connection, *, mentor_id: uuid.UUID, auth_user_id: uuid.UUID | None, activity: Activity
) -> int:
    """A mentor logs their own contact."""
    return register(
        connection, [activity], path=RegistrationPath.DIRECT, registered_by=auth_user_id, acting_mentor=mentor_id
    )


def register_proxy(connection: sa.Connection, *, registered_by: uuid.UUID, activity: Activity) -> int:
    """Someone (a colleague, an administrator) registers on the mentor's behalf."""
    return register(connection, [activity], path=RegistrationPath.PROXY, registered_by=registered_by)


def register_bulk(
    connection: sa.Connection, activities: list[Activity] | pd.DataFrame, *, registered_by: uuid.UUID | None
) -> int:
    """Many activities at once: all or nothing."""
    return register(connection, activities, path=RegistrationPath.BULK, registered_by=registered_by)


def register_coordinator_proxy(
    connection: sa.Connection, *, coordinator_id: uuid.UUID, auth_user_id: uuid.UUID | None, activity: Activity
) -> int:
    """A coordinator registers on behalf of one of their own mentors."""
    return register(
        connection,
        [activity],
        path=RegistrationPath.COORDINATOR_PROXY,
        registered_by=auth_user_id,
        acting_coordinator=coordinator_id,
    )
