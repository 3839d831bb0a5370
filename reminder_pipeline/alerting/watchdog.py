"""`reminder-pipeline watchdog`: the second opinion that needs no Dagster process.

Run from cron or a systemd timer every few minutes, it
- reads the daemon's own heartbeats from Dagster's storage (the daemon writes one per daemon type
  every 30 s): silent longer than `DAEMON_STALE_SECONDS` is down;
- asks the database which scheduled runs are overdue (`record_overdue_jobs`, the same rule pg_cron
  runs where it exists);
- pings the external monitor's daemon URL (`HEARTBEAT_URL_DAGSTER_DAEMON`): success when the daemon
  is alive, `/fail` when not. If the watchdog itself stops, the pings stop and the monitor alarms;
- alerts operations directly (Slack / e-mail, once per incident): the daemon that normally launches
  the alert-delivery run may be the thing that is dead; while it is, the watchdog also retries the
  undelivered alerts that are due, in place of the daemon's redelivery sensor.

Evaluating nothing in Dagster, it is safe to run as often as wanted: a repeat of an incident is a
no-op by the `ops_alerts` unique key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from reminder_pipeline.alerting import schedule_watch
from reminder_pipeline.alerting.service import AlertOutcome, AlertService, AlertSettings
from reminder_pipeline.core import heartbeat, settings
from reminder_pipeline.core.alerts import DAEMON_DOWN, SCHEDULE_OVERDUE, Alert
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.jobs import JobSpec

#: The daemons whose silence stops the pipeline: schedules, sensors (alerts, delivery) and the queue.
REQUIRED_DAEMONS = ("SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR")


@dataclass(frozen=True)
class DaemonHealth:
    #: Seconds since each required daemon's newest heartbeat (None: never seen).
    ages: dict[str, float | None]
    stale_after_seconds: float
    #: The newest heartbeat of all, as an ISO timestamp: names the incident when it goes silent.
    last_seen: str | None

    @property
    def silent(self) -> list[str]:
        return [name for name, age in self.ages.items() if age is None or age > self.stale_after_seconds]

    @property
    def healthy(self) -> bool:
        return not self.silent

    def describe(self) -> str:
        if self.healthy:
            newest = min(age for age in self.ages.values() if age is not None)
            return f"dagster-daemon: alive (newest heartbeat {newest:.0f} s ago)"
        parts = [
            f"{name} {'never' if self.ages[name] is None else f'{self.ages[name]:.0f} s ago'}" for name in self.silent
        ]
        return f"dagster-daemon: DOWN (silent: {', '.join(parts)}; limit {self.stale_after_seconds:.0f} s)"


def daemon_health(heartbeat_timestamps: dict[str, float], now: float, stale_after_seconds: float) -> DaemonHealth:
    """From each daemon type's newest heartbeat (epoch seconds), as Dagster's storage holds them."""
    ages = {
        name: (now - heartbeat_timestamps[name]) if name in heartbeat_timestamps else None for name in REQUIRED_DAEMONS
    }
    newest = max(heartbeat_timestamps.values(), default=None)
    last_seen = dt.datetime.fromtimestamp(newest, dt.UTC).isoformat() if newest is not None else None
    return DaemonHealth(ages, stale_after_seconds, last_seen)


def read_daemon_heartbeats(instance: object) -> dict[str, float]:
    """The newest heartbeat per daemon type from the instance's storage (PostgreSQL)."""
    beats = instance.get_daemon_heartbeats()  # type: ignore[attr-defined]
    return {str(name): float(beat.timestamp) for name, beat in beats.items()}


@dataclass
class WatchReport:
    daemon: DaemonHealth
    overdue: list[schedule_watch.Overdue]
    watched_jobs: list[str]
    ping: str
    alerts: list[AlertOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.daemon.healthy and not self.overdue

    def lines(self) -> list[str]:
        watched = ", ".join(self.watched_jobs) or "none"
        lines = [self.daemon.describe(), f"scheduled jobs watched: {watched}"]
        lines += [item.describe() for item in self.overdue] or ["no scheduled run is overdue"]
        lines.append(f"daemon heartbeat ping: {self.ping}")
        lines += [f"alert: {outcome.describe()}" for outcome in self.alerts]
        return lines


def _alerts(report_daemon: DaemonHealth, overdue: Sequence[schedule_watch.Overdue]) -> list[Alert]:
    alerts = []
    if not report_daemon.healthy:
        silent_for = [age for name in report_daemon.silent if (age := report_daemon.ages[name]) is not None]
        alerts.append(
            Alert(
                DAEMON_DOWN,
                "dagster_daemon",
                None,
                None,
                {
                    "silence": (
                        f"for {round(max(silent_for) / 60)} minutes"
                        if silent_for
                        else "at all (no heartbeat in its run storage)"
                    ),
                    "silent_daemons": ", ".join(report_daemon.silent),
                    "last_heartbeat_at": report_daemon.last_seen,
                },
                # One incident per silence: the daemon's last heartbeat before it went quiet.
                incident=f"last-heartbeat:{report_daemon.last_seen or 'never'}",
            )
        )
    for item in overdue:
        alerts.append(
            Alert(
                SCHEDULE_OVERDUE,
                item.job_name,
                None,
                None,
                {
                    "expected_at": item.expected_at.isoformat(),
                    "last_success_at": item.last_success_at.isoformat() if item.last_success_at else None,
                },
                incident=f"expected:{item.expected_at.isoformat()}",
            )
        )
    return alerts


def watch(database_url: str, instance: object, specs: Sequence[JobSpec], *, alert: bool = True) -> WatchReport:
    """One watchdog pass: sync the schedules, record what is overdue, judge the daemon, ping, alert."""
    current = settings.load()
    with connect(database_url, autocommit=True) as connection:
        watched = schedule_watch.sync_job_schedules(connection, specs)
        overdue = schedule_watch.record_overdue(connection, "watchdog")
    health = daemon_health(
        read_daemon_heartbeats(instance), dt.datetime.now(dt.UTC).timestamp(), current.daemon_stale_seconds
    )
    ping = heartbeat.ping(
        settings.DAEMON_HEARTBEAT,
        "success" if health.healthy else "fail",
        None if health.healthy else health.describe(),
    )
    report = WatchReport(health, overdue, watched, ping)
    if alert:
        service = AlertService(database_url, AlertSettings())
        report.alerts = [outcome for outcome in service.deliver_new(_alerts(health, overdue)) if outcome is not None]
        if not health.healthy:
            # The redelivery sensor is the daemon's: while it is dead, the watchdog retries in its place
            # (claimed with SKIP LOCKED, so the two never send one alert twice).
            report.alerts += service.redeliver()
    return report
