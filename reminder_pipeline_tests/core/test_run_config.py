"""The one check of a run's date and the one builder of a dated run's config."""

import datetime as dt

import pytest

from reminder_pipeline.core.errors import InputRejected
from reminder_pipeline.core.run_config import (
    AsOfConfig,
    as_of_problem,
    dated_run_config,
    dated_run_request,
    launch_problem,
    today_local,
)
from reminder_pipeline.core.settings import MAX_DAYS_AHEAD, MAX_DAYS_BACK


def _days_from_today(days: int) -> str:
    return (today_local() + dt.timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("as_of", "allow", "expected"),
    [
        (None, False, None),
        ("2026-02-30", False, "as_of must be a date as YYYY-MM-DD"),
        ("'; DROP TABLE x", True, "as_of must be a date as YYYY-MM-DD"),
        (_days_from_today(MAX_DAYS_AHEAD), False, None),
        (_days_from_today(MAX_DAYS_AHEAD + 1), False, "day after today"),
        (_days_from_today(-MAX_DAYS_BACK), False, None),
        (_days_from_today(-MAX_DAYS_BACK - 1), False, "days before today"),
        (_days_from_today(-MAX_DAYS_BACK - 1), True, None),
    ],
)
def test_the_date_rule_names_the_rule_never_the_value(as_of: str | None, allow: bool, expected: str | None) -> None:
    problem = as_of_problem(as_of, allow)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem and (as_of is None or as_of not in problem)


def test_every_gate_applies_the_same_rule() -> None:
    """The launch check, the queue's check and the op's own config refuse the same dates alike."""
    far = dt.date.fromisoformat(_days_from_today(-MAX_DAYS_BACK - 5))
    config = dated_run_config("decide", far)
    problem = launch_problem(config)
    assert problem == as_of_problem(far.isoformat())
    with pytest.raises(InputRejected, match="days before today"):
        AsOfConfig(**config["ops"]["decide"]["config"]).as_of_date()
    allowed = dated_run_config("decide", far, allow_any_date=True)
    assert launch_problem(allowed) is None
    assert AsOfConfig(**allowed["ops"]["decide"]["config"]).as_of_date() == far


def test_a_schedule_tick_and_a_manual_launch_build_the_same_config() -> None:
    tick = dt.datetime(2026, 12, 1, 23, 30, tzinfo=dt.UTC)  # already 2 December in Oslo
    request = dated_run_request("assignment_reminders", "decide", tick)
    assert request.run_config == dated_run_config("decide", dt.date(2026, 12, 2))
    assert request.run_key == "assignment_reminders:2026-12-02"
    assert dated_run_config("decide", None, dry_run=True, mentor_reminder_days=5) == {
        "ops": {"decide": {"config": {"mentor_reminder_days": 5, "dry_run": True}}}
    }
