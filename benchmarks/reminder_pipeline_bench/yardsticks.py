"""The two yardsticks the job is measured against: fixtures of the benchmark, not the product.

Both re-state the reminder rule (`reminder_pipeline.assignments.rules`) in another form on
purpose: one SQL statement (the fastest the database can make the same decisions) and a loop of
one query per assignment (the naive way). They take the job's own `ReminderRules` and kinds, and
the benchmark (and `reminder_pipeline_tests/test_bench.py`) checks, key by key, that each creates
exactly the notifications the job creates: a yardstick that drifts from the rule fails there.
"""

from __future__ import annotations

import datetime as dt
import time

import sqlalchemy as sa

from reminder_pipeline.assignments.rules import COORDINATOR_ESCALATION, MENTOR_REMINDER, ReminderRules
from reminder_pipeline.core.settings import LOCAL_TIMEZONE

# The same decisions as the job, in one statement: the fastest the database can do the work.
LOWER_BOUND_SQL = f"""
INSERT INTO public.notifications
    (source_id, kind, recipient_role, recipient_id, assignment_id, reference_date, step, payload)
SELECT g.assignment_id, k.kind, k.role, k.recipient,
       g.assignment_id, g.ref, k.step, jsonb_build_object('days_without_contact', g.days)
FROM (
    SELECT a.id AS assignment_id, a.mentor_id, m.coordinator_id, r.ref, CAST(:as_of AS date) - r.ref AS days
    FROM public.assignments AS a
    JOIN public.peer_mentors AS m ON m.id = a.mentor_id
    CROSS JOIN LATERAL (
        SELECT coalesce(a.last_contact_date, (a.assigned_at AT TIME ZONE '{LOCAL_TIMEZONE}')::date) AS ref) AS r
    WHERE a.status = 'active' AND m.status = 'active'
) AS g
CROSS JOIN LATERAL (VALUES
    (CAST(:mentor_kind AS text), 'mentor', g.mentor_id, (g.days - :after) / :interval, g.days >= :after),
    (CAST(:coordinator_kind AS text), 'coordinator', g.coordinator_id, 0, g.days >= :escalate)
) AS k (kind, role, recipient, step, due)
WHERE k.due AND g.days >= 0
ON CONFLICT (source_id, kind, recipient_role, reference_date, step) DO NOTHING
"""


def lower_bound_parameters(rules: ReminderRules, as_of: dt.date) -> dict[str, object]:
    return {
        "as_of": as_of,
        "after": rules.reminder_after_days,
        "interval": rules.reminder_interval_days,
        "escalate": rules.escalate_after_days,
        "mentor_kind": MENTOR_REMINDER,
        "coordinator_kind": COORDINATOR_ESCALATION,
    }


def naive_loop(connection: sa.Connection, sample: int, rules: ReminderRules, as_of: dt.date) -> tuple[int, float]:
    """One SELECT per assignment, one INSERT per notification, each committed on its own."""
    ids = (
        connection.execute(
            sa.text("SELECT id FROM public.assignments WHERE status = 'active' ORDER BY id LIMIT :n"), {"n": sample}
        )
        .scalars()
        .all()
    )
    started = time.perf_counter()
    for assignment_id in ids:
        row = connection.execute(
            sa.text(
                "SELECT a.id, a.mentor_id, m.coordinator_id, m.status AS mentor_status, a.last_contact_date,"
                f" (a.assigned_at AT TIME ZONE '{LOCAL_TIMEZONE}')::date AS assigned_on"
                " FROM public.assignments a JOIN public.peer_mentors m ON m.id = a.mentor_id WHERE a.id = :id"
            ),
            {"id": assignment_id},
        ).one()
        if row.mentor_status != "active":
            continue
        reference = row.last_contact_date or row.assigned_on
        days = (as_of - reference).days
        due = []
        if days >= rules.reminder_after_days:
            step = (days - rules.reminder_after_days) // rules.reminder_interval_days
            due.append((MENTOR_REMINDER, "mentor", row.mentor_id, step))
        if days >= rules.escalate_after_days:
            due.append((COORDINATOR_ESCALATION, "coordinator", row.coordinator_id, 0))
        for kind, role, recipient, step in due:
            connection.execute(
                sa.text(
                    "INSERT INTO public.notifications (source_id, kind, recipient_role, recipient_id,"
                    " assignment_id, reference_date, step, payload) VALUES (:a, :kind, :role, :recipient, :a, :ref,"
                    " :step, jsonb_build_object('days_without_contact', :days))"
                    " ON CONFLICT (source_id, kind, recipient_role, reference_date, step) DO NOTHING"
                ),
                {
                    "kind": kind,
                    "role": role,
                    "recipient": recipient,
                    "a": row.id,
                    "ref": reference,
                    "step": step,
                    "days": days,
                },
            )
    return len(ids), time.perf_counter() - started
