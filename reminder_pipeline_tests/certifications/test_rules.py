import datetime as dt

import pandas as pd
import pytest

from reminder_pipeline.certifications.rules import decide_auto_pauses, decide_expiry_reminders, decide_reactivations

AS_OF = dt.date(2026, 11, 22)


def _certs(*rows: dict) -> pd.DataFrame:
    defaults = {"mentor_id": "m-1", "coordinator_id": "c-1", "mentor_status": "active", "certification_type": "basic"}
    return pd.DataFrame([{**defaults, "cert_id": f"cert-{i}", **row} for i, row in enumerate(rows)])


def _in(days: int) -> str:
    return (AS_OF + dt.timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("days_left", "threshold"),
    [(31, None), (30, 30), (29, 30), (15, 30), (14, 14), (8, 14), (7, 7), (2, 7), (1, 1), (0, None), (-3, None)],
)
def test_each_certification_is_in_the_bracket_of_the_nearest_threshold(days_left: int, threshold: int | None) -> None:
    reminders = decide_expiry_reminders(_certs({"expires_on": _in(days_left)}), AS_OF)
    assert reminders["threshold_days"].tolist() == ([] if threshold is None else [threshold])
    if threshold is not None:
        assert reminders.loc[0, "days_left"] == days_left


def test_after_downtime_that_skipped_thresholds_only_the_nearest_is_due() -> None:
    reminders = decide_expiry_reminders(_certs({"expires_on": _in(5)}), AS_OF)
    assert reminders["threshold_days"].tolist() == [7]


def test_a_certification_renewed_before_expiry_gets_no_more_reminders_and_no_pause() -> None:
    certs = _certs({"expires_on": _in(6)}, {"expires_on": _in(365)})
    assert decide_expiry_reminders(certs, AS_OF).empty
    certs = _certs({"expires_on": _in(-2)}, {"expires_on": _in(365)})
    assert decide_auto_pauses(certs, AS_OF).empty


def test_each_type_is_reminded_on_its_own() -> None:
    certs = _certs({"expires_on": _in(7)}, {"expires_on": _in(14), "certification_type": "advanced"})
    assert sorted(decide_expiry_reminders(certs, AS_OF)["threshold_days"]) == [7, 14]


def test_paused_mentors_are_neither_reminded_nor_paused_again() -> None:
    certs = _certs(
        {"expires_on": _in(7), "mentor_status": "paused"},
        {"expires_on": _in(-1), "mentor_id": "m-2", "mentor_status": "paused"},
    )
    assert decide_expiry_reminders(certs, AS_OF).empty
    assert decide_auto_pauses(certs, AS_OF).empty


@pytest.mark.parametrize("expired_days_ago", [0, 1, 40])
def test_a_mentor_whose_every_certification_expired_is_paused(expired_days_ago: int) -> None:
    certs = _certs({"expires_on": _in(-400)}, {"expires_on": _in(-expired_days_ago), "certification_type": "advanced"})
    (pause,) = decide_auto_pauses(certs, AS_OF).to_dict("records")
    assert pause == {
        "mentor_id": "m-1",
        "coordinator_id": "c-1",
        "cert_id": "cert-1",
        "expired_on": _in(-expired_days_ago),
    }


def test_one_valid_certification_of_any_type_keeps_a_mentor_active() -> None:
    certs = _certs({"expires_on": _in(-1)}, {"expires_on": _in(1), "certification_type": "advanced"})
    assert decide_auto_pauses(certs, AS_OF).empty


def test_custom_thresholds_and_bad_ones() -> None:
    assert decide_expiry_reminders(_certs({"expires_on": _in(50)}), AS_OF, (60, 3))["threshold_days"].tolist() == [60]
    with pytest.raises(ValueError, match="positive"):
        decide_expiry_reminders(_certs({"expires_on": _in(5)}), AS_OF, (0, 7))


def test_the_nightly_schedule_acts_for_its_own_oslo_date() -> None:
    from zoneinfo import ZoneInfo

    from dagster import build_schedule_context

    from reminder_pipeline.definitions import defs

    certification_reminders_nightly = defs.resolve_schedule_def("certification_reminders_nightly")

    tick = dt.datetime(2026, 3, 29, 2, 0, tzinfo=ZoneInfo("Europe/Oslo"))  # the night clocks go forward
    request = certification_reminders_nightly(build_schedule_context(scheduled_execution_time=tick))
    assert request.run_config == {"ops": {"decide_certification_actions": {"config": {"as_of": "2026-03-29"}}}}
    assert request.run_key == "certification_reminders:2026-03-29"


def _open_pauses(*rows: dict) -> pd.DataFrame:
    defaults = {
        "pause_id": "p-1",
        "mentor_id": "m-1",
        "coordinator_id": "c-1",
        "reason": "certification_expired",
        "cert_id": None,
        "issued_on": None,
        "expires_on": None,
    }
    return pd.DataFrame([{**defaults, **row} for row in rows], columns=list(defaults))


def test_a_paused_mentor_with_a_valid_renewal_is_reactivated_with_the_longest_valid_one() -> None:
    pauses = _open_pauses(
        {"cert_id": "short", "issued_on": _in(-10), "expires_on": _in(30)},
        {"cert_id": "long", "issued_on": _in(-1), "expires_on": _in(700)},
        {"cert_id": "expired-too", "issued_on": _in(-400), "expires_on": _in(-1)},
    )
    decided = decide_reactivations(pauses, AS_OF)
    assert decided.to_dict("records") == [
        {"pause_id": "p-1", "mentor_id": "m-1", "coordinator_id": "c-1", "cert_id": "long", "expires_on": _in(700)}
    ]


@pytest.mark.parametrize(
    ("issued", "expires"),
    [(1, 700), (-700, 0), (-700, -1)],  # issued tomorrow; expires today; expired yesterday
)
def test_a_renewal_not_valid_today_reactivates_no_one(issued: int, expires: int) -> None:
    pauses = _open_pauses({"cert_id": "renewal", "issued_on": _in(issued), "expires_on": _in(expires)})
    assert decide_reactivations(pauses, AS_OF).empty


def test_without_a_renewal_no_one_is_reactivated() -> None:
    assert decide_reactivations(_open_pauses({}), AS_OF).empty
    assert decide_reactivations(_open_pauses(), AS_OF).empty


def test_a_mentor_with_another_open_pause_is_never_reactivated_by_a_renewal() -> None:
    pauses = _open_pauses(
        {"cert_id": "renewal", "issued_on": _in(-1), "expires_on": _in(700)},
        {"pause_id": "p-2", "reason": "coordinator: conduct"},
        {"pause_id": "p-3", "mentor_id": "m-2", "cert_id": "other", "issued_on": _in(-1), "expires_on": _in(700)},
    )
    assert decide_reactivations(pauses, AS_OF)["mentor_id"].tolist() == ["m-2"]
