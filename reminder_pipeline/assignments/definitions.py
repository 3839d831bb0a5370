"""The assignments domain's Dagster definitions: every lock-and-log job in its `jobs` module."""

from reminder_pipeline.assignments import checks, jobs
from reminder_pipeline.core.guarded_run import guarded_definitions

defs = guarded_definitions(jobs, checks.CHECKS)
