"""Certification reads and writes: one COPY read, one statement per decision set."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from reminder_pipeline.certifications.rules import PAUSE_COLUMNS, REMINDER_COLUMNS
from reminder_pipeline.core.bulk import copy_frame, read_frame
from reminder_pipeline.core.outbox import CERTIFICATION_EXPIRY_REMINDER, MENTOR_AUTO_PAUSED

PAUSE_REASON = "certification_expired"
PAUSED_BY = "system:certification_reminders"

CERTIFICATIONS_SQL = """
SELECT c.id AS cert_id, c.mentor_id, m.coordinator_id, m.status AS mentor_status, c.certification_type, c.expires_on
FROM public.certifications AS c JOIN public.peer_mentors AS m ON m.id = c.mentor_id
WHERE m.status = 'active'
"""


def load_certifications(connection: sa.Connection) -> pd.DataFrame:
    return read_frame(
        connection,
        CERTIFICATIONS_SQL,
        dtypes={
            column: "str"
            for column in (
                "cert_id",
                "mentor_id",
                "coordinator_id",
                "mentor_status",
                "certification_type",
                "expires_on",
            )
        },
    )


def record_and_dispatch_reminders(connection: sa.Connection, reminders: pd.DataFrame) -> int:
    """Log each (mentor, threshold, certification) once; notify only for rows actually logged. Two
    concurrent runs meet at the unique key, so neither can notify what the other logged."""
    if reminders.empty:
        return 0
    connection.execute(
        sa.text(
            "CREATE TEMP TABLE incoming_cert_reminders (cert_id uuid, mentor_id uuid, threshold_days integer,"
            " days_left integer, expires_on date) ON COMMIT DROP"
        )
    )
    copy_frame(connection, reminders[REMINDER_COLUMNS], "incoming_cert_reminders")
    return connection.execute(
        sa.text("""
        WITH logged AS (
            INSERT INTO public.cert_notification_log (mentor_id, threshold_days, cert_id)
            SELECT mentor_id, threshold_days, cert_id FROM incoming_cert_reminders ORDER BY cert_id, threshold_days
            ON CONFLICT ON CONSTRAINT cert_notification_log_once DO NOTHING
            RETURNING mentor_id, threshold_days, cert_id
        ), sent AS (
            INSERT INTO public.notifications
                (idempotency_key, kind, recipient_role, recipient_id, reference_date, step, payload)
            SELECT 'certification_expiry:' || l.cert_id || ':' || l.threshold_days, CAST(:kind AS text),
                   'mentor', l.mentor_id, i.expires_on, l.threshold_days,
                   jsonb_build_object('cert_id', l.cert_id, 'threshold_days', l.threshold_days,
                                      'days_left', i.days_left, 'expires_on', i.expires_on)
            FROM logged AS l JOIN incoming_cert_reminders AS i USING (cert_id, threshold_days)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING 1
        )
        SELECT count(*) FROM sent
    """),
        {"kind": CERTIFICATION_EXPIRY_REMINDER},
    ).scalar_one()


def auto_pause(connection: sa.Connection, pauses: pd.DataFrame) -> tuple[int, int]:
    """In one statement (one transaction): pause the mentors still active, write their pause
    history, a pending Dynamics sync event each, and notify mentor and coordinator. A mentor already
    paused is skipped by the UPDATE itself, so a rerun pauses nothing twice and writes no second event.
    Returns (mentors paused, sync events written)."""
    if pauses.empty:
        return 0, 0
    connection.execute(
        sa.text(
            "CREATE TEMP TABLE incoming_pauses (mentor_id uuid, coordinator_id uuid, cert_id uuid, expired_on date)"
            " ON COMMIT DROP"
        )
    )
    copy_frame(connection, pauses[PAUSE_COLUMNS], "incoming_pauses")
    row = connection.execute(
        sa.text("""
        WITH paused AS (
            UPDATE public.peer_mentors AS m SET status = 'paused'
            FROM incoming_pauses AS p
            WHERE m.id = p.mentor_id AND m.status = 'active'
            RETURNING m.id AS mentor_id, m.coordinator_id, p.cert_id, p.expired_on
        ), history AS (
            INSERT INTO public.mentor_pause_history (mentor_id, reason, paused_by, cert_id)
            SELECT mentor_id, :reason, :paused_by, cert_id FROM paused
            RETURNING 1
        ), events AS (
            INSERT INTO public.dynamics_sync_events (mentor_id, action, payload, dedupe_key)
            SELECT mentor_id, 'pause',
                   jsonb_build_object('mentor_id', mentor_id, 'action', 'pause', 'reason', :reason,
                                      'cert_id', cert_id, 'expired_on', expired_on),
                   'pause:' || mentor_id || ':' || cert_id
            FROM paused
            ON CONFLICT (dedupe_key) DO NOTHING
            RETURNING 1
        ), notices AS (
            INSERT INTO public.notifications (idempotency_key, kind, recipient_role, recipient_id, payload)
            SELECT 'mentor_auto_paused:' || recipient_role || ':' || mentor_id || ':' || cert_id, CAST(:kind AS text),
                   recipient_role, recipient_id,
                   jsonb_build_object('mentor_id', mentor_id, 'cert_id', cert_id, 'expired_on', expired_on)
            FROM paused
            CROSS JOIN LATERAL (VALUES ('mentor', mentor_id), ('coordinator', coordinator_id))
                AS recipients (recipient_role, recipient_id)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM paused) AS paused, (SELECT count(*) FROM events) AS events,
               (SELECT count(*) FROM history) AS history, (SELECT count(*) FROM notices) AS notices
    """),
        {"reason": PAUSE_REASON, "paused_by": PAUSED_BY, "kind": MENTOR_AUTO_PAUSED},
    ).one()
    return row.paused, row.events
