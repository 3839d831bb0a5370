"""Dagster wiring: the nightly certification job and the Dynamics sync job."""

import uuid
from dataclasses import dataclass

import pandas as pd
from dagster import Config, ConfigurableResource, OpExecutionContext, op
from pydantic import Field

from reminder_pipeline.certifications import dynamics_sync, repository
from reminder_pipeline.certifications.rules import (
    DEFAULT_THRESHOLDS,
    decide_auto_pauses,
    decide_expiry_reminders,
    decide_reactivations,
)
from reminder_pipeline.core.alerts import DYNAMICS_SYNC_DEAD, Alert, OpsAlertSink
from reminder_pipeline.core.backoff import Backoff
from reminder_pipeline.core.guarded_run import (
    JobOutcome,
    JobRunGuard,
    RunTicket,
    begin_guarded_run,
    finish_guarded_run,
    guarded_job,
    safe_errors,
    sample_ids,
)
from reminder_pipeline.core.jobs import JobSpec, ScheduleSpec
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.core.run_config import AsOfConfig, tag_as_of

CERTIFICATION_REMINDERS = JobSpec(
    name="certification_reminders",
    description=(
        "Warn mentors before their certification expires; pause them when it has, reactivate them when it is"
        " renewed, and queue the portal sync."
    ),
    lock_key=7_204_002,
    schedule=ScheduleSpec(
        name="certification_reminders_nightly",
        cron="0 2 * * *",
        description="Every night at 02:00 Europe/Oslo, for that day.",
    ),
    missed_run_hours=26,
    dated_op="decide_certification_actions",
    asset="certification_actions",
    counts=("certifications evaluated", "expiry reminders created"),
)
DYNAMICS_SYNC = JobSpec(
    name="dynamics_sync",
    description="Deliver pending Dynamics sync events; with event_id or mentor_id in config, a manual retry.",
    lock_key=7_204_003,
    # No schedule and no missed-run window: the sensor `dynamics_sync_when_due` starts a run only
    # when events are due, so history holds only runs that did something. Stuck events are
    # watched by the event itself (backoff, `dynamics_sync_dead` alert).
    asset="dynamics_sync_deliveries",
    counts=("sync events claimed", "synced to the portal"),
)


class CertificationRunConfig(AsOfConfig):
    thresholds: list[int] = Field(default=list(DEFAULT_THRESHOLDS), description="Days before expiry to remind.")


@dataclass(frozen=True)
class CertificationDecisions:
    as_of: str
    certifications_evaluated: int
    reminders: pd.DataFrame
    pauses: pd.DataFrame
    reactivations: pd.DataFrame


@op(description="Read the certifications of active mentors in one set-based query.")
def load_certifications(context: OpExecutionContext, ticket: RunTicket, database: PipelineDatabase) -> pd.DataFrame:
    with safe_errors(), database.transaction() as connection:
        frame = repository.load_certifications(connection)
    context.log.info(f"Loaded {len(frame)} certifications of active mentors.")
    return frame


@op(description="Read the open pauses of paused mentors with their renewal candidates, in one query.")
def load_open_pauses(context: OpExecutionContext, ticket: RunTicket, database: PipelineDatabase) -> pd.DataFrame:
    with safe_errors(), database.transaction() as connection:
        frame = repository.load_open_pauses(connection)
    context.log.info(f"Loaded {frame['pause_id'].nunique()} open pauses of paused mentors.")
    return frame


@op(description="Decide expiry reminders, auto-pauses and reactivations after renewal (vectorised, no I/O).")
def decide_certification_actions(
    context: OpExecutionContext, config: CertificationRunConfig, certifications: pd.DataFrame, open_pauses: pd.DataFrame
) -> CertificationDecisions:
    with safe_errors():
        as_of = config.as_of_date()
        tag_as_of(context, as_of)
        reminders = decide_expiry_reminders(certifications, as_of, config.thresholds)
        pauses = decide_auto_pauses(certifications, as_of)
        reactivations = decide_reactivations(open_pauses, as_of)
    context.log.info(
        f"As of {as_of}: {len(reminders)} reminders due, {len(pauses)} mentors to pause,"
        f" {len(reactivations)} renewed mentors to reactivate."
    )
    return CertificationDecisions(as_of.isoformat(), len(certifications), reminders, pauses, reactivations)


@op(description="Log each threshold once (ON CONFLICT DO NOTHING) and notify only what was logged.")
def send_expiry_reminders(decisions: CertificationDecisions, database: PipelineDatabase, run_guard: JobRunGuard) -> int:
    with safe_errors(), database.transaction() as connection:
        sent = repository.record_and_dispatch_reminders(connection, decisions.reminders)
        run_guard.count_dispatched(connection, sent)
        return sent


@op(description="Pause, record history, write the Dynamics sync event and notify: one transaction.")
def pause_expired_mentors(decisions: CertificationDecisions, database: PipelineDatabase) -> tuple[int, int]:
    with safe_errors(), database.transaction() as connection:
        return repository.auto_pause(connection, decisions.pauses)


