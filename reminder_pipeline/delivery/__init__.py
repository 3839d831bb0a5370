"""Delivery: due notifications from the outbox reach people, one message per recipient and run."""

from reminder_pipeline.delivery import settings  # noqa: F401  (registers this domain's settings)
