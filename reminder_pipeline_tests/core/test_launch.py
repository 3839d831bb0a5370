"""How the CLI shows a followed run: the lines of its event log, a failed step as one line."""

import logging

from dagster import DagsterInstance, OpExecutionContext, job, op

from reminder_pipeline.core.errors import SanitizedError
from reminder_pipeline.core.launch import event_line


@op
def says_and_fails(context: OpExecutionContext) -> None:
    context.log.info("checked 3 things")
    context.log.debug("not for the operator")
    raise SanitizedError("DeliveryNotConfigured: 2 notification(s) are due and no channel is configured")


@job
def failing_job() -> None:
    says_and_fails()


def _lines(debug: bool) -> list[str]:
    with DagsterInstance.ephemeral() as instance:
        result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        records = instance.get_records_for_run(result.run_id, limit=1000).records
        return [line for record in records if (line := event_line(record.event_log_entry, debug=debug))]


def test_a_failed_step_is_one_line_without_its_class_path_and_debug_adds_the_stack() -> None:
    lines = _lines(debug=False)
    assert lines == [
        "  says_and_fails: checked 3 things",
        "  says_and_fails: FAILED: DeliveryNotConfigured: 2 notification(s) are due and no channel is configured",
    ]
    (failure,) = [line for line in _lines(debug=True) if "FAILED" in line]
    assert failure.splitlines()[0] == lines[1] and 'File "' in failure and len(failure.splitlines()) > 3


def test_a_run_failed_as_a_whole_says_why() -> None:
    """A run reported failed without a failed step (ops_dead_runs, a start timeout) still says why."""

    @job
    def passing_job() -> None:
        says_only()

    with DagsterInstance.ephemeral() as instance:
        run = instance.create_run_for_job(passing_job)
        instance.report_run_failed(run, "the run's process is gone: reported failed by ops_dead_runs")
        records = instance.get_records_for_run(run.run_id, limit=1000).records
        lines = [line for record in records if (line := event_line(record.event_log_entry))]
    assert lines == ["  run: FAILED: the run's process is gone: reported failed by ops_dead_runs"]


@op
def says_only(context: OpExecutionContext) -> None:
    context.log.info("fine")


def test_warnings_and_errors_say_their_level() -> None:
    class Entry:
        step_key = "deliver"
        dagster_event = None
        level = logging.ERROR
        user_message = "Log row 1 marked failed (consecutive failures: 2)."

    assert event_line(Entry()) == "  deliver: ERROR Log row 1 marked failed (consecutive failures: 2)."
