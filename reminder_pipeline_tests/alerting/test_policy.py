import datetime as dt
import uuid

import pytest

from reminder_pipeline.alerting.policy import (
    CONSECUTIVE_FAILURES,
    RECOVERED,
    alert_for_finished_run,
    email_message,
    slack_message,
)
from reminder_pipeline.core.execution_log import FinishedRun

ROW = uuid.uuid4()
LAST_SUCCESS = dt.datetime(2026, 11, 20, 6, 0, 3, tzinfo=dt.UTC)


def _finished(status: str, count: int, previous: int) -> FinishedRun:
    return FinishedRun(
        row_id=ROW,
        job_name="assignment_reminders",
        status=status,
        consecutive_failure_count=count,
        error_message='UndefinedTable: relation "public.notifications" does not exist' if status == "failed" else None,
        dagster_run_id="run-123",
        completed_at=dt.datetime(2026, 11, 22, 6, 0, 5, tzinfo=dt.UTC),
        previous_failure_count=previous,
    )


@pytest.mark.parametrize(("count", "alerts"), [(1, False), (2, True), (3, False), (4, False), (10, False)])
def test_a_failure_alert_exactly_when_the_count_reaches_the_threshold(count: int, alerts: bool) -> None:
    alert = alert_for_finished_run(_finished("failed", count, count - 1), threshold=2, last_success_at=LAST_SUCCESS)
    assert (alert is not None) is alerts


def test_the_failure_payload_has_what_on_call_needs() -> None:
    alert = alert_for_finished_run(
        _finished("failed", 2, 1),
        threshold=2,
        last_success_at=LAST_SUCCESS,
        webserver_base_url="http://127.0.0.1:3000/",
    )
    assert alert is not None and alert.kind == CONSECUTIVE_FAILURES
    assert alert.payload == {
        "job_name": "assignment_reminders",
        "execution_log_id": str(ROW),
        "dagster_run_id": "run-123",
        "run_url": "http://127.0.0.1:3000/runs/run-123",
        "last_success_at": "2026-11-20T06:00:03+00:00",
        "error_message": 'UndefinedTable: relation "public.notifications" does not exist',
        "consecutive_failure_count": 2,
    }


def test_last_success_is_null_when_the_job_never_succeeded() -> None:
    alert = alert_for_finished_run(_finished("failed", 2, 1), threshold=2, last_success_at=None)
    assert alert is not None and alert.payload["last_success_at"] is None
    assert alert.payload["run_url"] is None
    assert slack_message(alert)["blocks"][2]["elements"][0]["text"] == "Last successful run: never"


@pytest.mark.parametrize(("previous", "recovers"), [(0, False), (1, False), (2, True), (7, True)])
def test_a_recovery_message_only_after_an_alerted_incident(previous: int, recovers: bool) -> None:
    alert = alert_for_finished_run(_finished("success", 0, previous), threshold=2, last_success_at=LAST_SUCCESS)
    assert (alert is not None) is recovers
    if alert is not None:
        assert alert.kind == RECOVERED
        assert alert.payload["recovered_after_failures"] == previous
        assert alert.payload["consecutive_failure_count"] == 0
        assert f"recovered after {previous} consecutive failures" in slack_message(alert)["text"]


def test_the_slack_message_is_block_kit_header_section_context() -> None:
    alert = alert_for_finished_run(
        _finished("failed", 2, 1), threshold=2, last_success_at=LAST_SUCCESS, webserver_base_url="http://ui"
    )
    assert alert is not None
    message = slack_message(alert)
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
    assert f"`{ROW}`" in section["text"]["text"]
    assert "<http://ui/runs/run-123|run-123>" in section["text"]["text"]
    assert context == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "Last successful run: 2026-11-20T06:00:03+00:00"}],
    }
    assert message["text"] == header["text"]["text"]


def test_the_email_says_the_same_in_plain_text() -> None:
    alert = alert_for_finished_run(_finished("failed", 2, 1), threshold=2, last_success_at=None)
    assert alert is not None
    subject, body = email_message(alert)
    assert subject == "assignment_reminders failed 2 times in a row"
    assert "Error: UndefinedTable" in body and "Last successful run: never" in body and "*" not in body
