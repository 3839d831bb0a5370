"""The assignments domain's Dagster definitions."""

from reminder_pipeline.assignments.jobs import assignment_reminders
from reminder_pipeline.core.guarded_run import guarded_definitions

defs = guarded_definitions(assignment_reminders)
