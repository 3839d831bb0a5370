"""What must hold for the Dynamics sync (see `reminder_pipeline/core/checks.py`)."""

import sqlalchemy as sa

from reminder_pipeline.core.checks import SAMPLE_SIZE, Check, Finding


def dynamics_events_stuck(connection: sa.Connection) -> Finding:
    """Events that gave up (dead), or are pending for more than an hour: a paused mentor may still
    be visible on the portal."""
    return Finding.from_rows(
        connection.execute(
            sa.text(
                "SELECT id, count(*) OVER () AS total FROM public.dynamics_sync_events"
                " WHERE status = 'dead' OR (status = 'pending' AND created_at < now() - interval '1 hour')"
                " ORDER BY id LIMIT :sample"
            ),
            {"sample": SAMPLE_SIZE},
        )
    )


CHECKS = [
    Check(
        "dynamics_sync_deliveries",
        "no_dynamics_event_dead_or_stuck",
        "No Dynamics sync event is dead, or pending for more than an hour.",
        dynamics_events_stuck,
    ),
]
