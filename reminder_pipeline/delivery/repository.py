"""The delivery side of the outbox in SQL: release, expire, claim, record, and what the sensor reads.

Each step is one statement over a whole batch. A claim marks rows `sending` and commits at once
(the claimer's session name in `claimed_by`), so the state is visible while messages are in flight
and survives the deliverer: rows whose claimer session is gone (kill -9, a lost host), or that were
claimed longer ago than :data:`SENDING_LEASE_SECONDS`, are released by the next run, to be sent
again under the same message key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from reminder_pipeline.core import locks, notification_kinds
from reminder_pipeline.core.settings import LOCAL_TIMEZONE
from reminder_pipeline.delivery import settings as delivery_settings

#: A claim older than this is taken over even if its session looks alive (a pooler can hide a
#: session's name); a batch sends within a few minutes at most (per-message deadline x batch / concurrency).
SENDING_LEASE_SECONDS = 15 * 60

#: Advisory locks (class, hash of the recipient) that keep two claims off the same recipient, so that
#: even two deliverers at once cannot split one recipient's notifications into two messages.
RECIPIENT_LOCK_CLASS = locks.RECIPIENT_CLASS

#: `now` is a parameter (NULL: the database clock) so that tests can stand at any hour.
_CLOCK = (
    "SELECT coalesce(CAST(:now AS timestamptz), clock_timestamp()) AS now,"
    " current_setting('application_name') AS deliverer"
)


def _quiet(start: str, end: str) -> str:
    """In quiet hours now: the recipient's own (`start`, `end`), else the deployment's default."""
    return (
        f"app_private.within_quiet_hours((clock.now AT TIME ZONE '{LOCAL_TIMEZONE}')::time,"
        f" coalesce({start}, CAST(:quiet_start AS time)), coalesce({end}, CAST(:quiet_end AS time)))"
    )


#: Against the joined preferences `p`.
_QUIET = _quiet("p.quiet_hours_start", "p.quiet_hours_end")
#: The same with the preferences looked up per row (two primary-key probes), so that a scan of the
#: due index in time order keeps its order and can stop at its LIMIT.
_PREFERENCE = (
    "(SELECT {column} FROM public.notification_preferences AS q"
    " WHERE q.recipient_role = n.recipient_role AND q.recipient_id = n.recipient_id)"
)
_QUIET_PER_ROW = _quiet(
    _PREFERENCE.format(column="q.quiet_hours_start"), _PREFERENCE.format(column="q.quiet_hours_end")
)

_WAITING_BY_TIME = "n.status IN ('pending', 'failed') AND n.next_attempt_at <= clock.now"
#: Due: waiting for an attempt, outside the recipient's quiet hours. Written against `n`
#: (notifications), `p` (preferences) and `clock`; it is re-checked on the newest row version after
#: a lock (FOR UPDATE ... SKIP LOCKED), which is what keeps two deliverers off each other's rows.
_DUE = f"{_WAITING_BY_TIME} AND NOT {_QUIET}"
#: In flight for a claimer that is gone, or for longer than the lease.
_ORPHANED = (
    f"n.status = 'sending' AND (n.claimed_at < clock.now - make_interval(secs => {SENDING_LEASE_SECONDS})"
    " OR n.claimed_by NOT IN (SELECT application_name FROM pg_stat_activity WHERE application_name IS NOT NULL))"
)
#: How `last_error` begins for a notification that expired never sent: the asset check looks for it.
TOO_OLD_REASON = "expired: not sent within"
#: Never attempted, and older than the expiry: a backlog that was never sent in time.
_TOO_OLD = (
    "n.status IN ('pending', 'failed') AND n.next_attempt_at IS NOT NULL AND n.message_key IS NULL"
    " AND n.attempts = 0 AND n.created_at < clock.now - make_interval(hours => :expire_hours)"
)

_PREFERENCES = (
    "LEFT JOIN public.notification_preferences AS p"
    " ON p.recipient_role = n.recipient_role AND p.recipient_id = n.recipient_id"
)


@dataclass(frozen=True)
class Window:
    """When the statements run: `now` (None: the database clock) and the default quiet hours."""

    now: dt.datetime | None = None
    quiet_hours: tuple[dt.time, dt.time] | None = (dt.time(21), dt.time(8))

    @classmethod
    def configured(cls, current: delivery_settings.DeliverySettings) -> Window:
        """The database clock and the deployment's default quiet hours (`NOTIFICATION_QUIET_HOURS`)."""
        return cls(quiet_hours=current.quiet_hours())

    def parameters(self) -> dict[str, object]:
        start, end = self.quiet_hours or (None, None)
        return {"now": self.now, "quiet_start": start, "quiet_end": end}


