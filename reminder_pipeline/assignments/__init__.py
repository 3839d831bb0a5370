"""Assignment follow-up reminders: remind mentors who have lost touch, escalate to coordinators."""

from reminder_pipeline.assignments import notifications  # noqa: F401  (declares this domain's notification kinds)
