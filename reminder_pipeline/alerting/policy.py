"""When to alert and what an alert says: plain functions, no I/O, no Dagster.

An alert carries reference ids and the sanitised error message only, never personal data and never
a secret (the webhook URL stays with the channel).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from reminder_pipeline.core.alerts import (
    CONSECUTIVE_FAILURES,
    DAEMON_DOWN,
    DYNAMICS_SYNC_DEAD,
    LONG_RUNNING,
    MISSED_RUN,
    MISSED_RUN_RECOVERED,
    NOTIFICATION_DELIVERY_GAVE_UP,
    NOTIFICATION_DELIVERY_RECOVERED,
    RECOVERED,
    SCHEDULE_OVERDUE,
    Alert,
)
from reminder_pipeline.core.run_history import RunSummary, leading_failures


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_url(webserver_base_url: str | None, dagster_run_id: str | None) -> str | None:
    if not webserver_base_url or not dagster_run_id:
        return None
    return f"{webserver_base_url.rstrip('/')}/runs/{dagster_run_id}"


def run_incident_key(first_failed_run_id: str) -> str:
    """An incident of consecutive failures is named by the first failed run of its streak: the name
    stays the same however long the streak grows, and whoever sees it first."""
    return f"run:{first_failed_run_id}"


def run_failure_alerts(
    job_name: str,
    runs: Sequence[RunSummary],
    *,
    threshold: int,
    announced: Callable[[str], bool],
    webserver_base_url: str | None = None,
) -> list[Alert]:
    """From a job's finished runs, newest first: a `consecutive_failures` alert when the newest
    `threshold` or more runs failed (whatever the cause: a failed step, a run reported dead, a run
    that failed before it could write a log row), and a `recovered` alert when the newest run
    succeeded right after such a streak, only if that incident was announced (`announced(key)`)."""
    last_success = next((run for run in runs if run.succeeded), None)
    streak = leading_failures(runs)
    if len(streak) >= threshold:
        at_threshold = streak[len(streak) - threshold]
        return [
            Alert(
                CONSECUTIVE_FAILURES,
                job_name,
                None,
                at_threshold.run_id,
                {
                    "job_name": job_name,
                    "dagster_run_id": at_threshold.run_id,
                    "run_url": run_url(webserver_base_url, at_threshold.run_id),
                    "consecutive_failure_count": threshold,
                    "last_success_at": _iso(last_success.ended_at) if last_success else None,
                },
                incident=run_incident_key(streak[-1].run_id),
            )
        ]
    if not runs or not runs[0].succeeded:
        return []
    previous = leading_failures(runs[1:])
    if len(previous) < threshold or not announced(run_incident_key(previous[-1].run_id)):
        return []
    recovered = runs[0]
    return [
        Alert(
            RECOVERED,
            job_name,
            None,
            recovered.run_id,
            {
                "job_name": job_name,
                "dagster_run_id": recovered.run_id,
                "run_url": run_url(webserver_base_url, recovered.run_id),
                "last_success_at": _iso(recovered.ended_at),
                "consecutive_failure_count": 0,
                "recovered_after_failures": len(previous),
            },
            incident=run_incident_key(previous[-1].run_id),
        )
    ]


_HEADERS = {
    CONSECUTIVE_FAILURES: ":rotating_light: {job} failed {count} times in a row",
    RECOVERED: ":white_check_mark: {job} recovered after {recovered} consecutive failures",
    LONG_RUNNING: ":hourglass: {job} has been running for {minutes} minutes",
    MISSED_RUN: ":warning: {job} has not succeeded for {hours} hours",
    MISSED_RUN_RECOVERED: ":white_check_mark: {job} is succeeding again after a missed run",
    DYNAMICS_SYNC_DEAD: ":x: Dynamics sync gave up after {attempts} attempts: the portal may show an old status",
    NOTIFICATION_DELIVERY_GAVE_UP: ":no_bell: {job}: {lost} notification(s) will not reach people (gave up or expired)",
    NOTIFICATION_DELIVERY_RECOVERED: ":bell: {job} is delivering notifications again",
    DAEMON_DOWN: ":skull: dagster-daemon has not reported {silence}: no schedule, sensor or alert runs",
    SCHEDULE_OVERDUE: ":alarm_clock: {job} was expected at {expected} and has not succeeded since",
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
        lost=payload.get("lost"),
        expected=payload.get("expected_at"),
        silence=payload.get("silence"),
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
    if "gave_up" in payload:
        lines.append(
            f"*This run:* {payload.get('delivered', 0)} delivered, {payload['gave_up']} gave up,"
            f" {payload.get('expired', 0)} expired, {payload.get('retrying', 0)} to retry"
        )
    if payload.get("silent_daemons"):
        lines.append(f"*Silent daemons:* {payload['silent_daemons']}")
    if payload.get("errors"):
        lines.append(f"*Errors:* {payload['errors']}")
    if payload.get("sample_notification_ids"):
        lines.append(f"*Notifications (sample):* `{payload['sample_notification_ids']}`")
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
