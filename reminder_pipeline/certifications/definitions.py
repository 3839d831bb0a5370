"""The certifications domain's Dagster definitions."""

from reminder_pipeline.certifications.jobs import certification_reminders, dynamics_sync_job
from reminder_pipeline.core.guarded_run import guarded_definitions

defs = guarded_definitions(certification_reminders, dynamics_sync_job)
