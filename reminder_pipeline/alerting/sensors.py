"""Sensors that watch every job and ask for alerts: they read (Dagster's run storage, the
execution log) and answer with run requests; they never send or write anything themselves, so
evaluating one, or previewing its tick in the UI, changes nothing. The delivery job sends.

A requested delivery that fails (database and every channel down) is asked for again, with capped
backoff, until one succeeds: the run key carries the number of failed attempts.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Sequence

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from reminder_pipeline.alerting.jobs import (
    ALERT_DELIVERY_JOB,
    ALERT_TAG,
    DEAD_RUNS_JOB,
    alert_delivery_job,
    alert_tag,
    dead_runs_job,
    run_is_alive,
)
from reminder_pipeline.alerting.policy import run_failure_alerts
from reminder_pipeline.alerting.resources import OpsAlerting
from reminder_pipeline.alerting.service import NO_ALERT_CHANNEL
from reminder_pipeline.alerting.store import ALERT_BACKOFF
from reminder_pipeline.core import settings
from reminder_pipeline.core.alerts import CONSECUTIVE_FAILURES, Alert
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.errors import DatabaseUnavailable
from reminder_pipeline.core.jobs import JobSpec
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.core.run_history import HISTORY, finished_runs

CHECK_INTERVAL_SECONDS = 300
#: Run failures and dead runs are checked every minute: a dead run holds its job's queue.
FAST_CHECK_INTERVAL_SECONDS = 60
#: With the application database unreachable, liveness cannot be read: a run STARTED this long ago
#: has certainly failed on its own database (connect timeout, keepalives) or is dead.
DEAD_RUN_GRACE_WITHOUT_DATABASE = dt.timedelta(minutes=10)
#: A delivery run that failed is asked for again after the same backoff as a recorded alert's retry.
RETRY_BACKOFF = ALERT_BACKOFF


def _delivery_request(instance: DagsterInstance, alert: Alert, ops_alerting: OpsAlerting) -> RunRequest | None:
    """A run request for one alert, unless one was delivered, is under way, or waits out its backoff.
    Once the alert is recorded, retrying it is `ops_alert_redelivery`'s work, not this sensor's."""
    tag = alert_tag(alert)
    records = instance.get_run_records(RunsFilter(job_name=ALERT_DELIVERY_JOB, tags={ALERT_TAG: tag}), limit=100)
    if any(
        record.dagster_run.status not in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED) for record in records
    ):
        return None  # delivered (the incident's row exists), or a delivery is queued or running
    if records and ops_alerting.is_recorded(alert):
        return None  # recorded by a run that could not send it: the redelivery sensor retries it
    if records:
        wait = RETRY_BACKOFF.ceiling(len(records))
        if time.time() - (records[0].end_time or 0) < wait:
            return None
    return RunRequest(
        run_key=f"{tag}#{len(records)}",
        job_name=ALERT_DELIVERY_JOB,
        run_config={"ops": {"deliver_alerts": {"config": {"alerts": [json.dumps(alert.to_config())]}}}},
        tags={ALERT_TAG: tag},
    )


def _answer(
    context: SensorEvaluationContext, ops_alerting: OpsAlerting, alerts: Iterable[Alert], idle: str
) -> SensorResult:
    """Run requests named after their alerts (the tick lists them by run key), and a log line per
    alert in the tick's own log: a tick that raised an alert says so."""
    requests = []
    for alert in alerts:
        request = _delivery_request(context.instance, alert, ops_alerting)
        if request is None:
            context.log.info(f"{alert_tag(alert)}: already delivered, or a delivery is under way or backing off")
            continue
        context.log.info(f"raising {alert.kind} for {alert.job_name}: delivery run requested ({request.run_key})")
        requests.append(request)
    if requests:
        return SensorResult(run_requests=requests)
    return SensorResult(skip_reason=SkipReason(idle))


@sensor(
    name="ops_long_running_runs",
    minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    jobs=[alert_delivery_job],
    description="Asks for one alert per execution-log row still running after the configured minutes (30).",
)
def long_running_runs_sensor(context: SensorEvaluationContext, ops_alerting: OpsAlerting) -> SensorResult:
    return _answer(context, ops_alerting, ops_alerting.long_running_alerts(), "no run is running too long")


def missed_runs_sensor(jobs: Sequence[JobSpec]) -> SensorDefinition:
    """Watches every job whose spec declares a missed-run window."""
    windows = {spec.name: float(spec.missed_run_hours) for spec in jobs if spec.missed_run_hours is not None}

    @sensor(
        name="ops_missed_runs",
        minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        jobs=[alert_delivery_job],
        description="Asks for one alert when a scheduled job has not succeeded within its missed-run window ("
        + ", ".join(f"{name} {hours:g} h" for name, hours in sorted(windows.items()))
        + "), and one more when it succeeds again.",
    )
    def ops_missed_runs(context: SensorEvaluationContext, ops_alerting: OpsAlerting) -> SensorResult:
        # The cursor remembers when watching started, the clock for a job that never ran at all.
        if context.cursor:
            watching_since = dt.datetime.fromisoformat(context.cursor)
        else:
            watching_since = dt.datetime.now(dt.UTC)
            context.update_cursor(watching_since.isoformat())
        alerts = ops_alerting.missed_run_alerts(watching_since, windows)
        return _answer(context, ops_alerting, alerts, "every job succeeded within its window")

    return ops_missed_runs


