"""When to alert and what an alert says: plain functions, no I/O, no Dagster.

An alert carries reference ids and the sanitised error message only, never personal data and never
a secret (the webhook URL stays with the channel).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from reminder_pipeline.core.alerts import (
    CONSECUTIVE_FAILURES,
    DYNAMICS_SYNC_DEAD,
    LONG_RUNNING,
    MISSED_RUN,
    MISSED_RUN_RECOVERED,
    RECOVERED,
    Alert,
)
from reminder_pipeline.core.execution_log import FinishedRun


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_url(webserver_base_url: str | None, dagster_run_id: str | None) -> str | None:
    if not webserver_base_url or not dagster_run_id:
        return None
    return f"{webserver_base_url.rstrip('/')}/runs/{dagster_run_id}"


def alert_kind(finished: FinishedRun, threshold: int) -> str | None:
    """Exactly at the threshold: a failure alert (not before, not again after). The first success
    after a chain that reached the threshold: a recovery message. Otherwise nothing."""
    if finished.status == "failed" and finished.consecutive_failure_count == threshold:
        return CONSECUTIVE_FAILURES
    if finished.status == "success" and finished.previous_failure_count >= threshold:
        return RECOVERED
    return None


def alert_for_finished_run(
    finished: FinishedRun,
    *,
    threshold: int,
    last_success_at: dt.datetime | None,
    webserver_base_url: str | None = None,
) -> Alert | None:
    """The alert :func:`alert_kind` calls for, with its payload."""
    kind = alert_kind(finished, threshold)
    base = {
        "job_name": finished.job_name,
        "execution_log_id": str(finished.row_id),
        "dagster_run_id": finished.dagster_run_id,
        "run_url": run_url(webserver_base_url, finished.dagster_run_id),
        "last_success_at": _iso(last_success_at),
    }
    if kind == CONSECUTIVE_FAILURES:
        return Alert(
            CONSECUTIVE_FAILURES,
            finished.job_name,
            finished.row_id,
            finished.dagster_run_id,
            {
                **base,
                "error_message": finished.error_message,
                "consecutive_failure_count": finished.consecutive_failure_count,
            },
        )
    if kind == RECOVERED:
        return Alert(
            RECOVERED,
            finished.job_name,
            finished.row_id,
            finished.dagster_run_id,
            {
                **base,
                "last_success_at": _iso(finished.completed_at),
                "consecutive_failure_count": 0,
                "recovered_after_failures": finished.previous_failure_count,
            },
        )
    return None


_HEADERS = {
    CONSECUTIVE_FAILURES: ":rotating_light: {job} failed {count} times in a row",
    RECOVERED: ":white_check_mark: {job} recovered after {recovered} consecutive failures",
    LONG_RUNNING: ":hourglass: {job} has been running for {minutes} minutes",
    MISSED_RUN: ":warning: {job} has not succeeded for {hours} hours",
    MISSED_RUN_RECOVERED: ":white_check_mark: {job} is succeeding again after a missed run",
    DYNAMICS_SYNC_DEAD: ":x: Dynamics sync gave up after {attempts} attempts: mentor may still be visible on portal",
}


def headline(alert: Alert) -> str:
    payload = alert.payload
    return _HEADERS[alert.kind].format(
        job=alert.job_name,
        count=payload.get("consecutive_failure_count"),
        recovered=payload.get("recovered_after_failures"),
        minutes=payload.get("running_minutes"),
        hours=payload.get("hours_since_success"),
        attempts=payload.get("attempts"),
    )


def _details(alert: Alert) -> list[str]:
    payload = alert.payload
    lines = []
    if payload.get("error_message"):
        lines.append(f"*Error:* {payload['error_message']}")
    if "consecutive_failure_count" in payload:
        lines.append(f"*Consecutive failures:* {payload['consecutive_failure_count']}")
    if payload.get("sync_event_id"):
        lines.append(f"*Sync event:* `{payload['sync_event_id']}` (mentor `{payload.get('mentor_id')}`)")
    if payload.get("last_error"):
        lines.append(f"*Last error:* {payload['last_error']}")
    if payload.get("execution_log_id"):
        lines.append(f"*Execution log row:* `{payload['execution_log_id']}`")
    if payload.get("dagster_run_id"):
        run = payload["dagster_run_id"]
        lines.append(
            f"*Dagster run:* <{payload['run_url']}|{run}>" if payload.get("run_url") else f"*Dagster run:* `{run}`"
        )
    return lines or ["No further details."]


def slack_message(alert: Alert) -> dict[str, Any]:
    """Block Kit: a header, a section with the details, a context block with the last success."""
    title = headline(alert)
    last_success = alert.payload.get("last_success_at") or "never"
    return {
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(_details(alert))}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Last successful run: {last_success}"}]},
        ],
    }


def email_message(alert: Alert) -> tuple[str, str]:
    """Subject and plain-text body."""
    body = [line.replace("*", "").replace("`", "") for line in _details(alert)]
    body.append(f"Last successful run: {alert.payload.get('last_success_at') or 'never'}")
    return headline(alert).split(" ", 1)[1], "\n".join(body) + "\n"
