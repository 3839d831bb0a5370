"""Start `dynamics_sync` only when events are due: every run in history did something."""

import time

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from reminder_pipeline.certifications.dynamics_sync import due_events
from reminder_pipeline.certifications.jobs import dynamics_sync_job
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.resources import PipelineDatabase

CHECK_INTERVAL_SECONDS = 60
#: A state of due events that did not change for this long is asked for again (a run that died).
RETRY_WINDOW_SECONDS = 15 * 60


@sensor(
    name="dynamics_sync_when_due",
    job=dynamics_sync_job,
    minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Starts dynamics_sync when Dynamics sync events are due (checked every minute); reads only.",
)
def dynamics_sync_when_due(context: SensorEvaluationContext, database: PipelineDatabase) -> SensorResult:
    with connect(database.url(), autocommit=True) as connection:
        due, fingerprint = due_events(connection)
    if not due:
        return SensorResult(skip_reason=SkipReason("no Dynamics sync event is due"))
    window = int(time.time() // RETRY_WINDOW_SECONDS)
    return SensorResult(run_requests=[RunRequest(run_key=f"due:{fingerprint}:{window}", tags={"due_events": str(due)})])
