"""The saga's second half: deliver pending Dynamics sync events to the HLF Dynamics portal.

Events are claimed with ``FOR UPDATE SKIP LOCKED`` (two workers never take the same event), POSTed
with an `Idempotency-Key` (the event id: a delivery repeated after a crash is harmless) and a
timeout, and the whole batch's outcome is written back in one statement. A failure schedules the
next attempt with capped exponential backoff and jitter and opens the coordinator alert
"Dynamics sync pending — mentor may still be visible on portal"; a success resolves it. After the
last attempt the event is `dead` and the caller raises an operations alert.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

from reminder_pipeline.certifications import settings as dynamics_settings
from reminder_pipeline.core import settings
from reminder_pipeline.core.backoff import Backoff
from reminder_pipeline.core.database import Transaction
from reminder_pipeline.core.errors import DynamicsNotConfigured, DynamicsSyncFailed

PENDING_ALERT_MESSAGE = "Dynamics sync pending — mentor may still be visible on portal"
REACTIVATE_PENDING_ALERT_MESSAGE = "Dynamics sync pending — reactivated mentor may still be hidden on portal"

# A mentor's events reach the portal in the order they were written: an event waits while an older
# one of the same mentor is not synced (a reactivation never overtakes the pause it ends).
_IN_MENTOR_ORDER = """NOT EXISTS (
    SELECT 1 FROM public.dynamics_sync_events AS older
    WHERE older.mentor_id = e.mentor_id AND older.status <> 'synced'
      AND (older.created_at, older.id) < (e.created_at, e.id))"""


@dataclass
class DynamicsClient:
    webhook_url: str
    timeout_seconds: float = 10.0
    token: str | None = None

    def deliver(self, event_id: uuid.UUID, payload: dict[str, Any]) -> None:
        headers = {"Idempotency-Key": str(event_id)}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = httpx.post(
                self.webhook_url,
                json={"event_id": str(event_id), **payload},
                headers=headers,
                timeout=self.timeout_seconds,
            )
        except httpx.TimeoutException:
            raise DynamicsSyncFailed(f"timed out after {self.timeout_seconds:g} s") from None
        except httpx.HTTPError as error:
            raise DynamicsSyncFailed(f"{type(error).__name__}: could not reach the portal") from None
        if not 200 <= response.status_code < 300:
            raise DynamicsSyncFailed(f"portal answered HTTP {response.status_code}")

    def __repr__(self) -> str:
        return "DynamicsClient(webhook_url='[secret]')"


def client_from_environment(timeout_seconds: float, webhook_url: str | None = None) -> DynamicsClient:
    """`DYNAMICS_WEBHOOK_URL` (and optional `DYNAMICS_WEBHOOK_TOKEN`), read when a sync runs."""
    current = dynamics_settings.load()
    url = webhook_url or settings.secret(current.dynamics_webhook_url)
    if not url:
        raise DynamicsNotConfigured("DYNAMICS_WEBHOOK_URL is not set: pending Dynamics events cannot be delivered")
    return DynamicsClient(url, timeout_seconds, settings.secret(current.dynamics_webhook_token))


@dataclass
class SyncResult:
    claimed: int = 0
    synced: int = 0
    failed: int = 0
    dead: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: SyncResult) -> None:
        self.claimed += other.claimed
        self.synced += other.synced
        self.failed += other.failed
        self.dead += other.dead


def due_events(connection: sa.Connection) -> tuple[int, str]:
    """How many events are due now, and a fingerprint that changes whenever that set (or an
    attempt count) does: the sensor's run key, so one state asks for one run."""
    row = connection.execute(
        sa.text(
            "SELECT count(*) AS due, coalesce(md5(string_agg(id::text || ':' || attempts, ',' ORDER BY id)), '')"
            " AS fingerprint FROM public.dynamics_sync_events AS e"
            f" WHERE status = 'pending' AND next_attempt_at <= clock_timestamp() AND {_IN_MENTOR_ORDER}"
        )
    ).one()
    return row.due, row.fingerprint


_CLAIM = f"""
SELECT id, mentor_id, payload, attempts FROM public.dynamics_sync_events AS e
WHERE status = 'pending' AND next_attempt_at <= clock_timestamp() AND {_IN_MENTOR_ORDER}
  AND (CAST(:event_ids AS uuid[]) IS NULL OR id = ANY(CAST(:event_ids AS uuid[])))
ORDER BY next_attempt_at, id
LIMIT :limit
FOR UPDATE SKIP LOCKED
"""

