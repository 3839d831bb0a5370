"""Running the real jobs in-process against a test database."""

from __future__ import annotations

import datetime as dt

from dagster import ExecuteInProcessResult

from reminder_pipeline.assignments.jobs import run_config_for
from reminder_pipeline.definitions import build_defs


def run_assignment_reminders(database_url: str, as_of: dt.date, **rules: int) -> ExecuteInProcessResult:
    job = build_defs(database_url).get_job_def("assignment_reminders")
    return job.execute_in_process(run_config=run_config_for(as_of, **rules), raise_on_error=False)


def run_in_subprocess(database_url: str, as_of_iso: str) -> bool:
    """Entry point for spawned worker processes (module-level so `spawn` can import it)."""
    return run_assignment_reminders(database_url, dt.date.fromisoformat(as_of_iso)).success
