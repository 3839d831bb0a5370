"""A job's declaration: everything the rest of the project needs to know about it, written once,
beside the job.

The job definition carries its :class:`JobSpec` (as metadata, visible on the job's page in the
Dagster UI), and the CLI, the sensors, the execution log and the definitions read it from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dagster import JobDefinition, MetadataValue

from reminder_pipeline.core import locks

SPEC_METADATA_KEY = "reminder_pipeline/job_spec"


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    cron: str
    description: str


@dataclass(frozen=True)
class JobSpec:
    """One lock-and-log job of the pipeline."""

    name: str
    description: str
    #: Its advisory-lock key: constant, so an operator can find the holder in `pg_locks`.
    lock_key: int
    schedule: ScheduleSpec | None = None
    #: No successful run for longer than this many hours is a missed run (None: not watched).
    missed_run_hours: float | None = None
    #: The op whose config holds `as_of` (None: the job does not act for a date).
    dated_op: str | None = None
    #: The asset each successful run materialises with what it did (counts, as_of, log row), so the
    #: Dagster UI shows it on the run and plots it over time.
    asset: str | None = None
    #: This job's words for the two counts every run records (the log row's `assignments_evaluated`
    #: and `reminders_dispatched` columns): what it looked at, and what it did.
    counts: tuple[str, str] = ("evaluated", "created")

    def __post_init__(self) -> None:
        locks.register_job_lock(self.name, self.lock_key)

    def describe_counts(self, evaluated: int | None, done: int | None) -> str:
        """`1806 assignments evaluated, 2504 reminders created`, in this job's words."""
        return f"{evaluated} {self.counts[0]}, {done} {self.counts[1]}"

    @property
    def cli_name(self) -> str:
        """How the CLI names the job: `assignment_reminders` is `assignment-reminders`."""
        return self.name.replace("_", "-")

    def metadata(self) -> dict[str, Any]:
        return {SPEC_METADATA_KEY: MetadataValue.json(dataclasses.asdict(self))}

    @classmethod
    def of(cls, job: JobDefinition) -> JobSpec | None:
        """The spec a job was declared with, or None for a job that is not a lock-and-log job."""
        entry = job.metadata.get(SPEC_METADATA_KEY)
        if entry is None:
            return None
        fields = dict(entry.value)
        schedule = fields.pop("schedule")
        counts = tuple(fields.pop("counts", cls.counts))
        return cls(**fields, schedule=ScheduleSpec(**schedule) if schedule else None, counts=counts)  # type: ignore[arg-type]


def specs_of(jobs: Iterable[JobDefinition]) -> list[JobSpec]:
    """The specs of the lock-and-log jobs among `jobs`, by name."""
    return sorted((spec for job in jobs if (spec := JobSpec.of(job)) is not None), key=lambda spec: spec.name)
