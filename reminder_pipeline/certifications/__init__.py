"""Certification expiry reminders, auto-pause, and the Dynamics portal sync (a saga over an outbox)."""
