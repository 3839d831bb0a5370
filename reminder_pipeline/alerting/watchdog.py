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
from reminder_pipeline.core.daemon_health import DaemonHealth, daemon_health, read_daemon_heartbeats
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.jobs import JobSpec


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


def _alerts(daemon: DaemonHealth, overdue: Sequence[schedule_watch.Overdue]) -> list[Alert]:
    alerts = []
    if not daemon.healthy:
        silent_for = [age for name in daemon.silent if (age := daemon.ages[name]) is not None]
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
                    "silent_daemons": ", ".join(daemon.silent),
                    "last_heartbeat_at": daemon.last_seen,
                },
                # One incident per silence: the daemon's last heartbeat before it went quiet.
                incident=f"last-heartbeat:{daemon.last_seen or 'never'}",
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
