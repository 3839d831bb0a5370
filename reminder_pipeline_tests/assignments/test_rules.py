import datetime as dt

import pandas as pd
import pytest

from reminder_pipeline.assignments.rules import (
    COORDINATOR_ESCALATION,
    DECISION_COLUMNS,
    MENTOR_REMINDER,
    ReminderRules,
    decide_reminders,
)
from reminder_pipeline.core import outbox

AS_OF = dt.date(2026, 11, 22)
RULES = ReminderRules()


def _frame(*rows: dict) -> pd.DataFrame:
    defaults = {
        "mentor_id": "m-1",
        "coordinator_id": "c-1",
        "assignment_status": "active",
        "mentor_status": "active",
        "assigned_on": "2026-01-01",
        "last_contact_date": None,
    }
    return pd.DataFrame([{**defaults, "assignment_id": f"a-{i}", **row} for i, row in enumerate(rows)])


def _days_ago(days: int) -> str:
    return (AS_OF - dt.timedelta(days=days)).isoformat()


def _kinds(decisions: pd.DataFrame) -> list[tuple[str, str, int]]:
    return sorted(zip(decisions["assignment_id"], decisions["kind"], decisions["step"], strict=True))


def test_first_reminder_on_the_tenth_day_without_contact_not_the_ninth() -> None:
    decisions = decide_reminders(
        _frame({"last_contact_date": _days_ago(9)}, {"last_contact_date": _days_ago(10)}), AS_OF, RULES
    )
    assert _kinds(decisions) == [("a-1", MENTOR_REMINDER, 0)]
    assert outbox.key_text(decisions)[0] == f"a-1:{MENTOR_REMINDER}:mentor:{_days_ago(10)}:0"
    assert decisions.loc[0, "recipient_role"] == "mentor" and decisions.loc[0, "recipient_id"] == "m-1"


def test_further_reminders_every_interval_with_a_new_step_each_time() -> None:
    steps = {
        days: decide_reminders(_frame({"last_contact_date": _days_ago(days)}), AS_OF, RULES)
        for days in (16, 17, 23, 24)
    }
    assert [frame.query("kind == @MENTOR_REMINDER")["step"].item() for frame in steps.values()] == [
        0,
        1,
        1,
        2,
    ]


def test_the_coordinator_is_told_once_per_gap_from_day_21() -> None:
    at_20 = decide_reminders(_frame({"last_contact_date": _days_ago(20)}), AS_OF, RULES)
    at_21 = decide_reminders(_frame({"last_contact_date": _days_ago(21)}), AS_OF, RULES)
    at_60 = decide_reminders(_frame({"last_contact_date": _days_ago(60)}), AS_OF, RULES)
    assert COORDINATOR_ESCALATION not in set(at_20["kind"])
    (escalation_21,) = outbox.key_text(at_21.query("kind == @COORDINATOR_ESCALATION"))
    (escalation_60,) = outbox.key_text(at_60.query("kind == @COORDINATOR_ESCALATION"))
    assert escalation_21 == f"a-0:{COORDINATOR_ESCALATION}:coordinator:{_days_ago(21)}:0"
    assert at_21.query("kind == @COORDINATOR_ESCALATION")["recipient_id"].item() == "c-1"
    # the same gap keeps the same key, whatever the day: the outbox dedupes it
    assert escalation_60.endswith(f"{_days_ago(60)}:0")


def test_never_contacted_counts_from_the_assignment_date() -> None:
    decisions = decide_reminders(_frame({"assigned_on": _days_ago(12)}), AS_OF, RULES)
    assert _kinds(decisions) == [("a-0", MENTOR_REMINDER, 0)]
    assert decisions.loc[0, "reference_date"] == _days_ago(12)


@pytest.mark.parametrize(
    "row",
    [
        {"last_contact_date": AS_OF.isoformat()},  # contacted today
        {"last_contact_date": (AS_OF + dt.timedelta(days=3)).isoformat()},  # dated in the future
        {"mentor_status": "paused"},
        {"mentor_status": None},  # mentor missing
        {"assignment_status": "closed"},
        {"assigned_on": None, "last_contact_date": None},  # no reference date at all
        {"assigned_on": _days_ago(5)},  # new assignment, never contacted
    ],
)
def test_assignments_that_are_not_due(row: dict) -> None:
    assert decide_reminders(_frame(row), AS_OF, RULES).empty


def test_a_recent_contact_wins_over_an_old_assignment_date() -> None:
    decisions = decide_reminders(
        _frame({"assigned_on": _days_ago(300), "last_contact_date": _days_ago(2)}), AS_OF, RULES
    )
    assert decisions.empty


def test_custom_thresholds_apply() -> None:
    rules = ReminderRules(reminder_after_days=3, reminder_interval_days=2, escalate_after_days=5)
    decisions = decide_reminders(_frame({"last_contact_date": _days_ago(5)}), AS_OF, rules)
    assert _kinds(decisions) == [("a-0", COORDINATOR_ESCALATION, 0), ("a-0", MENTOR_REMINDER, 1)]


def test_an_empty_frame_gives_an_empty_frame_with_the_decision_columns() -> None:
    decisions = decide_reminders(_frame().iloc[0:0].reindex(columns=list(_frame({}).columns)), AS_OF, RULES)
    assert decisions.empty and list(decisions.columns) == DECISION_COLUMNS


def test_keys_are_unique_and_stable_across_reruns() -> None:
    frame = _frame(*({"last_contact_date": _days_ago(days)} for days in range(0, 80)))
    first, second = decide_reminders(frame, AS_OF, RULES), decide_reminders(frame, AS_OF, RULES)
    assert outbox.key_text(first).is_unique
    assert outbox.key_text(first).tolist() == outbox.key_text(second).tolist()


def test_bad_thresholds_and_missing_columns_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        ReminderRules(reminder_interval_days=0)
    with pytest.raises(ValueError, match="lacks columns"):
        decide_reminders(pd.DataFrame({"assignment_id": ["a"]}), AS_OF, RULES)


def test_dates_read_the_same_as_database_text_as_dates_or_as_timestamps_and_an_unreadable_one_is_missing() -> None:
    """ISO text (what the database sends) is parsed by Arrow; anything else falls to pandas, with
    the same days. A value neither can read is missing, never an error: a contact date counts as no
    contact (the gap runs from the assignment), an assignment date with no contact gives no gap."""
    contact = AS_OF - dt.timedelta(days=24)
    as_text = _frame({"last_contact_date": contact.isoformat()}, {"last_contact_date": None})
    as_text = as_text.astype({"last_contact_date": pd.StringDtype(na_value=float("nan"))})
    as_dates = _frame({"last_contact_date": contact}, {"last_contact_date": None})
    as_timestamps = _frame({"last_contact_date": f"{contact.isoformat()}T00:00:00"}, {"last_contact_date": None})
    expected = [("a-0", COORDINATOR_ESCALATION, 0), ("a-0", MENTOR_REMINDER, 2), ("a-1", COORDINATOR_ESCALATION, 0)]
    expected.append(("a-1", MENTOR_REMINDER, (AS_OF - dt.date(2026, 1, 1)).days // 7 - 1))
    for frame in (as_text, as_dates, as_timestamps):
        assert _kinds(decide_reminders(frame, AS_OF, RULES)) == sorted(expected)

    unreadable = _frame({"last_contact_date": "yesterday"}, {"assigned_on": "not a date"})
    from_assignment = [("a-0", kind, step) for _, kind, step in expected[2:]]
    assert _kinds(decide_reminders(unreadable, AS_OF, RULES)) == sorted(from_assignment)
