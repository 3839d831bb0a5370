"""The delivery asset checks find exactly the notifications they are about, and only those."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from reminder_pipeline.delivery import checks
from reminder_pipeline_tests.delivery.conftest import NOON, Recipients, deliver, notification, policy

pytestmark = pytest.mark.database


def test_each_check_finds_its_own_notifications(db: sa.Connection, database_url: str, recipients: Recipients) -> None:
    mentor = recipients.mentor()
    healthy = notification(db, recipient_id=mentor)
    too_old = notification(db, recipient_id=mentor, created_at=NOON - dt.timedelta(hours=80))
    gave_up, stuck = (notification(db, recipient_id=mentor) for _ in range(2))
    db.execute(
        sa.text(
            "UPDATE public.notifications SET status = 'failed', attempts = 10, next_attempt_at = NULL WHERE id = :i"
        ),
        {"i": gave_up},
    )
    db.execute(
        sa.text(
            "UPDATE public.notifications SET status = 'sending', attempts = 1, next_attempt_at = NULL,"
            " message_key = gen_random_uuid(), claimed_by = current_setting('application_name'),"
            " claimed_at = now() - interval '20 minutes' WHERE id = :i"
        ),
        {"i": stuck},
    )
    assert checks.gave_up(db).sample_ids == [str(gave_up)]
    assert checks.stuck_sending(db).sample_ids == [str(stuck)]
    assert checks.expired_unsent_recently(db).count == 0

    # A delivery expires the too-old one; the check sees it for a day.
    result = deliver(database_url, policy(("push",)), push_url="http://127.0.0.1:9/unused")
    assert result.expired_ids == [too_old]
    assert checks.expired_unsent_recently(db).sample_ids == [str(too_old)]
    assert str(healthy) not in checks.gave_up(db).sample_ids + checks.stuck_sending(db).sample_ids
