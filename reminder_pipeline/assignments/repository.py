"""Reading assignments for the reminder rules: one set-based query, streamed with COPY."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import sqlalchemy as sa

from reminder_pipeline.core.bulk import read_frame
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


def load_active_assignments(
    connection: sa.Connection,
    *,
    after_id: uuid.UUID | None = None,
    limit: int | None = None,
    changed_since: dt.datetime | None = None,
) -> pd.DataFrame:
    """All active assignments, or one chunk of them in id order (keyset: ids after `after_id`); with
    `changed_since`, only those whose assignment or mentor row changed since then (`changed_at`)."""
    sql = ACTIVE_ASSIGNMENTS_SQL
    if changed_since is not None:
        since = changed_since.isoformat()  # formatted from a datetime: a timestamp, never text from outside
        sql += f" AND (a.changed_at >= '{since}'::timestamptz OR m.changed_at >= '{since}'::timestamptz)"
    if limit is not None:
        after = f" AND a.id > '{uuid.UUID(str(after_id))}'" if after_id is not None else ""
        sql = f"{sql}{after} ORDER BY a.id LIMIT {int(limit)}"
    return read_frame(
        connection,
        sql,
        dtypes={
            "assignment_id": "str",
            "mentor_id": "str",
            "coordinator_id": "str",
            "assignment_status": "str",
            "mentor_status": "str",
            "assigned_on": "str",
            "last_contact_date": "str",
        },
    )
