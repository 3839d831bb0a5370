"""How alive the dagster-daemon is, read from its own heartbeats in Dagster's storage (it writes one per
daemon type every 30 s): the watchdog judges it down, the CLI decides whether the run queue is served."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

#: The daemons whose silence stops the pipeline: schedules, sensors (alerts, delivery) and the queue.
QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"
REQUIRED_DAEMONS = ("SCHEDULER", "SENSOR", QUEUE_DAEMON)


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
