"""Synthetic mentors, coordinators, assignments and activities for demos, tests and benchmarks.

No real personal data: names are "Mentor 42", addresses end in `.invalid`, phone numbers are in a
range no operator assigns. Everything is generated inside PostgreSQL with `generate_series` (one
set-based statement per batch), so a million assignments take seconds, not hours.

Where the database role may (a superuser, as on the embedded server), the load skips the per-row
foreign-key and trigger checks the way `pg_restore --disable-triggers` does
(`session_replication_role = replica`, for this transaction only): the data is consistent by
construction, and one set-based query checks that afterwards, before anything is committed. That
halves the time. Elsewhere (Supabase) the checks simply run.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from reminder_pipeline.core.errors import InputRejected, SeedInconsistent

ASSIGNMENTS_PER_MENTOR = 3
MENTORS_PER_COORDINATOR = 20
CLOSED_SHARE = 0.10
NEVER_CONTACTED_SHARE = 0.20
PAUSED_MENTOR_SHARE = 0.05


@dataclass(frozen=True)
class SeedSummary:
    coordinators: int
    mentors: int
    assignments: int
    activities: int
    row_checks_skipped: bool


def has_assignments(connection: sa.Connection) -> bool:
    """Whether the database holds any assignment (the demo seeds only an empty one)."""
    return bool(connection.execute(sa.text("SELECT EXISTS (SELECT 1 FROM public.assignments)")).scalar())


def _skip_row_checks(connection: sa.Connection) -> bool:
    """Bulk-load mode for this transaction, if the role may set it; a savepoint keeps a refusal harmless."""
    savepoint = connection.begin_nested()
    try:
        connection.execute(sa.text("SET LOCAL session_replication_role = replica"))
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


# What the skipped foreign-key checks would have enforced, verified once, set-based, for the whole tables.
# (The activity trigger's effect needs no check: the load sets last_contact_date to the activity's date.)
_DANGLING_REFERENCES_SQL = """
SELECT (SELECT count(*) FROM public.peer_mentors AS m
        WHERE NOT EXISTS (SELECT 1 FROM public.coordinators AS c WHERE c.id = m.coordinator_id))
     + (SELECT count(*) FROM public.assignments AS a
        WHERE NOT EXISTS (SELECT 1 FROM public.peer_mentors AS m WHERE m.id = a.mentor_id))
     + (SELECT count(*) FROM public.activities AS v
        WHERE NOT EXISTS (SELECT 1 FROM public.assignments AS a WHERE a.id = v.assignment_id)
           OR NOT EXISTS (SELECT 1 FROM public.peer_mentors AS m WHERE m.id = v.mentor_id))
"""


def seed(
    connection: sa.Connection,
    assignments: int,
    *,
    today: dt.date,
    batch_size: int = 100_000,
    random_seed: float = 0.42,
    on_progress: Callable[[int], None] | None = None,
) -> SeedSummary:
    """Insert `assignments` assignments (about 10% closed, 20% never contacted) with their mentors
    (about 5% paused) and coordinators, inside the caller's transaction."""
    if assignments < 1:
        raise InputRejected("assignments must be at least 1")
    mentors = math.ceil(assignments / ASSIGNMENTS_PER_MENTOR)
    coordinators = math.ceil(mentors / MENTORS_PER_COORDINATOR)
    tag = secrets.token_hex(6)  # keeps ids of separate seed calls apart
    params = {"tag": tag, "mentors": mentors, "coordinators": coordinators, "today": today}

    skipped = _skip_row_checks(connection)
    connection.execute(sa.text("SELECT setseed(:seed)"), {"seed": random_seed})
    connection.execute(
        sa.text(
            "INSERT INTO public.coordinators (id, full_name, email)"
            " SELECT md5(:tag || 'c' || i)::uuid, 'Coordinator ' || i, 'coordinator-' || i || '@example.invalid'"
            " FROM generate_series(0, :coordinators - 1) AS i"
        ),
        params,
    )
    connection.execute(
        sa.text(
            "INSERT INTO public.peer_mentors (id, coordinator_id, full_name, email, phone, status, changed_at)"
            " SELECT md5(:tag || 'm' || i)::uuid, md5(:tag || 'c' || (i % :coordinators))::uuid,"
            "  'Mentor ' || i, 'mentor-' || i || '@example.invalid', '+47 0' || lpad(i::text, 7, '0'),"
            f"  CASE WHEN random() < {PAUSED_MENTOR_SHARE} THEN 'paused' ELSE 'active' END,"
            "  (CAST(:today AS date) - 400 + time '09:00') AT TIME ZONE 'Europe/Oslo'"
            " FROM generate_series(0, :mentors - 1) AS i"
        ),
        params,
    )
    activities = 0
    for low in range(0, assignments, batch_size):
        high = min(low + batch_size, assignments)
        activities += connection.execute(
            sa.text(
                "WITH drawn AS ("
                "  SELECT k, random() AS r_closed, 30 + floor(random() * 370)::int AS assigned_days_ago,"
                "         random() AS r_contact, random() AS r_when"
                "  FROM generate_series(CAST(:low AS int), CAST(:high AS int) - 1) AS k"
                "), inserted AS ("
                "  INSERT INTO public.assignments"
                "   (id, mentor_id, status, assigned_at, last_contact_date, closed_at, changed_at)"
                "  SELECT md5(:tag || 'a' || k)::uuid, md5(:tag || 'm' || (k % :mentors))::uuid,"
                f"   CASE WHEN r_closed < {CLOSED_SHARE} THEN 'closed' ELSE 'active' END,"
                "    ((CAST(:today AS date) - assigned_days_ago) + time '09:00') AT TIME ZONE 'Europe/Oslo',"
                "    contact,"
                f"   CASE WHEN r_closed < {CLOSED_SHARE} THEN now() END,"
                # when the row last changed in this history (made, or its last contact logged, that
                # evening), never later than the night before `today`: the state a morning run finds
                f"   CASE WHEN r_closed < {CLOSED_SHARE} THEN now() ELSE least("
                "     (coalesce(contact, CAST(:today AS date) - assigned_days_ago) + time '18:00')"
                "       AT TIME ZONE 'Europe/Oslo',"
                "     (CAST(:today AS date) + time '00:00') AT TIME ZONE 'Europe/Oslo') END"
                "  FROM (SELECT *, CASE WHEN r_contact < "
                f"{NEVER_CONTACTED_SHARE} THEN NULL"
                "         ELSE CAST(:today AS date) - floor(r_when * least(45, assigned_days_ago))::int END AS contact"
                "        FROM drawn) AS d"
                "  RETURNING id, mentor_id, status, last_contact_date"
                ") INSERT INTO public.activities (assignment_id, mentor_id, activity_date)"
                "  SELECT id, mentor_id, last_contact_date FROM inserted"
                "  WHERE last_contact_date IS NOT NULL AND status = 'active'"
            ),
            {**params, "low": low, "high": high},
        ).rowcount
        if on_progress is not None:
            on_progress(high - low)
    if skipped:
        connection.execute(sa.text("SET LOCAL session_replication_role = origin"))
        dangling = connection.execute(sa.text(_DANGLING_REFERENCES_SQL)).scalar_one()
        if dangling:
            raise SeedInconsistent(f"{dangling} rows reference a missing parent; the transaction is not committed")
    return SeedSummary(coordinators, mentors, assignments, activities, row_checks_skipped=skipped)