_RELEASE = f"""
WITH clock AS ({_CLOCK}),
orphaned AS (SELECT n.id FROM public.notifications AS n CROSS JOIN clock WHERE {_ORPHANED} FOR UPDATE OF n SKIP LOCKED)
UPDATE public.notifications AS n
SET status = 'failed',
    next_attempt_at = CASE WHEN n.attempts < :max_attempts THEN clock.now END,
    finished_at = CASE WHEN n.attempts < :max_attempts THEN NULL ELSE clock.now END,
    last_error = CASE WHEN n.attempts < :max_attempts
                      THEN 'the deliverer stopped while sending: to be sent again under the same key'
                      ELSE 'the deliverer stopped while sending, and no attempt is left' END
FROM orphaned CROSS JOIN clock
WHERE n.id = orphaned.id
RETURNING n.id, n.next_attempt_at IS NULL AS gave_up
"""


def release_orphans(connection: sa.Connection, window: Window, max_attempts: int) -> tuple[list[int], list[int]]:
    """Rows left `sending` by a deliverer that is gone: due again at once (same key: the message may
    have gone out), or given up when no attempt is left. Returns (released, gave up)."""
    rows = connection.execute(sa.text(_RELEASE), {**window.parameters(), "max_attempts": max_attempts}).all()
    return [row.id for row in rows if not row.gave_up], [row.id for row in rows if row.gave_up]


_EXPIRE = f"""
WITH clock AS ({_CLOCK}),
stale AS (
    SELECT n.id, ({_TOO_OLD}) AS too_old
    FROM public.notifications AS n CROSS JOIN clock
    WHERE ({_TOO_OLD})
       OR (n.status IN ('pending', 'failed') AND n.next_attempt_at IS NOT NULL AND n.message_key IS NULL
           AND /*ended*/)
    FOR UPDATE OF n SKIP LOCKED
)
UPDATE public.notifications AS n
SET status = 'expired', next_attempt_at = NULL, finished_at = clock.now,
    last_error = CASE WHEN stale.too_old THEN :too_old_reason || ' ' || :expire_hours || ' hours of its creation'
                      ELSE 'expired: no longer due (' || /*reason*/ || ')' END
FROM stale CROSS JOIN clock
WHERE n.id = stale.id
RETURNING n.id, stale.too_old
"""


def _expire_statement() -> tuple[str, dict[str, str]]:
    """The expire statement with each declared kind's "no longer due" condition (SQL the domain
    wrote), selected by kind; kinds without one stay due until sent or too old."""
    ending = [kind for kind in notification_kinds.declared() if kind.ended_when]
    if not ending:
        return _EXPIRE.replace("/*ended*/", "false").replace("/*reason*/", "''"), {}
    parameters = {f"ended_kind_{i}": kind.name for i, kind in enumerate(ending)}
    parameters |= {f"ended_reason_{i}": kind.ended_reason for i, kind in enumerate(ending)}
    ended = " ".join(f"WHEN :ended_kind_{i} THEN ({kind.ended_when})" for i, kind in enumerate(ending))
    reason = " ".join(f"WHEN :ended_kind_{i} THEN :ended_reason_{i}" for i in range(len(ending)))
    sql = _EXPIRE.replace("/*ended*/", f"CASE n.kind {ended} ELSE false END")
    return sql.replace("/*reason*/", f"CASE n.kind {reason} END"), parameters


