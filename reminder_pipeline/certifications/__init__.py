"""Certification expiry reminders, auto-pause, and the Dynamics portal sync (a saga over an outbox)."""

from reminder_pipeline.certifications import (
    notifications,  # noqa: F401  (declares this domain's notification kinds)
    settings,  # noqa: F401  (registers this domain's settings)
)
