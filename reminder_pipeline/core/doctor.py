"""`reminder-pipeline doctor`: what this process's settings are made of, by name and source (never a
value), which role reads each, and what a job lacks to do its work.

Every role (code server, webserver, daemon, and each run the daemon launches) reads the same
environment and the same env file (`REMINDER_PIPELINE_ENV_FILE`) at run time, so what doctor sees
with that file is what they see; compose and the systemd units reference one file for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reminder_pipeline.core import settings
from reminder_pipeline.core.jobs import JobSpec

ALL = "every role"
RUNS = "runs"

#: Which role reads a setting (the rest are read by runs, where the jobs' work happens).
_READ_BY = {
    "DATABASE_URL": ALL,
    "DAGSTER_PG_URL": ALL,
    "DAGSTER_HOME": ALL,
    "REMINDER_PIPELINE_HOME": ALL,
    "CODE_SERVER_HOST": "webserver, daemon, CLI",
    "CODE_SERVER_PORT": "code-server, webserver, daemon, CLI",
    "DAEMON_STALE_SECONDS": "watchdog",
    "DEAD_RUN_GRACE_SECONDS": "daemon (sensors)",
    "NOTIFICATION_PENDING_HOURS": "runs, daemon (sensors)",
}


@dataclass
class Diagnosis:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _source(variable: str) -> str:
    return settings.setting_source(variable) or "default"


def _any(*variables: str) -> bool:
    return any(settings.setting_source(variable) for variable in variables)


def alert_channel_warning() -> str | None:
    """The line to say once (at start-up, in `doctor`) when no alert channel is in the environment;
    alerts then wait in `ops_alerts` unsent instead of failing attempt after attempt."""
    if (
        _any("SLACK_WEBHOOK_URL")
        or (_any("ALERT_SMTP_HOST") and _any("ALERT_EMAIL_TO"))
        or (_any("SLACK_BOT_TOKEN") and _any("SLACK_ALERT_CHANNEL"))
    ):
        return None
    # Vault may still hold the webhook (Supabase); only the database can tell, at run time.
    return (
        "alerts: no alert channel in the environment (SLACK_WEBHOOK_URL, SLACK_BOT_TOKEN + SLACK_ALERT_CHANNEL,"
        " ALERT_SMTP_HOST + ALERT_EMAIL_TO); only a webhook in Supabase Vault (slack_alert_webhook_url) would"
        " remain. Alerts are recorded and wait unsent (`reminder-pipeline logs` lists them)"
    )


def diagnose(specs: Sequence[JobSpec]) -> Diagnosis:
    report = Diagnosis()
    env_file = settings.env_file()
    report.lines.append(f"env file: {env_file if env_file else 'none (REMINDER_PIPELINE_ENV_FILE unset)'}")
    current = settings.load()  # refuses a malformed value by name before anything else

    names = sorted(name.upper() for name in type(current).model_fields)
    heartbeats = [settings.HEARTBEAT_PREFIX + spec.name.upper() for spec in specs]
    heartbeats.append(settings.HEARTBEAT_PREFIX + settings.DAEMON_HEARTBEAT.upper())
    width = max(len(name) for name in [*names, *heartbeats])
    report.lines.append(f"{'setting'.ljust(width)}  {'source':<11}  read by")
    for name in [*names, *heartbeats]:
        read_by = _READ_BY.get(name, "watchdog" if name.endswith("DAGSTER_DAEMON") else RUNS)
        report.lines.append(f"{name.ljust(width)}  {_source(name):<11}  {read_by}")

    if not _any("DATABASE_URL"):
        report.lines.append("database: embedded server (DATABASE_URL unset): fine on a laptop, never in production")
    missing_alert_channel = alert_channel_warning()
    if missing_alert_channel:
        report.lines.append(missing_alert_channel)
    needs = {
        "notification_delivery": (
            _any("PUSH_WEBHOOK_URL") or (_any("NOTIFY_SMTP_HOST") and _any("NOTIFY_EMAIL_FROM")),
            "no delivery channel: set PUSH_WEBHOOK_URL, or NOTIFY_SMTP_HOST with NOTIFY_EMAIL_FROM",
        ),
        "dynamics_sync": (_any("DYNAMICS_WEBHOOK_URL"), "no portal: set DYNAMICS_WEBHOOK_URL"),
    }
    for spec in specs:
        ok, missing = needs.get(spec.name, (True, ""))
        heartbeat = "heartbeat pinged" if settings.heartbeat_url(spec.name) else "no heartbeat URL"
        if ok:
            report.lines.append(f"job {spec.name}: ready ({heartbeat})")
        else:
            report.lines.append(f"job {spec.name}: MISSING {missing} ({heartbeat})")
            report.problems.append(spec.name)
    return report