_RECORD = """
WITH outcome AS (
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:ok AS boolean[]), CAST(:errors AS text[]),
                         CAST(:delays AS float8[])) AS o (id, ok, error, delay_seconds)
), updated AS (
    UPDATE public.dynamics_sync_events AS e
    SET attempts = e.attempts + 1,
        status = CASE WHEN o.ok THEN 'synced' WHEN e.attempts + 1 >= :max_attempts THEN 'dead' ELSE 'pending' END,
        synced_at = CASE WHEN o.ok THEN clock_timestamp() END,
        last_error = o.error,
        next_attempt_at = CASE WHEN o.ok THEN e.next_attempt_at
                               ELSE clock_timestamp() + make_interval(secs => o.delay_seconds) END
    FROM outcome AS o WHERE e.id = o.id
    RETURNING e.id, e.mentor_id, e.action, e.status, e.attempts, e.last_error
), opened AS (
    INSERT INTO public.coordinator_alerts (coordinator_id, mentor_id, kind, message, sync_event_id)
    SELECT m.coordinator_id, u.mentor_id, 'dynamics_sync_pending',
           CASE u.action WHEN 'reactivate' THEN :reactivate_message ELSE :message END, u.id
    FROM updated AS u JOIN public.peer_mentors AS m ON m.id = u.mentor_id
    WHERE u.status <> 'synced'
    ON CONFLICT (mentor_id, kind) WHERE resolved_at IS NULL DO NOTHING
    RETURNING 1
), resolved AS (
    UPDATE public.coordinator_alerts AS a SET resolved_at = clock_timestamp()
    FROM updated AS u
    WHERE u.status = 'synced' AND a.mentor_id = u.mentor_id AND a.kind = 'dynamics_sync_pending'
      AND a.resolved_at IS NULL
    RETURNING 1
)
SELECT id, mentor_id, status, attempts, last_error FROM updated
"""


def sync_batch(
    transaction: Transaction,
    client: Callable[[], DynamicsClient],
    backoff: Backoff,
    *,
    batch_size: int = 20,
    event_ids: Sequence[uuid.UUID] | None = None,
    rng: Callable[[], float] = random.random,
) -> SyncResult:
    """Claim up to `batch_size` due events, deliver each, record every outcome in one statement.
    `client` is called only when something was claimed, so an idle run needs no webhook configured.
    `event_ids=None` means every due event; an empty list means none. `transaction` gives the run's
    connection inside a transaction (named after the run, with its timeouts, so Terminate stops it)."""
    with transaction() as connection:
        selected = None if event_ids is None else [str(event_id) for event_id in event_ids]
        claimed = connection.execute(sa.text(_CLAIM), {"event_ids": selected, "limit": batch_size}).all()
        if not claimed:
            return SyncResult()
        portal = client()
        outcomes: list[tuple[str, bool, str | None, float]] = []
        for event in claimed:
            try:
                portal.deliver(event.id, event.payload)
                outcomes.append((str(event.id), True, None, 0.0))
            except DynamicsSyncFailed as error:
                outcomes.append((str(event.id), False, str(error), backoff.delay_after(event.attempts + 1, rng)))
        ids, ok, errors, delays = (list(column) for column in zip(*outcomes, strict=True))
        rows = connection.execute(
            sa.text(_RECORD),
            {
                "ids": ids,
                "ok": ok,
                "errors": errors,
                "delays": delays,
                "max_attempts": backoff.max_attempts,
                "message": PENDING_ALERT_MESSAGE,
                "reactivate_message": REACTIVATE_PENDING_ALERT_MESSAGE,
            },
        ).all()
    return SyncResult(
        claimed=len(claimed),
        synced=sum(row.status == "synced" for row in rows),
        failed=sum(row.status != "synced" for row in rows),
        dead=[
            {
                "sync_event_id": str(row.id),
                "mentor_id": str(row.mentor_id),
                "attempts": row.attempts,
                "last_error": row.last_error,
            }
            for row in rows
            if row.status == "dead"
        ],
    )


def sync_due_events(
    transaction: Transaction,
    client: Callable[[], DynamicsClient],
    backoff: Backoff,
    *,
    batch_size: int = 20,
    event_ids: Sequence[uuid.UUID] | None = None,
    max_batches: int = 1000,
) -> SyncResult:
    """Batches until nothing is due (events that failed just now are not due again)."""
    total = SyncResult()
    client = functools.cache(client)  # built once, on the first batch that claims anything
    for _ in range(max_batches):
        result = sync_batch(transaction, client, backoff, batch_size=batch_size, event_ids=event_ids)
        total.add(result)
        if result.claimed < batch_size:
            break
    return total


def make_due_now(
    connection: sa.Connection, *, event_id: uuid.UUID | None = None, mentor_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Manual retry: pending or dead events (of one event, or of one mentor) become due now.
    A dead event gets one more attempt. Returns the ids made due."""
    return list(
        connection.execute(
            sa.text(
                "UPDATE public.dynamics_sync_events SET status = 'pending', next_attempt_at = clock_timestamp(),"
                " attempts = CASE WHEN status = 'dead' THEN attempts - 1 ELSE attempts END"
                " WHERE status IN ('pending', 'dead')"
                "   AND (CAST(:event_id AS uuid) IS NULL OR id = CAST(:event_id AS uuid))"
                "   AND (CAST(:mentor_id AS uuid) IS NULL OR mentor_id = CAST(:mentor_id AS uuid))"
                " RETURNING id"
            ),
            {"event_id": event_id, "mentor_id": mentor_id},
        ).scalars()
    )


def event_for_retry(connection: sa.Connection, event_id: uuid.UUID) -> sa.Row | None:
    """An event's status and its mentor's coordinator's user id, the event row locked until the
    caller's transaction ends (so the retry decision and the update see the same state)."""
    return connection.execute(
        sa.text(
            "SELECT e.status, c.auth_user_id AS coordinator_user FROM public.dynamics_sync_events AS e"
            " JOIN public.peer_mentors AS m ON m.id = e.mentor_id"
            " JOIN public.coordinators AS c ON c.id = m.coordinator_id"
            " WHERE e.id = :id FOR UPDATE OF e"
        ),
        {"id": event_id},
    ).one_or_none()
