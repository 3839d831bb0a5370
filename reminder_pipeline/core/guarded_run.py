"""The lock-and-log wrapper every scheduled job is built with: one import for a domain's jobs.

The wrapper lives in four modules, one concern each:
- :mod:`~reminder_pipeline.core.run_guard`: the resource holding the lock and the log row for a run
  (and the watchdog that cancels a terminated run's queries);
- :mod:`~reminder_pipeline.core.guarded_ops`: the begin/finish ops and the failure hook;
- :mod:`~reminder_pipeline.core.guarded_job`: `@guarded_job`, the schedule and the per-job asset
  and checks (`guarded_definitions`);
- :mod:`~reminder_pipeline.core.run_io`: the in-memory IO manager that refuses partial re-execution.
"""

from reminder_pipeline.core.guarded_job import SERIAL_TAG, guarded_definitions, guarded_job
from reminder_pipeline.core.guarded_ops import (
    begin_guarded_run,
    finish_guarded_run,
    outcome_metadata,
    record_failed_step,
    safe_errors,
    sample_ids,
)
from reminder_pipeline.core.run_guard import INTERRUPTED_MESSAGE, JobOutcome, JobRunGuard, RunTicket
from reminder_pipeline.core.run_history import SKIPPED_TAG
from reminder_pipeline.core.run_io import REEXECUTION_MESSAGE, RunMemoryIOManager, run_memory_io_manager

__all__ = [
    "INTERRUPTED_MESSAGE",
    "REEXECUTION_MESSAGE",
    "SERIAL_TAG",
    "SKIPPED_TAG",
    "JobOutcome",
    "JobRunGuard",
    "RunMemoryIOManager",
    "RunTicket",
    "begin_guarded_run",
    "finish_guarded_run",
    "guarded_definitions",
    "guarded_job",
    "outcome_metadata",
    "record_failed_step",
    "run_memory_io_manager",
    "safe_errors",
    "sample_ids",
]