@dataclass(frozen=True)
class Expired:
    #: Never sent in time: reminders that were lost (operations hear of these).
    too_old: list[int]
    #: The contact gap they were about ended first: nothing was lost.
    no_longer_due: list[int]


def expire_stale(connection: sa.Connection, window: Window, expire_hours: int) -> Expired:
    """Notifications not worth sending any more: never attempted within `expire_hours`, or about a
    contact gap that has ended since. Marked `expired` (never deleted). A message that may already
    have reached the gateway (it holds a key) is left alone: its retry stays the same message."""
    statement, ended = _expire_statement()
    rows = connection.execute(
        sa.text(statement),
        {**window.parameters(), **ended, "expire_hours": expire_hours, "too_old_reason": TOO_OLD_REASON},
    ).all()
    return Expired([row.id for row in rows if row.too_old], [row.id for row in rows if not row.too_old])


_CLAIM = f"""
WITH clock AS ({_CLOCK}, gen_random_uuid()::text AS claim),
oldest AS (  -- the oldest due rows: an index scan of a few rows, not the whole backlog
    SELECT n.recipient_role, n.recipient_id, n.next_attempt_at FROM public.notifications AS n CROSS JOIN clock
    WHERE {_WAITING_BY_TIME} AND NOT {_QUIET_PER_ROW} ORDER BY n.next_attempt_at LIMIT :scan
),
recipients AS (  -- their recipients, oldest first, except those this deliverer has messaged already
    SELECT o.recipient_role, o.recipient_id FROM oldest AS o CROSS JOIN clock
    WHERE NOT EXISTS (SELECT 1 FROM public.notifications AS d WHERE d.recipient_id = o.recipient_id
                      AND d.recipient_role = o.recipient_role AND d.claimed_by = clock.deliverer)
    GROUP BY o.recipient_role, o.recipient_id ORDER BY min(o.next_attempt_at) LIMIT :recipients
),
chosen AS (  -- one claimer per recipient at a time (a transaction lock: gone when the claim commits)
    SELECT recipient_role, recipient_id FROM recipients
    WHERE pg_try_advisory_xact_lock({RECIPIENT_LOCK_CLASS}, hashtext(recipient_role || ':' || recipient_id))
),
locked AS (  -- every due row of those recipients, so that each gets one message ...
    SELECT n.id FROM public.notifications AS n
    JOIN chosen AS r ON r.recipient_role = n.recipient_role AND r.recipient_id = n.recipient_id
    CROSS JOIN clock {_PREFERENCES}
    WHERE {_DUE}
      -- ... except that a message which may have gone out is sent again as it was, alone
      AND (n.message_key IS NOT NULL OR NOT EXISTS (
          SELECT 1 FROM public.notifications AS h
          WHERE h.recipient_id = n.recipient_id AND h.recipient_role = n.recipient_role
            AND h.message_key IS NOT NULL AND h.status IN ('pending', 'failed') AND h.next_attempt_at <= clock.now))
    FOR UPDATE OF n SKIP LOCKED
),
claimed AS (
    -- Rows without a key join one new message per recipient and claim.
    UPDATE public.notifications AS n
    SET status = 'sending', attempts = n.attempts + 1, next_attempt_at = NULL,
        message_key = coalesce(n.message_key,
                               md5(clock.claim || ':' || n.recipient_role || ':' || n.recipient_id)::uuid),
        claimed_by = clock.deliverer, claimed_at = clock.now
    FROM locked CROSS JOIN clock
    WHERE n.id = locked.id
    RETURNING n.id, n.message_key, n.recipient_role, n.recipient_id, n.kind, n.attempts, n.payload
)
SELECT c.id, c.message_key::text AS message_key, c.recipient_role, c.recipient_id::text AS recipient_id, c.kind,
       c.attempts,
       /*variables*/
       split_part(btrim(coalesce(m.full_name, co.full_name, '')), ' ', 1) AS first_name,
       CASE c.recipient_role WHEN 'mentor' THEN m.email ELSE co.email END AS email,
       coalesce(p.push_enabled, true) AS push_enabled,
       coalesce(p.email_enabled, true) AS email_enabled,
       coalesce(p.language, 'nb') AS language
FROM claimed AS c
LEFT JOIN public.peer_mentors AS m ON c.recipient_role = 'mentor' AND m.id = c.recipient_id
LEFT JOIN public.coordinators AS co ON c.recipient_role = 'coordinator' AND co.id = c.recipient_id
LEFT JOIN public.notification_preferences AS p
    ON p.recipient_role = c.recipient_role AND p.recipient_id = c.recipient_id
ORDER BY c.message_key, c.id
"""

