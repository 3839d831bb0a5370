"""The two jobs the operations sensors launch; the sensors themselves only read and ask.

- `ops_alert_delivery` records alerts once per incident and delivers them (and retries the ones
  that are due, marking day-old ones expired);
- `ops_dead_runs` fails runs whose process is gone, so that the run queue never holds a job behind
  a dead run, and closes their execution-log rows.
"""

import json

import sqlalchemy as sa
from dagster import Config, DagsterRunStatus, Failure, MetadataValue, OpExecutionContext, in_process_executor, job, op
from pydantic import Field

from reminder_pipeline.alerting.resources import OpsAlerting
from reminder_pipeline.alerting.service import EXPIRED, RESOLVED
from reminder_pipeline.core import execution_log
from reminder_pipeline.core.alerts import Alert
from reminder_pipeline.core.database import run_application_name
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.core.run_history import failure_streak

ALERT_DELIVERY_JOB = "ops_alert_delivery"
DEAD_RUNS_JOB = "ops_dead_runs"
#: Tag on a delivery run: which incident it announces (`kind:job:incident`).
ALERT_TAG = "reminder_pipeline/alert"
DEAD_RUN_MESSAGE = "the run's process is gone (no live database session): reported failed by ops_dead_runs"


def alert_tag(alert: Alert) -> str:
    return f"{alert.kind}:{alert.job_name}:{alert.incident_key}"


class AlertDeliveryConfig(Config):
    alerts: list[str] = Field(default_factory=list, description="Alerts to record and deliver (JSON each).")
    redeliver: bool = Field(default=False, description="Also retry undelivered alerts that are due.")
    send: bool = Field(
        default=True, description="With redeliver: false when no channel is configured (resolve and expire only)."
    )


@op(description="Record each alert once per incident, deliver the new ones, and retry the due ones.")
def deliver_alerts(context: OpExecutionContext, config: AlertDeliveryConfig, ops_alerting: OpsAlerting) -> None:
    alerts = [Alert.from_config(json.loads(text)) for text in config.alerts]
    outcomes = ops_alerting.deliver_new(alerts) if alerts else []
    retried = ops_alerting.redeliver(send=config.send) if config.redeliver else []
    attempted = [outcome for outcome in [*outcomes, *retried] if outcome and outcome.kind not in (RESOLVED, EXPIRED)]
    for outcome in [*outcomes, *retried]:
        if outcome is not None:
            (context.log.info if outcome.sent else context.log.warning)(outcome.describe())
    unsent = [outcome for outcome in attempted if not outcome.sent]
    metadata = {
        "alerts_requested": len(alerts),
        "already_alerted": sum(outcome is None for outcome in outcomes),
        "delivered": len(attempted) - len(unsent),
        "undelivered": len(unsent),
        "not_recorded": sum(outcome.alert_id is None for outcome in attempted),
        "resolved_unsent": sum(len(outcome.resolved) for outcome in attempted)
        + sum(outcome.kind == RESOLVED for outcome in retried),
        "expired": sum(outcome.kind == EXPIRED for outcome in retried),
        "incidents": MetadataValue.json([alert_tag(alert) for alert in alerts]),
    }
    if unsent:
        # Green means delivered: an alert that reached no one fails the run (red on the job's page).
        # A recorded one is retried by `ops_alert_redelivery`; one that could not even be recorded
        # (database and channels down) is asked for again by the sensor that raised it.
        reasons = sorted({outcome.error or "no reason given" for outcome in unsent})
        raise Failure(
            description=f"{len(unsent)} of {len(attempted)} alert(s) not delivered: {'; '.join(reasons)}",
            metadata=metadata,
        )
    context.add_output_metadata(metadata)


@job(
    name=ALERT_DELIVERY_JOB,
    description="Delivers operations alerts that the ops_* sensors decided on.",
    executor_def=in_process_executor,
)
def alert_delivery_job() -> None:
    deliver_alerts()


class DeadRunsConfig(Config):
    run_ids: list[str] = Field(description="Dagster runs of our jobs that look dead.")


@op(description="Report runs without a live process as failed and close their execution-log rows.")
def fail_dead_runs(context: OpExecutionContext, config: DeadRunsConfig, database: PipelineDatabase) -> None:
    failed: list[str] = []
    with database.transaction() as connection:
        for run_id in config.run_ids:
            run = context.instance.get_run_by_id(run_id)
            if run is None or run.status != DagsterRunStatus.STARTED or run_is_alive(connection, run_id):
                continue
            context.instance.report_run_failed(run, DEAD_RUN_MESSAGE)
            failed.append(run_id)
        rows = execution_log.close_rows_of_runs(
            connection, failed, lambda job_name, run_id: failure_streak(context.instance, job_name, run_id)
        )
    context.log.info(f"Reported {len(failed)} dead run(s) failed; closed {len(rows)} execution-log row(s).")
    context.add_output_metadata({"runs_failed": MetadataValue.json(failed), "log_rows_closed": len(rows)})


@job(
    name=DEAD_RUNS_JOB,
    description="Fails runs whose process died (kill -9, a lost host).",
    executor_def=in_process_executor,
)
def dead_runs_job() -> None:
    fail_dead_runs()


def run_is_alive(connection: sa.Connection, run_id: str) -> bool:
    """A run of ours is alive while a database session named after it exists (its lock lives there)."""
    return bool(
        connection.execute(
            sa.text("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = :name)"),
            {"name": run_application_name(run_id)},
        ).scalar()
    )