@op(description="Reactivate, close the pause, write the Dynamics sync event and notify: one transaction.")
def reactivate_renewed_mentors(decisions: CertificationDecisions, database: PipelineDatabase) -> tuple[int, int]:
    with safe_errors(), database.transaction() as connection:
        return repository.reactivate(connection, decisions.reactivations)


@op
def certification_outcome(
    context: OpExecutionContext,
    decisions: CertificationDecisions,
    sent: int,
    paused: tuple[int, int],
    reactivated: tuple[int, int],
) -> JobOutcome:
    mentors_paused, pause_events = paused
    mentors_reactivated, reactivate_events = reactivated
    sync_events = pause_events + reactivate_events
    context.log.info(
        f"{sent} reminders created, {mentors_paused} mentors paused, {mentors_reactivated} reactivated,"
        f" {sync_events} Dynamics events queued."
    )
    return JobOutcome(
        evaluated=decisions.certifications_evaluated,
        created=sent,
        details={
            "as_of": decisions.as_of,
            "certifications_evaluated": decisions.certifications_evaluated,
            "reminders_sent": sent,
            "mentors_paused": mentors_paused,
            "mentors_reactivated": mentors_reactivated,
            "dynamics_events_queued": sync_events,
            "sample_reminded_mentor_ids": sample_ids(decisions.reminders["mentor_id"]),
            "sample_paused_mentor_ids": sample_ids(decisions.pauses["mentor_id"]),
            "sample_reactivated_mentor_ids": sample_ids(decisions.reactivations["mentor_id"]),
        },
    )


@guarded_job(CERTIFICATION_REMINDERS)
def certification_reminders() -> None:
    ticket = begin_guarded_run()
    decisions = decide_certification_actions(load_certifications(ticket), load_open_pauses(ticket))
    finish_guarded_run(
        certification_outcome(
            decisions,
            send_expiry_reminders(decisions),
            pause_expired_mentors(decisions),
            reactivate_renewed_mentors(decisions),
        )
    )


class DynamicsPortal(ConfigurableResource):
    """The HLF Dynamics portal webhook. The URL is read when a sync runs (`DYNAMICS_WEBHOOK_URL`)."""

    webhook_url: str | None = Field(default=None, description="Override for tests; normally unset.")
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=Backoff().max_attempts, ge=1)
    backoff_base_seconds: float = Field(default=Backoff().base_seconds, gt=0)
    backoff_cap_seconds: float = Field(default=Backoff().cap_seconds, gt=0)
    batch_size: int = Field(default=20, ge=1)

    def client(self) -> dynamics_sync.DynamicsClient:
        return dynamics_sync.client_from_environment(self.timeout_seconds, self.webhook_url)

    def backoff(self) -> Backoff:
        return Backoff(self.backoff_base_seconds, self.backoff_cap_seconds, self.max_attempts)


class SyncRunConfig(Config):
    event_id: str | None = Field(default=None, description="Manual retry: make this event due now, sync only it.")
    mentor_id: str | None = Field(default=None, description="Manual retry: make this mentor's events due now.")


@op(description="Deliver due Dynamics sync events (FOR UPDATE SKIP LOCKED), with backoff on failure.")
def sync_dynamics_events(
    context: OpExecutionContext,
    config: SyncRunConfig,
    ticket: RunTicket,
    database: PipelineDatabase,
    dynamics_portal: DynamicsPortal,
    ops_alerting: OpsAlertSink,
) -> JobOutcome:
    with safe_errors():
        event_id = uuid.UUID(config.event_id) if config.event_id else None
        mentor_id = uuid.UUID(config.mentor_id) if config.mentor_id else None
        selected = None
        if event_id or mentor_id:
            with database.transaction() as connection:
                selected = dynamics_sync.make_due_now(connection, event_id=event_id, mentor_id=mentor_id)
            context.log.info(f"Manual retry: {len(selected)} event(s) made due now.")
        result = dynamics_sync.sync_due_events(
            database.transaction,
            dynamics_portal.client,
            dynamics_portal.backoff(),
            batch_size=dynamics_portal.batch_size,
            event_ids=selected,
        )
    for dead in result.dead:
        outcome = ops_alerting.send(
            Alert(
                DYNAMICS_SYNC_DEAD,
                DYNAMICS_SYNC.name,
                None,
                context.run_id,
                {"job_name": DYNAMICS_SYNC.name, **dead},
                subject_id=uuid.UUID(dead["sync_event_id"]),
                # One incident per death: a manual retry that fails again dies in another run and
                # alerts again; a re-executed run cannot kill the same event twice.
                incident=f"{dead['sync_event_id']}:{context.run_id}",
            )
        )
        if outcome is not None:
            (context.log.info if outcome.sent else context.log.warning)(outcome.describe())
    context.log.info(
        f"{result.claimed} claimed, {result.synced} synced, {result.failed} failed, {len(result.dead)} dead."
    )
    return JobOutcome(
        evaluated=result.claimed,
        created=result.synced,
        details={"claimed": result.claimed, "synced": result.synced, "failed": result.failed, "dead": len(result.dead)},
    )


@guarded_job(DYNAMICS_SYNC)
def dynamics_sync_job() -> None:
    finish_guarded_run(sync_dynamics_events(begin_guarded_run()))
