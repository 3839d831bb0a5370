"""The alert policy as plain functions: a job's finished runs (newest first) in, alerts out."""

import dataclasses
import datetime as dt

import pytest

from reminder_pipeline.alerting.policy import (
    CONSECUTIVE_FAILURES,
    RECOVERED,
    RunSummary,
    email_message,
    run_failure_alerts,
    slack_message,
)

LAST_SUCCESS = dt.datetime(2026, 11, 20, 6, 0, 3, tzinfo=dt.UTC)
ERROR = 'UndefinedTable: relation "public.notifications" does not exist'


def _history(*outcomes: str) -> list[RunSummary]:
    """Runs newest first: 'F' failed, 'S' succeeded; run ids count up from the oldest."""
    total = len(outcomes)
    return [
        RunSummary(f"run-{total - index}", outcome == "S", LAST_SUCCESS if outcome == "S" else None)
        for index, outcome in enumerate(outcomes)
    ]


def _alerts(*outcomes: str, announced: bool = True, base_url: str | None = None) -> list:
    return run_failure_alerts(
        "assignment_reminders",
        _history(*outcomes),
        threshold=2,
        announced=lambda key: announced,
        webserver_base_url=base_url,
    )


@pytest.mark.parametrize(
    ("history", "kinds"),
    [
        ("F", []),
        ("FF", [CONSECUTIVE_FAILURES]),
        ("FFF", [CONSECUTIVE_FAILURES]),
        ("FFS", [CONSECUTIVE_FAILURES]),
        ("SFF", [RECOVERED]),
        ("SF", []),
        ("SFFF", [RECOVERED]),
        ("SS", []),
        ("", []),
    ],
)
def test_alerts_from_a_run_history(history: str, kinds: list[str]) -> None:
    assert [alert.kind for alert in _alerts(*history)] == kinds


def test_one_incident_keeps_its_name_however_long_the_streak_grows() -> None:
    (at_two,) = _alerts("F", "F", "S")
    (at_five,) = _alerts("F", "F", "F", "F", "F", "S")
    assert at_two.incident_key == "run:run-2"  # the first failed run of the streak
    assert at_five.incident_key == "run:run-2"
    assert at_five.dagster_run_id == "run-3"  # the run at which the streak reached the threshold


def test_the_failure_payload_has_what_on_call_needs() -> None:
    (alert,) = _alerts("F", "F", "S", base_url="http://127.0.0.1:3000/")
    assert alert.payload == {
        "job_name": "assignment_reminders",
        "dagster_run_id": "run-3",
        "run_url": "http://127.0.0.1:3000/runs/run-3",
        "consecutive_failure_count": 2,
        "last_success_at": "2026-11-20T06:00:03+00:00",
    }


def test_last_success_is_null_when_the_job_never_succeeded() -> None:
    (alert,) = _alerts("F", "F")
    assert alert.payload["last_success_at"] is None and alert.payload["run_url"] is None
    assert slack_message(alert)["blocks"][2]["elements"][0]["text"] == "Last successful run: never"


def test_a_recovery_names_the_same_incident_and_only_when_it_was_announced() -> None:
    (recovered,) = _alerts("S", "F", "F", "F", "S")
    assert recovered.kind == RECOVERED and recovered.incident_key == "run:run-2"
    assert recovered.payload["recovered_after_failures"] == 3
    assert "recovered after 3 consecutive failures" in slack_message(recovered)["text"]
    assert _alerts("S", "F", "F", announced=False) == []


def _with_error(alert):  # what the delivery job adds from the execution log
    return dataclasses.replace(alert, payload={**alert.payload, "error_message": ERROR, "execution_log_id": "row-1"})


def test_the_slack_message_is_block_kit_header_section_context() -> None:
    (alert,) = _alerts("F", "F", "S", base_url="http://ui")
    message = slack_message(_with_error(alert))
    header, section, context = message["blocks"]
    assert header == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "emoji": True,
            "text": ":rotating_light: assignment_reminders failed 2 times in a row",
        },
    }
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert "*Error:* UndefinedTable" in section["text"]["text"]
    assert "*Consecutive failures:* 2" in section["text"]["text"]
    assert "`row-1`" in section["text"]["text"]
    assert "<http://ui/runs/run-3|run-3>" in section["text"]["text"]
    assert context == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "Last successful run: 2026-11-20T06:00:03+00:00"}],
    }
    assert message["text"] == header["text"]["text"]


def test_the_email_says_the_same_in_plain_text() -> None:
    (alert,) = _alerts("F", "F")
    subject, body = email_message(_with_error(alert))
    assert subject == "assignment_reminders failed 2 times in a row"
    assert "Error: UndefinedTable" in body and "Last successful run: never" in body and "*" not in body
