"""The same reminder run in fixed-size chunks of assignments, for memory that stays flat as N grows.

Each chunk is read in id order (keyset pagination on the partial index of active assignments),
decided, and dispatched in its own transaction. Idempotency keys make a partly finished run safe to
repeat. This is the building block for the partitioned job described in docs/scaling.md; the
benchmark measures it beside the standard job.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from reminder_pipeline.assignments.repository import load_active_assignments
from reminder_pipeline.assignments.rules import ReminderRules, decide_reminders
from reminder_pipeline.core import outbox
from reminder_pipeline.core.database import connect


@dataclass
class ChunkedResult:
    chunks: int = 0
    assignments_evaluated: int = 0
    reminders_dispatched: int = 0


def remind_in_chunks(
    database_url: str, as_of: dt.date, rules: ReminderRules, chunk_size: int = 100_000
) -> ChunkedResult:
    result = ChunkedResult()
    after: uuid.UUID | None = None
    while True:
        with connect(database_url) as connection, connection.begin():
            chunk = load_active_assignments(connection, after_id=after, limit=chunk_size)
            if chunk.empty:
                return result
            created = outbox.dispatch(connection, decide_reminders(chunk, as_of, rules)).created
        result.chunks += 1
        result.assignments_evaluated += len(chunk)
        result.reminders_dispatched += created
        after = uuid.UUID(chunk["assignment_id"].iloc[-1])
        if len(chunk) < chunk_size:
            return result
