"""`reminder-pipeline doctor`: what this process's settings are made of, by name and source (never a
value), which role reads each, and what a job lacks to do its work.

Every role (code server, webserver, daemon, and each run the daemon launches) reads the same
environment and the same env file (`REMINDER_PIPELINE_ENV_FILE`) at run time, so what doctor sees
with that file is what they see; compose and the systemd units reference one file for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reminder_pipeline.core import settings
from reminder_pipeline.core.jobs import JobSpec

ALL = "every role"
RUNS = settings.RUNS

#: Which role reads a core setting (the rest are read by runs, where the jobs' work happens).
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

#: Per job, what tells whether it can do its work as configured: None, or what is missing. Declared
#: by the domain that owns the job's settings (its `settings.py`).
_READINESS: dict[str, Callable[[], str | None]] = {}
#: Said once where a role starts (and by doctor): a problem worth a line, not a retrying alert.
_STARTUP_WARNINGS: list[Callable[[], str | None]] = []


def register_readiness(job_name: str, missing: Callable[[], str | None]) -> None:
    _READINESS[job_name] = missing


def register_startup_warning(warning: Callable[[], str | None]) -> None:
    if warning not in _STARTUP_WARNINGS:
        _STARTUP_WARNINGS.append(warning)


def startup_warnings() -> list[str]:
    return [text for warning in _STARTUP_WARNINGS if (text := warning())]


@dataclass
class Diagnosis:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _source(variable: str) -> str:
    return settings.setting_source(variable) or "default"


def diagnose(specs: Sequence[JobSpec]) -> Diagnosis:
    report = Diagnosis()
    env_file = settings.env_file()
    report.lines.append(f"env file: {env_file if env_file else 'none (REMINDER_PIPELINE_ENV_FILE unset)'}")
    read_by = {name.upper(): _READ_BY.get(name.upper(), RUNS) for name in settings.Settings.model_fields}
    settings.load()  # refuses a malformed value by name before anything else
    for group, role in settings.registered_groups().items():
        settings.load_group(group)
        read_by |= {name.upper(): role for name in group.model_fields}
    for spec in specs:
        read_by[settings.HEARTBEAT_PREFIX + spec.name.upper()] = RUNS
    read_by[settings.HEARTBEAT_PREFIX + settings.DAEMON_HEARTBEAT.upper()] = "watchdog"
    width = max(len(name) for name in read_by)
    report.lines.append(f"{'setting'.ljust(width)}  {'source':<11}  read by")
    for name in sorted(read_by, key=lambda name: (name.startswith(settings.HEARTBEAT_PREFIX), name)):
        report.lines.append(f"{name.ljust(width)}  {_source(name):<11}  {read_by[name]}")

    if not settings.is_set("DATABASE_URL"):
        report.lines.append("database: embedded server (DATABASE_URL unset): fine on a laptop, never in production")
    report.lines.extend(startup_warnings())
    for spec in specs:
        missing = _READINESS.get(spec.name, lambda: None)()
        heartbeat = "heartbeat pinged" if settings.heartbeat_url(spec.name) else "no heartbeat URL"
        if missing is None:
            report.lines.append(f"job {spec.name}: ready ({heartbeat})")
        else:
            report.lines.append(f"job {spec.name}: MISSING {missing} ({heartbeat})")
            report.problems.append(spec.name)
    return report
