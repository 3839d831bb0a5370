"""A job's failure streak, counted in one place: Dagster's run storage.

The operations alert (`ops_run_failures`) and the execution log's `consecutive_failure_count`
column read the same streak from the same source, so the row and the alert can never disagree.
Dagster's run storage is the source because it sees every way a run ends badly (a failed step, a
run reported dead, a run that failed before it could write a log row) and still answers while the
application database is down. Skipped runs (the lock was held) and dry runs prove nothing either
way; cancelled runs are not finished runs: none of them ends or extends a streak.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from reminder_pipeline.core.run_config import DRY_RUN_TAG

#: Tag of a run that found the lock held and did nothing: it neither ends nor extends a failure streak.
SKIPPED_TAG = "reminder_pipeline/skipped"
#: How far back a streak is looked for; a longer streak is reported as this long.
HISTORY = 50


@dataclass(frozen=True)
class RunSummary:
    """A finished run of a job as Dagster's run storage has it (skipped and dry runs left out)."""

    run_id: str
    succeeded: bool
    ended_at: dt.datetime | None = None


def finished_runs(instance: DagsterInstance, job_name: str, *, before_run_id: str | None = None) -> list[RunSummary]:
    """The job's finished runs, newest first; with `before_run_id`, only those created before that
    run (never the run itself; a run the storage does not know has no "before": all of them)."""
    created_before = None
    if before_run_id is not None:
        own = instance.get_run_record_by_id(before_run_id)
        created_before = own.create_timestamp if own is not None else None
    records = instance.get_run_records(
        RunsFilter(
            job_name=job_name,
            statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE],
            created_before=created_before,
        ),
        limit=HISTORY,
    )
    return [
        RunSummary(
            record.dagster_run.run_id,
            record.dagster_run.status == DagsterRunStatus.SUCCESS,
            dt.datetime.fromtimestamp(record.end_time, dt.UTC) if record.end_time else None,
        )
        for record in records
        if record.dagster_run.run_id != before_run_id
        and record.dagster_run.tags.get(SKIPPED_TAG) != "true"
        and record.dagster_run.tags.get(DRY_RUN_TAG) != "true"
    ]


def leading_failures(runs: Sequence[RunSummary]) -> list[RunSummary]:
    """The failed runs at the head of `runs` (newest first), up to the newest success."""
    streak: list[RunSummary] = []
    for run in runs:
        if run.succeeded:
            break
        streak.append(run)
    return streak


def failure_streak(instance: DagsterInstance | None, job_name: str, run_id: str | None) -> int:
    """The length of the streak a failing run ends, counting it: 1 + the failed runs right before
    it. Without a run storage to ask (a row written outside a Dagster run), or when it cannot be
    read, the run counts alone: recording the failure matters more than its place in a streak."""
    if instance is None or run_id is None:
        return 1
    try:
        return 1 + len(leading_failures(finished_runs(instance, job_name, before_run_id=run_id)))
    except Exception:
        return 1
