"""What a run reports to operations, and the resource it reports through.

The core knows that alerts exist, not how they are decided or delivered: jobs hand an :class:`Alert`
(or a finished log row) to the `OpsAlertSink` resource, and the alerting domain provides the real
sink. An alert carries reference ids and sanitised messages only, never personal data or secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from dagster import ConfigurableResource

from reminder_pipeline.core.execution_log import FinishedRun

#: The kinds `ops_alerts.kind` allows.
CONSECUTIVE_FAILURES = "consecutive_failures"
RECOVERED = "recovered"
LONG_RUNNING = "long_running"
MISSED_RUN = "missed_run"
MISSED_RUN_RECOVERED = "missed_run_recovered"
DYNAMICS_SYNC_DEAD = "dynamics_sync_dead"


@dataclass(frozen=True)
class Alert:
    kind: str
    job_name: str
    execution_log_id: UUID | None
    dagster_run_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    #: What the incident is about when it is not a log row (a Dynamics sync event, say).
    subject_id: UUID | None = None


class Reportable(Protocol):
    """What a sink answers: something the run writes to its own log."""

    sent: bool

    def describe(self) -> str: ...


@dataclass(frozen=True)
class SinkFailed:
    """A sink that raised anyway: reported, never allowed to change the run."""

    error: str
    sent: bool = False

    def describe(self) -> str:
        return f"operations alert sink failed: {self.error}"


class OpsAlertSink(ConfigurableResource):
    """Where runs report to operations. Implementations never raise and bound their own time."""

    def after_run_finished(self, finished: FinishedRun) -> Reportable | None:
        """A log row was finalised: alert if the policy says so."""
        raise NotImplementedError("configure the alerting domain's OpsAlerting resource")

    def send(self, alert: Alert) -> Reportable | None:
        """Record and deliver an alert a run raised itself; None when the incident was alerted already."""
        raise NotImplementedError("configure the alerting domain's OpsAlerting resource")
