"""Launch a job's run the way the Launchpad does: through the code location (so the run has a
repository origin, shows on the job's page and the timeline), into the instance's run queue when a
daemon serves it, and follow it to the end.

With no `dagster-daemon` alive (a laptop with no `ui` running, the demo on a fresh machine), a queued
run would wait forever; the run is then launched directly through the same code location (still a
launched run in the history; the job's advisory lock guards against an overlap the queue would have
prevented), and the caller is told so.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reminder_pipeline.core import settings
from reminder_pipeline.core.daemon_health import QUEUE_DAEMON, read_daemon_heartbeats
from reminder_pipeline.core.errors import CodeLocationUnavailable
from reminder_pipeline.core.run_config import launch_problem

#: The code location's name in every workspace file we ship (and on the gRPC code server).
LOCATION_NAME = "reminder_pipeline"

#: The queue daemon counts as alive when its newest heartbeat is younger than this.
QUEUE_DAEMON_STALE_SECONDS = 120

POLL_SECONDS = 0.5
RELEASE_TIMEOUT_SECONDS = 10


def queue_is_served(instance: Any) -> bool:
    """Whether a daemon dequeues runs (its heartbeat in the instance's storage is fresh)."""
    beat = read_daemon_heartbeats(instance).get(QUEUE_DAEMON)
    return beat is not None and time.time() - beat < QUEUE_DAEMON_STALE_SECONDS


@contextmanager
def code_location(instance: Any, workspace_file: Path) -> Iterator[Any]:
    """A request context of the workspace `workspace_file` describes (the python module, which
    starts a local gRPC server for as long as this lasts, or a running code server)."""
    from dagster import __version__
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with warnings.catch_warnings():
        # Dagster warns a load error with its whole stack trace; the one line below says it.
        warnings.simplefilter("ignore", UserWarning)
        process = WorkspaceProcessContext(
            instance=instance,
            version=__version__,
            read_only=False,
            workspace_load_target=WorkspaceFileTarget(paths=[str(workspace_file)]),
            code_server_log_level="WARNING",  # its start and stop are not news to the person running `run`
        )
    with process:
        request = process.create_request_context()
        error = request.get_code_location_error(LOCATION_NAME)
        if error is not None:
            first = (error.message or "").strip().splitlines()[:1]
            reason = first[0] if first else error.cls_name
            hint = ""
            if "DagsterUserCodeUnreachableError" in reason:
                current = settings.load()
                hint = (
                    f" (is `reminder-pipeline serve code-server` running at"
                    f" {current.code_server_host}:{current.code_server_port}?)"
                )
            raise CodeLocationUnavailable(f"the code location {LOCATION_NAME} could not be loaded: {reason}{hint}")
        yield request


def create_run(instance: Any, workspace: Any, job_name: str, run_config: Mapping[str, Any], tags: Mapping[str, str]):
    """A NOT_STARTED run of `job_name` with the code location's origin (as `dagster job launch` makes it)."""
    from dagster._cli.job import _create_run

    location = workspace.get_code_location(LOCATION_NAME)
    (repository,) = location.get_repositories().values()
    return _create_run(
        instance=instance,
        code_location=location,
        remote_repo=repository,
        remote_job=repository.get_full_job(job_name),
        run_config=dict(run_config),
        tags=dict(tags),
        op_selection=None,
        run_id=None,
    )


#: `package.module.ClassName: ` at the start of an error line: the class is not news to an operator.
_QUALIFIED_CLASS = re.compile(r"^(?:[A-Za-z_][\w]*\.)+[A-Za-z_]\w*: ")


#: Dagster's note on each step after a failed one: the failure above says it.
_DAGSTER_SKIP_NOTICE = "Dependencies for step "


#: How Dagster ends a run whose step failed: that step's line says why.
_STEPS_FAILED = "Execution of run for "


def error_line(error: Any) -> str:
    """An error Dagster stored (a `SerializableErrorInfo`) as one line: the user's own error beneath
    Dagster's wrapper, its first line, without the qualified class name."""
    while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
        error = error.cause
    first = next((line for line in (error.message or "").strip().splitlines() if line.strip()), error.cls_name or "")
    return _QUALIFIED_CLASS.sub("", first.strip())


def event_line(entry: Any, *, debug: bool = False) -> str | None:
    """What the CLI prints for one entry of a run's event log (what the UI shows): the job's own log
    lines, and a step failure as one line (its stack trace only with `debug`). None: not shown."""
    step = entry.step_key or "run"
    event = entry.dagster_event
    if event is None:
        if entry.level < logging.INFO or (entry.user_message or "").startswith(_DAGSTER_SKIP_NOTICE):
            return None
        level = f"{logging.getLevelName(entry.level)} " if entry.level >= logging.WARNING else ""
        return f"  {step}: {level}{entry.user_message}"
    if event.is_step_failure and event.step_failure_data is not None and event.step_failure_data.error is not None:
        error = event.step_failure_data.error
        line = f"  {step}: FAILED: {error_line(error)}"
        return f"{line}\n{error.to_string()}" if debug else line
    if event.is_run_failure or entry.level >= logging.ERROR:
        # A run failed as a whole (reported dead, a start timeout, a worker that could not load the
        # code) or Dagster's own error: its first line says why; the stack only with `debug`.
        text = event.message or entry.user_message or ""
        if text.startswith(_STEPS_FAILED) and "Steps failed:" in text:
            return None  # the failed step's own line said it
        message = next((each for each in text.splitlines() if each.strip()), event.event_type_value)
        error = getattr(event.event_specific_data, "error", None)
        line = f"  {step}: {'FAILED' if event.is_run_failure else 'ERROR'}: {message.strip()}"
        return f"{line}\n{error.to_string()}" if debug and error is not None else line
    return None


def launch_and_follow(
    instance: Any,
    workspace_file: Path,
    job_name: str,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
    echo: Callable[[str], None],
    *,
    debug: bool = False,
) -> Any:
    """Submit (or, with no daemon, launch) a run and follow it to its end through its event log,
    printing what the UI would show (the same lines whoever launched it); returns the finished run."""
    from dagster import DagsterRunStatus

    with code_location(instance, workspace_file) as workspace:
        run = create_run(instance, workspace, job_name, run_config, tags)
        if queue_is_served(instance):
            run = instance.submit_run(run.run_id, workspace)
            echo(f"run {run.run_id} of {job_name} queued (the daemon starts it)")
        else:
            problem = launch_problem(run.run_config)
            if problem is not None:
                from reminder_pipeline.core.run_coordinator import REFUSED_PREFIX

                instance.report_run_canceled(run, message=REFUSED_PREFIX + problem)
            else:
                echo(f"run {run.run_id} of {job_name} launched directly: no dagster-daemon is serving the queue")
                instance.launch_run(run.run_id, workspace)
        terminal = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
        cursor = None
        while True:
            current = instance.get_run_by_id(run.run_id)
            page = instance.get_records_for_run(run.run_id, cursor=cursor, limit=1000)
            cursor = page.cursor
            for record in page.records:
                line = event_line(record.event_log_entry, debug=debug)
                if line is not None:
                    echo(line)
            if current.status in terminal and not page.has_more:
                break
            if not page.has_more:
                time.sleep(POLL_SECONDS)
        _wait_until_released(workspace, run.run_id)
        return current


def _wait_until_released(workspace: Any, run_id: str) -> None:
    """Keep the database up until the code server has let go of the finished run.

    The code server's clean-up thread reads the run from storage once its worker exits; were the
    embedded database stopped first (this process exiting), that thread would die and the server would
    never shut down (found as orphaned `dagster api grpc` processes). Bounded: never waits long.
    """
    location = workspace.get_code_location(LOCATION_NAME)
    deadline = time.monotonic() + RELEASE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if run_id not in location.get_current_runs():
                return
        except Exception:  # a server already gone has released everything
            return
        time.sleep(0.1)
