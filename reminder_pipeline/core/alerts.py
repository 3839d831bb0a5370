"""What a run reports to operations, and the resource it reports through.

The core knows that alerts exist, not how they are decided or delivered: jobs hand an :class:`Alert`
to the `OpsAlertSink` resource, and the alerting domain provides the real
sink. An alert carries reference ids and sanitised messages only, never personal data or secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from dagster import ConfigurableResource

#: The kinds `ops_alerts.kind` allows.
CONSECUTIVE_FAILURES = "consecutive_failures"
RECOVERED = "recovered"
LONG_RUNNING = "long_running"
#: A log row `running` for longer than this many minutes: the long_running alert and asset check.
LONG_RUNNING_MINUTES = 30
MISSED_RUN = "missed_run"
MISSED_RUN_RECOVERED = "missed_run_recovered"
DYNAMICS_SYNC_DEAD = "dynamics_sync_dead"
NOTIFICATION_DELIVERY_GAVE_UP = "notification_delivery_gave_up"
NOTIFICATION_DELIVERY_RECOVERED = "notification_delivery_recovered"
#: Raised by `reminder-pipeline watchdog`, which needs no Dagster process.
DAEMON_DOWN = "daemon_down"
SCHEDULE_OVERDUE = "schedule_overdue"
#: A closing alert, recorded, resolves the still-unsent alert of the incident it closes (same job,
#: same incident key): an alert about a problem that is over is not retried.
CLOSES = {
    RECOVERED: CONSECUTIVE_FAILURES,
    MISSED_RUN_RECOVERED: MISSED_RUN,
    NOTIFICATION_DELIVERY_RECOVERED: NOTIFICATION_DELIVERY_GAVE_UP,
}


@dataclass(frozen=True)
class Alert:
    kind: str
    job_name: str
    execution_log_id: UUID | None
    dagster_run_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    #: What the incident is about when it is not a log row (a Dynamics sync event, say).
    subject_id: UUID | None = None
    #: Names the incident when neither a log row nor a subject does (a Dagster run id, say).
    incident: str | None = None

    @property
    def incident_key(self) -> str:
        """Once per (kind, job, incident): the database's unique key makes a repeat a no-op."""
        if self.incident is not None:
            return self.incident
        return f"{self.execution_log_id or ''}/{self.subject_id or ''}"

    def to_config(self) -> dict[str, Any]:
        """JSON-safe, for a run's config (the sensors hand alerts to the delivery job this way)."""
        return {
            "kind": self.kind,
            "job_name": self.job_name,
            "execution_log_id": str(self.execution_log_id) if self.execution_log_id else None,
            "dagster_run_id": self.dagster_run_id,
            "payload": json.loads(json.dumps(self.payload, default=str)),
            "subject_id": str(self.subject_id) if self.subject_id else None,
            "incident": self.incident,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Alert:
        return cls(
            kind=config["kind"],
            job_name=config["job_name"],
            execution_log_id=UUID(config["execution_log_id"]) if config.get("execution_log_id") else None,
            dagster_run_id=config.get("dagster_run_id"),
            payload=dict(config.get("payload") or {}),
            subject_id=UUID(config["subject_id"]) if config.get("subject_id") else None,
            incident=config.get("incident"),
        )


class Reportable(Protocol):
    """What a sink answers: something the run writes to its own log."""

    sent: bool

    def describe(self) -> str: ...


class OpsAlertSink(ConfigurableResource):
    """Where runs report to operations. Implementations never raise and bound their own time."""

    def send(self, alert: Alert) -> Reportable | None:
        """Record and deliver an alert a run raised itself; None when the incident was alerted already."""
        raise NotImplementedError("configure the alerting domain's OpsAlerting resource")

    def open_incident(self, kind: str, closed_by: str, job_name: str) -> str | None:
        """The newest incident of `kind` for `job_name` that no `closed_by` alert has closed yet: a run
        that raises incidents of its own (not run failures) alerts once, then once more when it is over."""
        raise NotImplementedError("configure the alerting domain's OpsAlerting resource")
