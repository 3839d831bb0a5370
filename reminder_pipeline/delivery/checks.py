"""What must hold for delivery (see `reminder_pipeline/core/checks.py`)."""

import sqlalchemy as sa
from dagster import AssetCheckSeverity

from reminder_pipeline.core.checks import SAMPLE_SIZE, Check, Finding
from reminder_pipeline.delivery.repository import SENDING_LEASE_SECONDS, TOO_OLD_REASON

ASSET = "notification_deliveries"


def _finding(connection: sa.Connection, where: str) -> Finding:
    return Finding.from_rows(
        connection.execute(
            sa.text(
                "SELECT id, count(*) OVER () AS total FROM public.notifications"
                f" WHERE {where} ORDER BY id LIMIT :sample"
            ),
            {"sample": SAMPLE_SIZE, "lease": SENDING_LEASE_SECONDS, "too_old": f"{TOO_OLD_REASON}%"},
        )
    )


def gave_up(connection: sa.Connection) -> Finding:
    """Failed after the last attempt: these reach nobody until an operator retries them."""
    return _finding(connection, "status = 'failed' AND next_attempt_at IS NULL")


def stuck_sending(connection: sa.Connection) -> Finding:
    """Claimed longer ago than the lease: a deliverer hangs, or nothing has run since one died."""
    return _finding(connection, "status = 'sending' AND claimed_at < now() - make_interval(secs => :lease)")


def expired_unsent_recently(connection: sa.Connection) -> Finding:
    """Expired in the last day because they were never delivered in time."""
    return _finding(
        connection,
        "status = 'expired' AND finished_at > now() - interval '24 hours' AND last_error LIKE :too_old",
    )


CHECKS = [
    Check(ASSET, "no_notification_gave_up", "No notification has failed its last delivery attempt.", gave_up),
    Check(
        ASSET,
        "no_notification_stuck_sending",
        f"No notification has been sending for more than {SENDING_LEASE_SECONDS // 60} minutes.",
        stuck_sending,
    ),
    Check(
        ASSET,
        "no_notification_expired_unsent",
        "No notification expired undelivered in the last 24 hours.",
        expired_unsent_recently,
        AssetCheckSeverity.WARN,
    ),
]
