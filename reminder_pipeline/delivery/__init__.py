"""Delivery: due notifications from the outbox reach people, one message per recipient and run."""
