"""The run queue of `dagster.yaml`, with one check before a run is queued: a launch whose config
cannot be right (an `as_of` that is not a date, or a date far from today without the override) is
refused there, as a CANCELED run that says why, instead of starting, failing inside the run and
counting toward the failure alert."""

from dagster import DagsterRun, QueuedRunCoordinator, SubmitRunContext

from reminder_pipeline.core.run_config import launch_problem

REFUSED_PREFIX = "refused at launch: "


class ValidatingRunCoordinator(QueuedRunCoordinator):
    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        problem = launch_problem(run.run_config)
        if problem is None:
            return super().submit_run(context)
        self._instance.report_run_canceled(run, message=REFUSED_PREFIX + problem)
        refused = self._instance.get_run_by_id(run.run_id)
        assert refused is not None
        return refused
