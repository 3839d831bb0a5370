"""Certification rules as pure vectorised functions (DataFrame in, DataFrame out, no I/O).

`expires_on` is the first day a certification is no longer valid: on that day it has expired.
- Reminders concern each active mentor's *current* certification of each type (the one that
  expires last), so a certification renewed before expiry gets no further reminders. With
  thresholds (30, 14, 7, 1) a certification `d` days from expiry (1 <= d <= 30) is in the bracket of
  the smallest threshold >= d; the reminder for that threshold is due. Run daily, that is one
  reminder per threshold; after downtime that skipped several thresholds, only the nearest one.
- A mentor is paused when they hold certifications but none is valid any more (every one has
  `expires_on <= as_of`). A mentor with no certification on record is not paused by this rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from reminder_pipeline.core.errors import InputRejected

DEFAULT_THRESHOLDS = (30, 14, 7, 1)

CERTIFICATION_COLUMNS = ["cert_id", "mentor_id", "coordinator_id", "mentor_status", "certification_type", "expires_on"]
REMINDER_COLUMNS = ["cert_id", "mentor_id", "threshold_days", "days_left", "expires_on"]
PAUSE_COLUMNS = ["mentor_id", "coordinator_id", "cert_id", "expired_on"]


def _check(frame: pd.DataFrame) -> None:
    missing = set(CERTIFICATION_COLUMNS) - set(frame.columns)
    if missing:
        raise InputRejected(f"certifications frame lacks columns: {sorted(missing)}")


def _days_left(expires_on: pd.Series, as_of: dt.date) -> np.ndarray:
    expires = pd.to_datetime(expires_on, format="ISO8601").to_numpy(dtype="datetime64[D]")
    return (expires - np.datetime64(as_of, "D")).astype("int64")


def _current_per_type(certifications: pd.DataFrame) -> pd.DataFrame:
    """Each mentor's latest-expiring certification of each type."""
    ordered = certifications.sort_values(["mentor_id", "certification_type", "expires_on", "cert_id"])
    return ordered.drop_duplicates(["mentor_id", "certification_type"], keep="last")


def decide_expiry_reminders(
    certifications: pd.DataFrame, as_of: dt.date, thresholds: Sequence[int] = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    _check(certifications)
    brackets = np.array(sorted(set(thresholds)), dtype="int64")
    if brackets.size == 0 or brackets[0] < 1:
        raise InputRejected("thresholds must be positive day counts")
    current = _current_per_type(certifications[certifications["mentor_status"] == "active"])
    days_left = _days_left(current["expires_on"], as_of)
    due = (days_left >= 1) & (days_left <= brackets[-1])
    rows = current.loc[due]
    return pd.DataFrame(
        {
            "cert_id": rows["cert_id"].astype(str),
            "mentor_id": rows["mentor_id"].astype(str),
            "threshold_days": brackets[np.searchsorted(brackets, days_left[due], side="left")],
            "days_left": days_left[due],
            "expires_on": rows["expires_on"].astype(str),
        }
    ).reset_index(drop=True)[REMINDER_COLUMNS]


def decide_auto_pauses(certifications: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Active mentors whose every certification has expired, with the one that expired last."""
    _check(certifications)
    active = certifications[certifications["mentor_status"] == "active"]
    latest = active.sort_values(["mentor_id", "expires_on", "cert_id"]).drop_duplicates("mentor_id", keep="last")
    expired = latest.loc[_days_left(latest["expires_on"], as_of) <= 0]
    return pd.DataFrame(
        {
            "mentor_id": expired["mentor_id"].astype(str),
            "coordinator_id": expired["coordinator_id"].astype(str),
            "cert_id": expired["cert_id"].astype(str),
            "expired_on": expired["expires_on"].astype(str),
        }
    ).reset_index(drop=True)[PAUSE_COLUMNS]