#: How a payload value of each type is read: a value of the wrong shape is NULL, never an error.
_READ_PAYLOAD = {
    "int": "CASE WHEN jsonb_typeof(c.payload -> '{key}') = 'number' AND abs((c.payload ->> '{key}')::numeric) < 2e9"
    " THEN (c.payload ->> '{key}')::numeric::int END AS {key},",
    "date": "CASE WHEN c.payload ->> '{key}' ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}$'"
    " THEN (c.payload ->> '{key}')::date END AS {key},",
}

BASE_CLAIMED_COLUMNS = ["id", "message_key", "recipient_role", "recipient_id", "kind", "attempts"]
RECIPIENT_COLUMNS = ["first_name", "email", "push_enabled", "email_enabled", "language"]


def claimed_columns() -> list[str]:
    """The claim's columns: the notification, every declared payload key, the recipient."""
    return [*BASE_CLAIMED_COLUMNS, *sorted(notification_kinds.payload_types()), *RECIPIENT_COLUMNS]


def _claim_statement() -> str:
    types = notification_kinds.payload_types()
    variables = " ".join(_READ_PAYLOAD[types[key]].format(key=key) for key in sorted(types))
    return _CLAIM.replace("/*variables*/", variables)


def claim(connection: sa.Connection, window: Window, recipients: int) -> pd.DataFrame:
    """Claim every due notification of up to `recipients` recipients (oldest first): one statement,
    committed by the caller's autocommit connection before anything is sent."""
    parameters = {**window.parameters(), "recipients": recipients, "scan": recipients * 5}
    rows = connection.execute(sa.text(_claim_statement()), parameters).all()
    return pd.DataFrame(rows, columns=claimed_columns())


_RECORD = f"""
WITH clock AS ({_CLOCK}),
outcome AS (
    SELECT * FROM unnest(CAST(:keys AS uuid[]), CAST(:statuses AS text[]), CAST(:channels AS text[]),
                         CAST(:errors AS text[]), CAST(:delays AS float8[]), CAST(:ambiguous AS boolean[]))
        AS o (message_key, status, channel, error, delay_seconds, ambiguous)
),
recorded AS (
    UPDATE public.notifications AS n
    SET status = o.status,
        channel = o.channel,
        last_error = left(o.error, 500),
        delivered_at = CASE WHEN o.status = 'delivered' THEN clock.now END,
        next_attempt_at = CASE WHEN o.status = 'failed' AND n.attempts < :max_attempts
                               THEN clock.now + make_interval(secs => o.delay_seconds) END,
        finished_at = CASE WHEN o.status = 'failed' AND n.attempts < :max_attempts THEN NULL ELSE clock.now END,
        -- refused for certain: the next attempt composes a new message with whatever else is due
        message_key = CASE WHEN o.status = 'failed' AND NOT o.ambiguous THEN NULL ELSE n.message_key END
    FROM outcome AS o CROSS JOIN clock
    WHERE n.message_key = o.message_key AND n.status = 'sending' AND n.claimed_by = clock.deliverer
    RETURNING n.id, n.status, n.status = 'failed' AND n.next_attempt_at IS NULL AS gave_up
)
SELECT id, status, gave_up FROM recorded ORDER BY id
"""


