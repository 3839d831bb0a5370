"""The SQL of `job_schedules` and `schedule_overdue` (migration 0010): which scheduled runs were
expected and have no success, decided by the database itself so that pg_cron, the watchdog command,
`logs`, the admin API and the asset checks all see the same answer with no Dagster process alive."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from reminder_pipeline.core.jobs import JobSpec
from reminder_pipeline.core.settings import LOCAL_TIMEZONE

_DAILY_CRON = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* \*$")


@dataclass(frozen=True)
class Overdue:
    job_name: str
    expected_at: dt.datetime
    last_success_at: dt.datetime | None

    def describe(self) -> str:
        last = f"{self.last_success_at:%Y-%m-%d %H:%M %Z}" if self.last_success_at else "never"
        return (
            f"{self.job_name}: SCHEDULE OVERDUE, expected at {self.expected_at:%Y-%m-%d %H:%M %Z}, last success {last}"
        )


def daily_time(cron: str) -> dt.time | None:
    """`0 7 * * *` is 07:00; None for a schedule that is not once a day (not watched by the database)."""
    match = _DAILY_CRON.match(cron.strip())
    if match is None:
        return None
    minute, hour = int(match.group(1)), int(match.group(2))
    return dt.time(hour, minute) if hour < 24 and minute < 60 else None


def sync_job_schedules(connection: sa.Connection, specs: Iterable[JobSpec]) -> list[str]:
    """Write every daily schedule the jobs declare (one statement); forget the ones no longer declared.
    Returns the watched job names. A job already watched keeps its row (`watched_since`, `grace`, and
    `daily_at`) until its declared cron or time zone changes."""
    rows = [
        {"job": spec.name, "cron": spec.schedule.cron, "at": at, "tz": LOCAL_TIMEZONE}
        for spec in specs
        if spec.schedule is not None and (at := daily_time(spec.schedule.cron)) is not None
    ]
    names = [row["job"] for row in rows]
    connection.execute(sa.text("DELETE FROM public.job_schedules WHERE NOT (job_name = ANY(:names))"), {"names": names})
    if rows:
        connection.execute(
            sa.text(
                "INSERT INTO public.job_schedules (job_name, cron, daily_at, timezone)"
                " SELECT * FROM unnest(CAST(:jobs AS text[]), CAST(:crons AS text[]), CAST(:ats AS time[]),"
                " CAST(:tzs AS text[]))"
                " ON CONFLICT (job_name) DO UPDATE SET cron = excluded.cron, daily_at = excluded.daily_at,"
                " timezone = excluded.timezone, updated_at = now()"
                # Only when the declaration changed: a row an operator tuned (grace, daily_at) is kept.
                " WHERE (job_schedules.cron, job_schedules.timezone)"
                " IS DISTINCT FROM (excluded.cron, excluded.timezone)"
            ),
            {
                "jobs": names,
                "crons": [row["cron"] for row in rows],
                "ats": [row["at"] for row in rows],
                "tzs": [row["tz"] for row in rows],
            },
        )
    return names


def record_overdue(connection: sa.Connection, detector: str = "watchdog") -> list[Overdue]:
    """Record expected runs without a success (once each), resolve covered ones, return the open ones."""
    rows = connection.execute(
        sa.text("SELECT job_name, expected_at, last_success_at FROM public.record_overdue_jobs(:detector)"),
        {"detector": detector},
    ).all()
    return [Overdue(row.job_name, row.expected_at, row.last_success_at) for row in rows]


def open_overdue(connection: sa.Connection, job_name: str | None = None) -> list[Overdue]:
    """What is overdue now (the `open_schedule_overdue` view; reads only)."""
    rows = connection.execute(
        sa.text(
            "SELECT job_name, expected_at, last_success_at FROM public.open_schedule_overdue"
            " WHERE CAST(:job AS text) IS NULL OR job_name = :job ORDER BY job_name, expected_at"
        ),
        {"job": job_name},
    ).all()
    return [Overdue(row.job_name, row.expected_at, row.last_success_at) for row in rows]