def run_failures_sensor(jobs: Sequence[JobSpec]) -> SensorDefinition:
    """Counts each job's consecutive failed runs in Dagster's own run storage, which works while the
    application database is down: failed steps, runs reported dead and runs that failed before they
    could write a log row all count alike."""
    names = sorted(spec.name for spec in jobs)

    @sensor(
        name="ops_run_failures",
        minimum_interval_seconds=FAST_CHECK_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        jobs=[alert_delivery_job],
        description="Asks for one alert when a job's runs failed twice in a row (any cause), and one when it recovers.",
    )
    def ops_run_failures(context: SensorEvaluationContext, ops_alerting: OpsAlerting) -> SensorResult:
        instance = context.instance

        def announced(incident: str) -> bool:
            tag = f"{CONSECUTIVE_FAILURES}:{job_name}:{incident}"
            return instance.get_runs_count(RunsFilter(job_name=ALERT_DELIVERY_JOB, tags={ALERT_TAG: tag})) > 0

        alerts: list[Alert] = []
        for job_name in names:
            alerts += run_failure_alerts(
                job_name,
                finished_runs(instance, job_name),
                threshold=ops_alerting.failure_threshold,
                announced=announced,
                webserver_base_url=ops_alerting.webserver_base_url,
            )
        return _answer(context, ops_alerting, alerts, "no job is failing")

    return ops_run_failures


@sensor(
    name="ops_alert_redelivery",
    minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    jobs=[alert_delivery_job],
    description="Asks for a retry of undelivered alerts (capped backoff) and marks day-old ones expired.",
)
def alert_redelivery_sensor(context: SensorEvaluationContext, ops_alerting: OpsAlerting) -> SensorResult:
    backlog = ops_alerting.backlog()
    if not backlog.due and not backlog.to_expire and not backlog.to_resolve:
        return SensorResult(skip_reason=SkipReason("no undelivered alert is due"))
    send = ops_alerting.has_channel()
    if not send and not backlog.to_expire and not backlog.to_resolve:
        # Reported once at start-up and by `doctor`; a retry now would fail the same way.
        return SensorResult(skip_reason=SkipReason(f"{backlog.due} alert(s) wait: {NO_ALERT_CHANNEL}"))
    # One request per backlog state and window: a failed retry run is asked for again next window.
    window = int(time.time() // CHECK_INTERVAL_SECONDS)
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"redeliver:{backlog.fingerprint}:{window}",
                job_name=ALERT_DELIVERY_JOB,
                run_config={"ops": {"deliver_alerts": {"config": {"redeliver": True, "send": send}}}},
            )
        ]
    )


def dead_runs_sensor(jobs: Sequence[JobSpec]) -> SensorDefinition:
    """Finds STARTED runs of our jobs whose process is gone: no database session carries the run's
    name (`rp:<run id>`), and the job's advisory lock lives on that session."""
    names = sorted(spec.name for spec in jobs)

    @sensor(
        name="ops_dead_runs",
        minimum_interval_seconds=FAST_CHECK_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        jobs=[dead_runs_job],
        description="Asks ops_dead_runs to fail runs whose process died, so no job waits behind a dead run.",
    )
    def ops_dead_runs(context: SensorEvaluationContext, database: PipelineDatabase) -> SensorResult:
        now = dt.datetime.now(dt.UTC)
        started = [
            record
            for name in names
            for record in context.instance.get_run_records(
                RunsFilter(job_name=name, statuses=[DagsterRunStatus.STARTED]), limit=HISTORY
            )
            if record.start_time is not None
        ]

        def age(record: object) -> dt.timedelta:
            return now - dt.datetime.fromtimestamp(record.start_time, dt.UTC)  # type: ignore[attr-defined]

        # A STARTED run younger than the grace period may not have opened its database session yet.
        grace = dt.timedelta(seconds=settings.load().dead_run_grace_seconds)
        candidates = [record for record in started if age(record) > grace]
        if not candidates:
            return SensorResult(skip_reason=SkipReason(f"{len(started)} run(s) started, none suspect"))
        try:
            with connect(database.url(), autocommit=True) as connection:
                dead = [r.dagster_run.run_id for r in candidates if not run_is_alive(connection, r.dagster_run.run_id)]
        except DatabaseUnavailable:
            dead = [r.dagster_run.run_id for r in candidates if age(r) > DEAD_RUN_GRACE_WITHOUT_DATABASE]
        if not dead:
            return SensorResult(skip_reason=SkipReason(f"{len(candidates)} long run(s), all alive"))
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=f"dead:{','.join(sorted(dead))}",
                    job_name=DEAD_RUNS_JOB,
                    run_config={"ops": {"fail_dead_runs": {"config": {"run_ids": sorted(dead)}}}},
                )
            ]
        )

    return ops_dead_runs
