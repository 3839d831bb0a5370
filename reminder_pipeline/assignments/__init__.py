"""Assignment follow-up reminders: remind mentors who have lost touch, escalate to coordinators."""
