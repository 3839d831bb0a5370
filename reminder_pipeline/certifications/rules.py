"""Certification rules as pure vectorised functions (DataFrame in, DataFrame out, no I/O).

`expires_on` is the first day a certification is no longer valid: on that day it has expired.
- Reminders concern each active mentor's *current* certification of each type (the one that
  expires last), so a certification renewed before expiry gets no further reminders. With
  thresholds (30, 14, 7, 1) a certification `d` days from expiry (1 <= d <= 30) is in the bracket of
  the smallest threshold >= d; the reminder for that threshold is due. Run daily, that is one
  reminder per threshold; after downtime that skipped several thresholds, only the nearest one.
- A mentor is paused when they hold certifications but none is valid any more (every one has
  `expires_on <= as_of`). A mentor with no certification on record is not paused by this rule.
- A mentor paused by that rule is reactivated when they hold a newer certification of the type that
  expired, valid on `as_of` (`issued_on <= as_of < expires_on`). A mentor with any other open pause
  (a coordinator's, for another reason) is never reactivated by this rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from reminder_pipeline.certifications.notifications import EXPIRY_REMINDER, MENTOR_AUTO_PAUSED, MENTOR_REACTIVATED
from reminder_pipeline.core.errors import InputRejected

DEFAULT_THRESHOLDS = (30, 14, 7, 1)

CERTIFICATION_COLUMNS = ["cert_id", "mentor_id", "coordinator_id", "mentor_status", "certification_type", "expires_on"]
REMINDER_COLUMNS = ["cert_id", "mentor_id", "threshold_days", "days_left", "expires_on"]
PAUSE_COLUMNS = ["mentor_id", "coordinator_id", "cert_id", "expired_on"]
#: Open pauses of paused mentors, each with the renewal candidates (certifications of the type that
#: expired, newer than it; none: a row with empty cert columns).
OPEN_PAUSE_COLUMNS = ["pause_id", "mentor_id", "coordinator_id", "reason", "cert_id", "issued_on", "expires_on"]
REACTIVATION_COLUMNS = ["pause_id", "mentor_id", "coordinator_id", "cert_id", "expires_on"]
#: The reason the auto-pause writes, and the only one a renewal ends.
CERTIFICATION_EXPIRED = "certification_expired"


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


def decide_reactivations(open_pauses: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Paused mentors whose only open pauses are automatic ones and who now hold a valid renewal,
    with the renewal that is valid longest."""
    missing = set(OPEN_PAUSE_COLUMNS) - set(open_pauses.columns)
    if missing:
        raise InputRejected(f"open pauses frame lacks columns: {sorted(missing)}")
    other_reason = open_pauses.loc[open_pauses["reason"] != CERTIFICATION_EXPIRED, "mentor_id"].unique()
    candidates = open_pauses[~open_pauses["mentor_id"].isin(other_reason) & open_pauses["cert_id"].notna()]
    issued_ago = -_days_left(candidates["issued_on"], as_of)
    valid = candidates.loc[(issued_ago >= 0) & (_days_left(candidates["expires_on"], as_of) > 0)]
    best = valid.sort_values(["mentor_id", "expires_on", "cert_id"]).drop_duplicates("mentor_id", keep="last")
    return pd.DataFrame(
        {column: best[column].astype(str) for column in REACTIVATION_COLUMNS}, columns=REACTIVATION_COLUMNS
    ).reset_index(drop=True)


# The notices the writes above lead to, as outbox frames (core/outbox.py). Their idempotency keys
# (`source_id`, kind, recipient role, reference date, step) identify what their text keys did before
# migration 0014: a rerun, or a row written before, is never sent twice.


def _outbox_frame(
    rows: pd.DataFrame,
    kind_name: str,
    role: pd.Series | str,
    recipient: pd.Series,
    source: pd.Series,
    **columns: pd.Series | None,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_id": source,
            "kind": kind_name,
            "recipient_role": role,
            "recipient_id": recipient,
            "assignment_id": None,
            "reference_date": columns.pop("reference_date", None),
            "step": columns.pop("step", None),
            **columns,
        },
        index=rows.index,
    )


def expiry_notices(logged: pd.DataFrame) -> pd.DataFrame:
    """One notice to the mentor per logged (certification, threshold) (`REMINDER_COLUMNS`): keyed by
    the certification and the threshold (`step`) only, the expiry date being in its payload."""
    threshold = logged["threshold_days"].astype("int64")
    return _outbox_frame(
        logged,
        EXPIRY_REMINDER.name,
        "mentor",
        logged["mentor_id"],
        logged["cert_id"],
        step=threshold,
        cert_id=logged["cert_id"],
        threshold_days=threshold,
        days_left=logged["days_left"].astype("int64"),
        expires_on=logged["expires_on"],
    ).reset_index(drop=True)


def _to_mentor_and_coordinator(rows: pd.DataFrame, kind_name: str, source: str, **payload: str) -> pd.DataFrame:
    """A notice to the mentor and one to their coordinator per row, keyed by the row's `source`
    column (the certification or the pause, which belongs to one mentor) and the role."""
    frames = []
    for role, recipient in (("mentor", "mentor_id"), ("coordinator", "coordinator_id")):
        columns = {name: rows[column] for name, column in payload.items()}
        frames.append(_outbox_frame(rows, kind_name, role, rows[recipient], rows[source], **columns))
    return pd.concat(frames, ignore_index=True)


def pause_notices(paused: pd.DataFrame) -> pd.DataFrame:
    """Mentor and coordinator told of each pause that was written (`PAUSE_COLUMNS`)."""
    return _to_mentor_and_coordinator(
        paused, MENTOR_AUTO_PAUSED.name, "cert_id", mentor_id="mentor_id", cert_id="cert_id", expired_on="expired_on"
    )


def reactivation_notices(reactivated: pd.DataFrame) -> pd.DataFrame:
    """Mentor and coordinator told of each reactivation that was written (`REACTIVATION_COLUMNS`)."""
    return _to_mentor_and_coordinator(
        reactivated,
        MENTOR_REACTIVATED.name,
        "pause_id",
        mentor_id="mentor_id",
        cert_id="cert_id",
        expires_on="expires_on",
    )
