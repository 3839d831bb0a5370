"""Pings to an external dead-man's switch: the one alarm that still works when every process of ours
(the daemon included) is dead, because it fires when the expected ping does *not* arrive.

The shape is the one Healthchecks.io, Cronitor and Sentry Crons' HTTP check-ins all accept:
`<url>/start` when a run starts its work, `<url>` when it succeeded, `<url>/fail` (with a short,
sanitised reason as the body) when it failed. One URL per job, `HEARTBEAT_URL_<JOB>`, and one for the
daemon, `HEARTBEAT_URL_DAGSTER_DAEMON`, pinged by `reminder-pipeline watchdog`.

A ping never raises and never takes longer than `HEARTBEAT_TIMEOUT_SECONDS`: a monitor that is down
must not fail the run it watches (it alarms by itself when the pings stop reaching it). The URL is
never printed (it is a secret: anyone holding it can ping).
"""

from __future__ import annotations

from typing import Literal

from reminder_pipeline.core import settings
from reminder_pipeline.core.errors import ConfigurationError

Event = Literal["start", "success", "fail"]

NOT_CONFIGURED = "not configured"
SENT = "sent"
MAX_REASON_CHARS = 200


def ping(name: str, event: Event, reason: str | None = None) -> str:
    """Ping the monitor of `name` (a job, or `dagster_daemon`); returns what happened, in words safe
    to show: `sent`, `not configured`, or `failed: <why>`."""
    try:
        url = settings.heartbeat_url(name)
    except ConfigurationError as error:
        return f"failed: {error}"
    if url is None:
        return NOT_CONFIGURED
    import httpx

    target = url if event == "success" else f"{url}/{event}"
    body = (reason or "")[:MAX_REASON_CHARS].encode("utf-8", "replace")
    try:
        response = httpx.post(
            target,
            content=body,
            headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "reminder-pipeline"},
            timeout=settings.load().heartbeat_timeout_seconds,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        return "failed: the monitor did not answer in time"
    except httpx.HTTPError as error:
        return f"failed: could not reach the monitor ({type(error).__name__})"
    if response.status_code >= 300:
        return f"failed: the monitor answered HTTP {response.status_code}"
    return SENT
