"""Certification reads and writes: one COPY read, one statement per decision set; the notices
those writes lead to go through the outbox in the same transaction."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from reminder_pipeline.certifications.rules import (
    CERTIFICATION_EXPIRED,
    OPEN_PAUSE_COLUMNS,
    PAUSE_COLUMNS,
    REACTIVATION_COLUMNS,
    REMINDER_COLUMNS,
    expiry_notices,
    pause_notices,
    reactivation_notices,
)
from reminder_pipeline.core import outbox
from reminder_pipeline.core.bulk import read_frame, stage

PAUSE_REASON = CERTIFICATION_EXPIRED
PAUSED_BY = "system:certification_reminders"
RENEWAL_REASON = "certification_renewed"

CERTIFICATIONS_SQL = """
SELECT c.id AS cert_id, c.mentor_id, m.coordinator_id, m.status AS mentor_status, c.certification_type, c.expires_on
FROM public.certifications AS c JOIN public.peer_mentors AS m ON m.id = c.mentor_id
WHERE m.status = 'active'
"""


# Every open pause of a paused mentor; for an automatic pause, the certifications of the type that
# expired and newer than it (the renewal candidates), or one row without a certification.
OPEN_PAUSES_SQL = f"""
SELECT h.id AS pause_id, h.mentor_id, m.coordinator_id, h.reason, c.id AS cert_id, c.issued_on, c.expires_on
FROM public.mentor_pause_history AS h
JOIN public.peer_mentors AS m ON m.id = h.mentor_id AND m.status = 'paused'
LEFT JOIN public.certifications AS expired ON h.reason = '{CERTIFICATION_EXPIRED}' AND expired.id = h.cert_id
LEFT JOIN public.certifications AS c
    ON c.mentor_id = h.mentor_id AND c.certification_type = expired.certification_type
   AND c.expires_on > expired.expires_on
WHERE h.resumed_at IS NULL
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


def load_open_pauses(connection: sa.Connection) -> pd.DataFrame:
    return read_frame(
        connection,
        OPEN_PAUSES_SQL,
        dtypes=dict.fromkeys(OPEN_PAUSE_COLUMNS, "str"),
    )


def record_and_dispatch_reminders(connection: sa.Connection, reminders: pd.DataFrame) -> int:
    """Log each (mentor, threshold, certification) once; notify (through the outbox, in the same
    transaction) only for rows actually logged. Two concurrent runs meet at the unique key, so
    neither can notify what the other logged. Returns the notices created."""
    if reminders.empty:
        return 0
    stage(
        connection,
        reminders,
        "incoming_cert_reminders",
        dict(zip(REMINDER_COLUMNS, ("uuid", "uuid", "integer", "integer", "date"), strict=True)),
    )
    logged = _returned(
        connection.execute(
            sa.text("""
        WITH logged AS (
            INSERT INTO public.cert_notification_log (mentor_id, threshold_days, cert_id)
            SELECT mentor_id, threshold_days, cert_id FROM incoming_cert_reminders ORDER BY cert_id, threshold_days
            ON CONFLICT ON CONSTRAINT cert_notification_log_once DO NOTHING
            RETURNING threshold_days, cert_id
        )
        SELECT i.cert_id::text, i.mentor_id::text, i.threshold_days, i.days_left, i.expires_on::text
        FROM logged AS l JOIN incoming_cert_reminders AS i USING (cert_id, threshold_days)
    """)
        ),
        REMINDER_COLUMNS,
    )
    return outbox.dispatch(connection, expiry_notices(logged)).created


def _returned(result: sa.CursorResult, columns: list[str]) -> pd.DataFrame:
    """The rows a writing statement returned (a few per night: pauses, renewals), as a frame."""
    return pd.DataFrame(result.all(), columns=columns)


