"""The certifications domain's Dagster definitions: every lock-and-log job in its `jobs` module, and
the sensor that starts the Dynamics sync when events are due."""

from dagster import Definitions

from reminder_pipeline.certifications import checks, jobs
from reminder_pipeline.certifications.sensors import dynamics_sync_when_due
from reminder_pipeline.core.guarded_run import guarded_definitions

defs = Definitions.merge(guarded_definitions(jobs, checks.CHECKS), Definitions(sensors=[dynamics_sync_when_due]))