@dataclass(frozen=True)
class Recorded:
    """What one batch's record statement wrote, per notification."""

    ids_by_outcome: dict[str, list[int]]

    def count(self, outcome: str) -> int:
        return len(self.ids_by_outcome.get(outcome, []))


def record(
    connection: sa.Connection,
    window: Window,
    outcomes: Sequence[tuple[str, str, str | None, str | None, float, bool]],
    max_attempts: int,
) -> Recorded:
    """Write every message's outcome (key, status, channel, error, retry delay, ambiguous) to its
    notifications in one statement; a failed one waits out its delay, or gives up after
    `max_attempts`. Only rows this session still holds are touched (a claim released after the
    lease belongs to the next deliverer)."""
    if not outcomes:
        return Recorded({})
    keys, statuses, channels, errors, delays, ambiguous = (list(column) for column in zip(*outcomes, strict=True))
    rows = connection.execute(
        sa.text(_RECORD),
        {
            **window.parameters(),
            "keys": keys,
            "statuses": statuses,
            "channels": channels,
            "errors": errors,
            "delays": delays,
            "ambiguous": ambiguous,
            "max_attempts": max_attempts,
        },
    ).all()
    found: dict[str, list[int]] = {}
    for row in rows:
        found.setdefault("gave_up" if row.gave_up else row.status, []).append(row.id)
    return Recorded(found)


@dataclass(frozen=True)
class Backlog:
    """What the sensor reads: enough to decide whether to start a delivery run, and a fingerprint
    that changes whenever the due set (or an attempt count) does."""

    due: int
    fingerprint: str


def backlog(connection: sa.Connection, window: Window, expire_hours: int) -> Backlog:
    """Due now (outside quiet hours), left in flight by a claimer that is gone, or old enough to expire."""
    row = connection.execute(
        sa.text(
            f"WITH clock AS ({_CLOCK}) SELECT count(*) AS due,"
            " count(*) || ':' || coalesce(max(n.id), 0) || ':' || coalesce(sum(n.attempts), 0) AS fingerprint"
            f" FROM public.notifications AS n CROSS JOIN clock {_PREFERENCES}"
            f" WHERE ({_DUE}) OR ({_ORPHANED}) OR ({_TOO_OLD})"
        ),
        {**window.parameters(), "expire_hours": expire_hours},
    ).one()
    return Backlog(row.due, row.fingerprint)


def held_for_quiet_hours(connection: sa.Connection, window: Window) -> int:
    """Waiting with their time come, held back only by the recipient's quiet hours (one count)."""
    return connection.execute(
        sa.text(
            f"WITH clock AS ({_CLOCK}) SELECT count(*) FROM public.notifications AS n CROSS JOIN clock"
            f" {_PREFERENCES} WHERE {_WAITING_BY_TIME} AND {_QUIET}"
        ),
        window.parameters(),
    ).scalar_one()


def retry_gave_up(connection: sa.Connection, window: Window) -> list[int]:
    """An operator's retry: notifications that gave up (failed, no attempt left) are due now, with
    one more attempt each (in the same message when it may have gone out before). Their ids."""
    return list(
        connection.execute(
            sa.text(
                f"WITH clock AS ({_CLOCK})"
                " UPDATE public.notifications AS n SET next_attempt_at = clock.now, attempts = n.attempts - 1,"
                " finished_at = NULL FROM clock"
                " WHERE n.status = 'failed' AND n.next_attempt_at IS NULL RETURNING n.id"
            ),
            window.parameters(),
        ).scalars()
    )


def status_counts(connection: sa.Connection) -> dict[str, int]:
    """Notifications by status (a gave-up notification is counted as `gave_up`), for the runbook and tests."""
    rows = connection.execute(
        sa.text(
            "SELECT CASE WHEN status = 'failed' AND next_attempt_at IS NULL THEN 'gave_up' ELSE status END AS state,"
            " count(*) AS total FROM public.notifications GROUP BY 1"
        )
    ).all()
    return {row.state: row.total for row in rows}