def auto_pause(connection: sa.Connection, pauses: pd.DataFrame) -> tuple[int, int]:
    """In one transaction: one statement pauses the mentors still active and writes their pause
    history and a pending Dynamics sync event each; the outbox then notifies mentor and coordinator
    of each pause that statement wrote. A mentor already
    paused is skipped by the UPDATE itself, so a rerun pauses nothing twice and writes no second event.
    Returns (mentors paused, sync events written)."""
    if pauses.empty:
        return 0, 0
    stage(
        connection, pauses, "incoming_pauses", dict(zip(PAUSE_COLUMNS, ("uuid", "uuid", "uuid", "date"), strict=True))
    )
    result = connection.execute(
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
        )
        SELECT p.mentor_id::text, p.coordinator_id::text, p.cert_id::text, p.expired_on::text,
               (SELECT count(*) FROM events) AS events
        FROM paused AS p
    """),
        {"reason": PAUSE_REASON, "paused_by": PAUSED_BY},
    )
    paused = _returned(result, [*PAUSE_COLUMNS, "events"])
    outbox.dispatch(connection, pause_notices(paused))
    return len(paused), int(paused["events"].iloc[0]) if len(paused) else 0


def reactivate(connection: sa.Connection, reactivations: pd.DataFrame) -> tuple[int, int]:
    """In one transaction: one statement sets active the mentors still paused whose automatic pause
    is still open and who have no other open pause, closes that pause in its history row and writes
    a pending `reactivate` Dynamics sync event each; the outbox then notifies mentor and coordinator. Two concurrent
    runs meet at the mentor's row: the second finds them active and writes nothing.
    Returns (mentors reactivated, sync events written)."""
    if reactivations.empty:
        return 0, 0
    stage(
        connection,
        reactivations,
        "incoming_reactivations",
        dict(zip(REACTIVATION_COLUMNS, ("uuid", "uuid", "uuid", "uuid", "date"), strict=True)),
    )
    result = connection.execute(
        sa.text("""
        WITH reactivated AS (
            UPDATE public.peer_mentors AS m SET status = 'active'
            FROM incoming_reactivations AS r
            WHERE m.id = r.mentor_id AND m.status = 'paused'
              AND EXISTS (SELECT 1 FROM public.mentor_pause_history AS h
                          WHERE h.id = r.pause_id AND h.mentor_id = r.mentor_id AND h.resumed_at IS NULL)
              AND NOT EXISTS (SELECT 1 FROM public.mentor_pause_history AS other
                              WHERE other.mentor_id = r.mentor_id AND other.resumed_at IS NULL
                                AND other.reason <> :pause_reason)
            RETURNING m.id AS mentor_id, m.coordinator_id, r.pause_id, r.cert_id, r.expires_on
        ), closed AS (
            UPDATE public.mentor_pause_history AS h
            SET resumed_at = greatest(clock_timestamp(), h.paused_at), resumed_by = :resumed_by,
                resumed_cert_id = r.cert_id
            FROM reactivated AS r
            WHERE h.mentor_id = r.mentor_id AND h.resumed_at IS NULL
            RETURNING 1
        ), events AS (
            INSERT INTO public.dynamics_sync_events (mentor_id, action, payload, dedupe_key)
            SELECT mentor_id, 'reactivate',
                   jsonb_build_object('mentor_id', mentor_id, 'action', 'reactivate', 'reason', :renewal_reason,
                                      'cert_id', cert_id, 'valid_until', expires_on),
                   'reactivate:' || mentor_id || ':' || pause_id
            FROM reactivated
            ON CONFLICT (dedupe_key) DO NOTHING
            RETURNING 1
        )
        SELECT r.pause_id::text, r.mentor_id::text, r.coordinator_id::text, r.cert_id::text, r.expires_on::text,
               (SELECT count(*) FROM events) AS events
        FROM reactivated AS r
    """),
        {
            "pause_reason": PAUSE_REASON,
            "resumed_by": PAUSED_BY,
            "renewal_reason": RENEWAL_REASON,
        },
    )
    reactivated = _returned(result, [*REACTIVATION_COLUMNS, "events"])
    outbox.dispatch(connection, reactivation_notices(reactivated))
    return len(reactivated), int(reactivated["events"].iloc[0]) if len(reactivated) else 0
