"""Who gets reminded, as pure vectorised functions: DataFrame in, DataFrame out, no I/O, no Dagster.

A *contact gap* starts on the reference date: the last logged contact, or the day the assignment
was made when no contact was ever logged. In a gap of `d` days (counted in Europe/Oslo dates):
- the mentor is reminded when `d >= reminder_after_days`, then again every
  `reminder_interval_days` (step 0, 1, 2, ...), for as long as no contact is logged;
- the coordinator is told once per gap when `d >= escalate_after_days`.
Every decision carries its idempotency key (`source_id` = the assignment, kind, recipient role,
reference date, step; `core/outbox.py`): a rerun on the
same day, a run that overlaps another, or a late run after downtime can only produce keys that
already exist, so the outbox's unique key turns them into no-ops.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reminder_pipeline.assignments import notifications
from reminder_pipeline.core.bulk import TEXT
from reminder_pipeline.core.errors import InputRejected
from reminder_pipeline.core.outbox import OUTBOX_COLUMNS

MENTOR_REMINDER = notifications.MENTOR_REMINDER.name
COORDINATOR_ESCALATION = notifications.COORDINATOR_ESCALATION.name

#: Columns the rules read (one row per assignment).
ASSIGNMENT_COLUMNS = [
    "assignment_id",
    "mentor_id",
    "coordinator_id",
    "assignment_status",
    "mentor_status",
    "assigned_on",
    "last_contact_date",
]

#: Columns of a decision (one row per notification to create): what the outbox stores, and the
#: payload key both kinds declare.
DECISION_COLUMNS = [*OUTBOX_COLUMNS, notifications.DAYS_WITHOUT_CONTACT["days"].payload_key]


def _days(default: int, description: str) -> int:
    """A threshold in days, with what it means: the run config's field is made from it."""
    return field(default=default, metadata={"description": description})


@dataclass(frozen=True)
class ReminderRules:
    """Thresholds in days; the defaults are the documented policy. Written once: the run config
    (`assignments/jobs.py`) offers one field per threshold, with its default and description."""

    reminder_after_days: int = _days(10, "First reminder after this many days.")
    reminder_interval_days: int = _days(7, "Then at most every this many days.")
    escalate_after_days: int = _days(21, "Coordinator told after this many days.")

    def __post_init__(self) -> None:
        names = [threshold.name for threshold in fields(self)]
        if any(getattr(self, name) < 1 for name in names):
            raise InputRejected(f"{', '.join(names)} must be >= 1")


def _as_days(values: pd.Series) -> np.ndarray:
    """Dates (or date strings) as numpy day numbers; missing values become NaT. ISO dates (what the
    database sends) are parsed by Arrow, ten times faster than pandas; anything else by pandas."""
    try:
        dates = pa.array(values, from_pandas=True)
        if pa.types.is_string(dates.type) or pa.types.is_large_string(dates.type):
            dates = pc.cast(dates, pa.date32())
        if pa.types.is_date32(dates.type):
            return dates.to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass  # not all ISO dates: pandas decides, missing what it cannot read
    return pd.to_datetime(values, errors="coerce", format="ISO8601").to_numpy(dtype="datetime64[D]")


def _text(condition: np.ndarray, if_true: str, if_false: str) -> pd.api.extensions.ExtensionArray:
    """One of two texts per row, made by Arrow: numpy's fixed-width strings cost ten times more."""
    return pd.array(pc.if_else(pa.array(condition, type=pa.bool_()), if_true, if_false), dtype=TEXT)


def _is_active(values: pd.Series) -> np.ndarray:
    return (values == "active").fillna(False).to_numpy(dtype=bool)


def decide_reminders(assignments: pd.DataFrame, as_of: dt.date, rules: ReminderRules) -> pd.DataFrame:
    """The notifications due on `as_of` for the given assignments: the mentors' reminders, then the
    coordinators' escalations, each in the assignments' order."""
    missing = set(ASSIGNMENT_COLUMNS) - set(assignments.columns)
    if missing:
        raise InputRejected(f"assignments frame lacks columns: {sorted(missing)}")

    last_contact = _as_days(assignments["last_contact_date"])
    assigned_on = _as_days(assignments["assigned_on"])
    reference = np.where(np.isnat(last_contact), assigned_on, last_contact)
    days = (np.datetime64(as_of, "D") - reference).astype("timedelta64[D]")
    known = ~np.isnat(days)
    day_count = np.where(known, days.astype("int64", copy=False), -1)

    eligible = (
        known
        & _is_active(assignments["assignment_status"])
        & _is_active(assignments["mentor_status"])
        & (day_count >= 0)  # a contact dated in the future is no gap at all
    )
    mentor_rows = np.flatnonzero(eligible & (day_count >= rules.reminder_after_days))
    coordinator_rows = np.flatnonzero(eligible & (day_count >= rules.escalate_after_days))
    rows = np.concatenate([mentor_rows, coordinator_rows])
    to_mentor = np.arange(len(rows)) < len(mentor_rows)
    gap_days = day_count[rows]
    assignment_id = assignments["assignment_id"].iloc[rows].astype(str).reset_index(drop=True)
    recipient_id = pd.concat(
        [assignments["mentor_id"].iloc[mentor_rows], assignments["coordinator_id"].iloc[coordinator_rows]],
        ignore_index=True,
    ).astype(str)
    return pd.DataFrame(
        {
            "source_id": assignment_id,
            "kind": _text(to_mentor, MENTOR_REMINDER, COORDINATOR_ESCALATION),
            "recipient_role": _text(to_mentor, "mentor", "coordinator"),
            "recipient_id": recipient_id,
            "assignment_id": assignment_id,
            "reference_date": pd.array(pc.cast(pa.array(reference[rows]), pa.string()), dtype=TEXT),
            "step": np.where(to_mentor, (gap_days - rules.reminder_after_days) // rules.reminder_interval_days, 0),
            "days_without_contact": gap_days,
        }
    )[DECISION_COLUMNS]
