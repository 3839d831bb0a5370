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

from reminder_pipeline.assignments import notifications
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
    """Dates (or date strings) as numpy day numbers; missing values become NaT."""
    return pd.to_datetime(values, errors="coerce", format="ISO8601").to_numpy(dtype="datetime64[D]")


def decide_reminders(assignments: pd.DataFrame, as_of: dt.date, rules: ReminderRules) -> pd.DataFrame:
    """The notifications due on `as_of` for the given assignments."""
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
        & (assignments["assignment_status"].to_numpy() == "active")
        & (assignments["mentor_status"].to_numpy() == "active")
        & (day_count >= 0)  # a contact dated in the future is no gap at all
    )
    mentor_due = eligible & (day_count >= rules.reminder_after_days)
    escalation_due = eligible & (day_count >= rules.escalate_after_days)

    reference_text = pd.Series(reference.astype(str), index=assignments.index)
    mentor = _decisions(
        assignments.loc[mentor_due],
        kind=MENTOR_REMINDER,
        recipient_role="mentor",
        recipient_column="mentor_id",
        reference_date=reference_text[mentor_due],
        step=(day_count[mentor_due] - rules.reminder_after_days) // rules.reminder_interval_days,
        days=day_count[mentor_due],
    )
    coordinator = _decisions(
        assignments.loc[escalation_due],
        kind=COORDINATOR_ESCALATION,
        recipient_role="coordinator",
        recipient_column="coordinator_id",
        reference_date=reference_text[escalation_due],
        step=np.zeros(int(escalation_due.sum()), dtype="int64"),
        days=day_count[escalation_due],
    )
    return pd.concat([mentor, coordinator], ignore_index=True)[DECISION_COLUMNS]


def _decisions(
    rows: pd.DataFrame,
    *,
    kind: str,
    recipient_role: str,
    recipient_column: str,
    reference_date: pd.Series,
    step: np.ndarray,
    days: np.ndarray,
) -> pd.DataFrame:
    assignment_id = rows["assignment_id"].astype(str)
    step_series = pd.Series(step, index=rows.index, dtype="int64")
    return pd.DataFrame(
        {
            "source_id": assignment_id,
            "kind": kind,
            "recipient_role": recipient_role,
            "recipient_id": rows[recipient_column].astype(str),
            "assignment_id": assignment_id,
            "reference_date": reference_date,
            "step": step_series,
            "days_without_contact": pd.Series(days, index=rows.index, dtype="int64"),
        }
    )
