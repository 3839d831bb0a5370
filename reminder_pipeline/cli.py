"""`reminder-pipeline`: migrate, seed, run jobs through the Dagster instance, read the log, demo, UI."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reminder_pipeline.core import execution_log, settings
from reminder_pipeline.core.database import connect, describe, require_migrated, resolve_database_url
from reminder_pipeline.core.errors import ReminderPipelineError
from reminder_pipeline.core.settings import MAX_DAYS_AHEAD, MAX_DAYS_BACK

if TYPE_CHECKING:
    from reminder_pipeline.core.jobs import JobSpec

# Dagster and the code location are imported by the commands that need them, not here: `--help`
# and a mistyped command answer at once.


def _debug() -> bool:
    """`--debug` given: stack traces are printed with the one-line errors."""
    context = click.get_current_context(silent=True)
    return bool(context and context.find_root().params.get("debug"))


def _friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Every error of ours becomes one clear line (never a traceback, never a password; the
    traceback too with `--debug`)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ReminderPipelineError as error:
            if _debug():
                import traceback

                traceback.print_exc()
            raise click.ClickException(str(error)) from None

    return wrapper


def _database_url(*, create: bool = False) -> str:
    """Resolve the database once and export it, so Dagster processes started from here use it too.
    Only `migrate`, `demo` and `bench` create an embedded database; the others name the home they
    looked in (a wrong directory must not become a second, empty database)."""
    url = resolve_database_url(create=create)
    os.environ["DATABASE_URL"] = url
    return url


def _check_ready(url: str) -> None:
    with connect(url, autocommit=True) as connection:
        require_migrated(connection)


class EitherSpelling(click.Choice):
    """A job name as the CLI spells it (`assignment-reminders`) or as Dagster and the log do
    (`assignment_reminders`): both are accepted, the choices' own spelling is returned. The names
    come from the code location, loaded only when the argument is used or its help shown."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute  # JobSpec.cli_name or JobSpec.name
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        from reminder_pipeline.definitions import JOB_SPECS

        return sorted(getattr(spec, self.attribute) for spec in JOB_SPECS)

    @choices.setter
    def choices(self, _value: Any) -> None:  # click.Choice.__init__ assigns it; the property wins
        pass

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            value = value.replace("_", "-") if self.attribute == "cli_name" else value.replace("-", "_")
        return super().convert(value, param, ctx)


@click.group()
@click.option(
    "--env-file",
    type=click.Path(exists=True, dir_okay=False, resolve_path=True),
    envvar=settings.ENV_FILE_VARIABLE,
    help="Settings file every process started from here reads at run time (REMINDER_PIPELINE_ENV_FILE);"
    " the environment wins over it.",
)
@click.option("--debug", is_flag=True, help="Print stack traces with errors (a run's failed step included).")
def main(env_file: str | None, debug: bool) -> None:
    """Reminder pipeline: assignment follow-up reminders on Dagster and PostgreSQL.

    Uses DATABASE_URL when set, else an embedded PostgreSQL under $REMINDER_PIPELINE_HOME
    (default ./.reminder_pipeline).
    """
    if env_file:
        # Exported as an absolute path: the code server, the daemon and every run they launch read it.
        os.environ[settings.ENV_FILE_VARIABLE] = env_file


@main.command()
@_friendly_errors
def migrate() -> None:
    """Apply pending SQL migrations (safe to run again; concurrent calls queue)."""
    url = _database_url(create=True)
    applied, watched = _migrate(url)
    click.echo(
        f"applied {len(applied)} migration(s) on {describe(url)}" + (f": {', '.join(applied)}" if applied else "")
    )
    click.echo(f"scheduled jobs the database watches for overdue runs: {', '.join(watched) or 'none'}")


def _migrate(url: str) -> tuple[list[str], list[str]]:
    """Apply migrations, then record the jobs' schedules so the database can tell when a run is overdue."""
    from reminder_pipeline.alerting.schedule_watch import sync_job_schedules
    from reminder_pipeline.core.migrations import apply_migrations
    from reminder_pipeline.definitions import JOB_SPECS

    applied = apply_migrations(url)
    with connect(url, autocommit=True) as connection:
        watched = sync_job_schedules(connection, JOB_SPECS)
    return applied, watched


@main.command()
@click.option("--assignments", "count", type=click.IntRange(min=1), default=1000, show_default=True)
@_friendly_errors
def seed(count: int) -> None:
    """Insert synthetic coordinators, mentors, assignments and activities (no real personal data)."""
    _seed(_database_url(), count)


def _seed(url: str, count: int) -> None:
    from reminder_pipeline.core.run_config import today_local
    from reminder_pipeline.seed import seed as seed_rows

    _check_ready(url)
    progress = click.progressbar(length=count, label="seeding assignments", file=sys.stderr)
    with connect(url) as connection, connection.begin(), progress as bar:
        summary = seed_rows(connection, count, today=today_local(), on_progress=bar.update)
    click.echo(
        f"seeded {summary.assignments} assignments, {summary.mentors} mentors, "
        f"{summary.coordinators} coordinators, {summary.activities} activities"
    )


@main.command()
@click.argument("job", type=EitherSpelling("cli_name"))
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), help="Date the run acts for (YYYY-MM-DD).")
@click.option(
    "--allow-any-date",
    is_flag=True,
    help=f"Allow --as-of more than {MAX_DAYS_AHEAD} day ahead or {MAX_DAYS_BACK} days back (real reminders go out).",
)
@click.option("--dry-run", is_flag=True, help="Compute and report what the run would create; write nothing.")
@click.option(
    "--retry-gave-up",
    is_flag=True,
    help="notification-delivery only: send the notifications that gave up once more.",
)
@click.option(
    "--in-process",
    is_flag=True,
    hidden=True,
    help="Execute in this process instead of launching through the code location (tests, benchmark).",
)
@_friendly_errors
def run(
    job: str, as_of: dt.datetime | None, allow_any_date: bool, dry_run: bool, retry_gave_up: bool, in_process: bool
) -> None:
    """Launch JOB through the code location, as the Launchpad does, and follow it to the end.

    The run waits in the instance's queue when a dagster-daemon serves it (else it is launched
    directly), shows on the job's page in the UI, and this command prints what it did.
    Exit code 0 when the run succeeded or was skipped because another run held the lock.
    """
    from reminder_pipeline.core.run_config import as_of_problem
    from reminder_pipeline.definitions import job_spec
    from reminder_pipeline.delivery.jobs import NOTIFICATION_DELIVERY

    spec = job_spec(job)
    if as_of is not None and spec.dated_op is None:
        raise click.BadParameter(f"{job} does not act for a date", param_hint="--as-of")
    if dry_run and spec.dated_op is None:
        raise click.BadParameter(
            f"{job} has no dry run: it only delivers what other jobs decided", param_hint="--dry-run"
        )
    problem = as_of_problem(
        as_of.date().isoformat() if as_of else None, allow_any_date, "add --allow-any-date if that is really meant"
    )
    if problem:
        raise click.BadParameter(problem, param_hint="--as-of")
    if retry_gave_up and spec.name != NOTIFICATION_DELIVERY.name:
        raise click.BadParameter(f"{job} has no notifications to retry", param_hint="--retry-gave-up")
    url = _database_url()
    _check_ready(url)
    ops = {"deliver_notifications": {"config": {"retry_gave_up": True}}} if retry_gave_up else None
    if not _launch(url, spec, as_of.date() if as_of else None, dry_run=dry_run, ops=ops, in_process=in_process):
        sys.exit(1)


def _launch(
    url: str,
    spec: JobSpec,
    as_of: dt.date | None,
    *,
    dry_run: bool = False,
    ops: dict[str, Any] | None = None,
    in_process: bool = False,
) -> bool:
    from dagster import DagsterInstance, DagsterRunStatus

    from reminder_pipeline.core.instance import cli_workspace, prepare_dagster_home
    from reminder_pipeline.core.run_config import dated_run_config

    dagster_home = prepare_dagster_home(url)
    # A launched run's lines come from its event log (below), as the UI shows them: the run's own
    # console logger, whose stack traces would reach this terminal only when launched from here, is quiet.
    quiet = "INFO" if in_process else "CRITICAL"
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": quiet}}}}
    if spec.dated_op is not None and (as_of is not None or dry_run):
        # The date was checked above, with the operator's override.
        run_config.update(dated_run_config(spec.dated_op, as_of, allow_any_date=as_of is not None, dry_run=dry_run))
    if ops:
        run_config["ops"] = {**run_config.get("ops", {}), **ops}
    shown: list[str] = []  # the run's lines printed while following it
    with DagsterInstance.get() as instance:
        if in_process:
            from dagster import build_reconstructable_job, execute_job

            job = build_reconstructable_job("reminder_pipeline.definitions", "job_named", (spec.name,))
            result = execute_job(job, instance=instance, run_config=run_config)
            run_id, success, status = result.run_id, result.success, "SUCCESS" if result.success else "FAILURE"
        else:
            from reminder_pipeline.core.launch import launch_and_follow

            def echo(line: str) -> None:
                shown.append(line)
                click.echo(line)

            finished = launch_and_follow(
                instance, cli_workspace(dagster_home), spec.name, run_config, {}, echo=echo, debug=_debug()
            )
            run_id, success, status = (
                finished.run_id,
                finished.status == DagsterRunStatus.SUCCESS,
                finished.status.value,
            )
            if finished.status == DagsterRunStatus.CANCELED:
                reason = _cancel_reason(instance, run_id)
                click.echo(f"run {run_id} of {spec.name} CANCELED" + (f": {reason}" if reason else ""))
                return False
        summary = _finish_metadata(instance, run_id)
    outcome = "succeeded" if success else f"FAILED ({status})"
    click.echo(f"{'dry run' if dry_run else 'run'} {run_id} of {spec.name} {outcome}")
    if dry_run:
        click.echo("DRY RUN: nothing was written.")
        _echo_summary(summary)
        return success
    with connect(url) as connection:
        row = execution_log.row_of_run(connection, run_id)
    if row is not None:
        # A failed row's counts were never recorded (only a success writes them): not shown as zeros.
        counts = spec.describe_counts(row.assignments_evaluated, row.reminders_dispatched)
        click.echo(
            f"execution log: {row.status}"
            + (f", {counts}" if row.status == "success" else "")
            + (f", error: {row.error_message}" if row.error_message and not _said(row.error_message, shown) else "")
        )
    if summary:
        click.echo("what the run did (as its Dagster metadata shows):")
        _echo_summary(summary)
    return success


def _said(message: str, lines: list[str]) -> bool:
    return any(message in line for line in lines)


def _cancel_reason(instance: Any, run_id: str) -> str | None:
    """The message a canceled run was given (the run queue's refusal says which rule)."""
    for record in reversed(instance.all_logs(run_id)):
        event = record.dagster_event
        if event is not None and event.event_type_value == "PIPELINE_CANCELED":
            return record.user_message or None
    return None


def _echo_summary(summary: dict[str, Any]) -> None:
    for key, value in summary.items():
        click.echo(f"  {key}: {value}")


def _finish_metadata(instance: Any, run_id: str) -> dict[str, Any]:
    """What the run's last op reported (its output metadata), in order."""
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.is_successful_output and event.step_key == "finish_guarded_run":
            return {key: value.value for key, value in event.step_output_data.metadata.items()}
    return {}


@main.command()
@click.option(
    "--job",
    type=EitherSpelling("name"),
    default=None,
    help="Only this job's rows (assignment_reminders or assignment-reminders).",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@_friendly_errors
def logs(job: str | None, limit: int) -> None:
    """Show recent rows of the execution log (cron_execution_logs)."""
    _print_logs(_database_url(), job, limit)


def _print_logs(url: str, job: str | None, limit: int) -> None:
    import pandas as pd

    from reminder_pipeline.alerting.schedule_watch import open_overdue
    from reminder_pipeline.alerting.service import NO_ALERT_CHANNEL
    from reminder_pipeline.alerting.store import undelivered_alerts
    from reminder_pipeline.core.execution_log import recent_runs

    with connect(url, autocommit=True) as connection:
        require_migrated(connection)
        rows = recent_runs(connection, job, limit)
        alerts = undelivered_alerts(connection, job)
        overdue = open_overdue(connection, job)
    if overdue:
        # Recorded by the watchdog or pg_cron, which need no Dagster process: the daemon may be down.
        click.echo(f"SCHEDULE OVERDUE: {len(overdue)}")
        for item in overdue:
            click.echo(f"  {item.describe()}")
        click.echo("")
    if alerts:
        # Alerts that have not reached anyone yet come first: on-call must see them here.
        click.echo(f"UNDELIVERED OPERATIONS ALERTS: {len(alerts)}")
        for alert in alerts:
            if alert.expired_at:
                state = f"EXPIRED {alert.expired_at:%Y-%m-%d %H:%M}"
            elif alert.delivery_error == NO_ALERT_CHANNEL:
                state = "waiting for a channel"
            else:
                state = "retrying"
            click.echo(
                f"  {alert.created_at:%Y-%m-%d %H:%M%z} {alert.kind} {alert.job_name} {alert.id}"
                f" ({alert.delivery_attempts} attempt(s), {state}): {alert.delivery_error or ''}"
            )
        click.echo("")
    if not rows:
        click.echo("no execution log rows yet")
        return
    frame = pd.DataFrame(rows).drop(columns=["id"])
    frame["started_at"] = pd.to_datetime(frame["started_at"]).dt.strftime("%Y-%m-%d %H:%M:%S%z")
    frame["completed_at"] = pd.to_datetime(frame["completed_at"]).dt.strftime("%H:%M:%S")
    frame = frame.rename(
        columns={
            "assignments_evaluated": "evaluated",
            "reminders_dispatched": "dispatched",
            "consecutive_failure_count": "failures",
            "duration_ms": "ms",
        }
    )
    counts = ["ms", "evaluated", "dispatched", "failures"]
    frame[counts] = frame[counts].astype("Int64")  # whole numbers, also beside a row that has none (skipped)
    click.echo(frame.astype(object).where(frame.notna(), "").to_string(index=False))


@main.command()
@click.option("--assignments", "count", type=click.IntRange(min=1), default=2000, show_default=True)
@_friendly_errors
def demo(count: int) -> None:
    """Migrate, seed (when empty), run the reminder job twice (the second creates nothing), show the log."""
    from reminder_pipeline.definitions import job_spec
    from reminder_pipeline.seed import has_assignments

    url = _database_url(create=True)
    click.echo(f"database: {describe(url)}")
    _migrate(url)
    with connect(url) as connection:
        has_data = has_assignments(connection)
    if not has_data:
        _seed(url, count)
    reminders = job_spec("assignment-reminders")
    ok = _launch(url, reminders, None) and _launch(url, reminders, None)
    _print_logs(url, "assignment_reminders", 5)
    click.echo(
        "\nThe reminders wait in the outbox for notification_delivery: set PUSH_WEBHOOK_URL or NOTIFY_SMTP_HOST"
        " and run `reminder-pipeline run notification-delivery` (docs/delivery.md)."
    )
    if not ok:
        sys.exit(1)


@main.command()
@click.option("--sizes", default="10000,100000,1000000", show_default=True, help="Comma-separated N values.")
@click.option("--naive-sample", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--log-rows", type=click.IntRange(min=100), default=1_000_000, show_default=True)
@click.option(
    "--delivery-notifications",
    type=click.IntRange(min=0),
    default=100_000,
    show_default=True,
    help="Pending notifications the delivery benchmark sends to a loopback gateway (0: skip it).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("docs/benchmarks.md"),
    show_default=True,
    help="Markdown report file, relative to the current directory.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("docs/img/benchmark.png"),
    show_default=True,
    help="PNG plot (needs the `bench` extra: matplotlib).",
)
@_friendly_errors
def bench(
    sizes: str, naive_sample: int, log_rows: int, delivery_notifications: int, output: Path, plot_path: Path
) -> None:
    """Benchmark the reminder job (first run, rerun, memory) against its write floor, the lower bound and the
    naive loop, and the delivery job; print and write the report."""
    from reminder_pipeline_bench.harness import run_benchmark

    try:
        counts = [int(size.replace("_", "")) for size in sizes.split(",") if size.strip()]
    except ValueError:
        raise click.BadParameter(f"--sizes must be comma-separated whole numbers, got {sizes!r}") from None
    if not counts or min(counts) < 1:
        raise click.BadParameter("--sizes needs at least one positive N")
    url = _database_url(create=True)
    text, _, _ = run_benchmark(
        url,
        counts,
        naive_sample,
        log_rows,
        output,
        plot_path,
        echo=lambda line: click.echo(line, err=True),
        delivery_notifications=delivery_notifications,
    )
    click.echo(text)


@main.command("admin-api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback by default.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@_friendly_errors
def admin_api(host: str, port: int) -> None:
    """Serve the admin HTTP API (uvicorn). Needs SUPABASE_JWT_SECRET to verify tokens."""
    import uvicorn

    from reminder_pipeline.admin_api import settings as api_settings
    from reminder_pipeline.admin_api.app import create_app

    if api_settings.load().supabase_jwt_secret is None:
        raise click.ClickException("SUPABASE_JWT_SECRET is not set: the admin API cannot verify tokens")
    url = _database_url()
    _check_ready(url)
    uvicorn.run(create_app(url), host=host, port=port, log_level="info")


@main.command("dagster", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dagster_args", nargs=-1, type=click.UNPROCESSED)
@_friendly_errors
def dagster_cli(dagster_args: tuple[str, ...]) -> None:
    """Run the `dagster` CLI against this project's instance, in its Dagster home (which holds
    `workspace.yaml`), e.g. `schedule stop NAME -w workspace.yaml`."""
    from reminder_pipeline.core.instance import prepare_dagster_home

    url = _database_url()
    _check_ready(url)
    dagster_home = prepare_dagster_home(url)
    sys.exit(subprocess.call([_dagster_executable(), *dagster_args], cwd=dagster_home))


@main.command()
@_friendly_errors
def schedules() -> None:
    """Every schedule with the state the UI shows (RUNNING or STOPPED).

    `dagster schedule list` matches stored states by code-location origin, which differs between
    `dagster dev` and the CLI, so it can show a schedule stopped in the UI as RUNNING; this command
    reads each schedule's state by name from the instance, whoever set it.
    """
    from dagster import DagsterInstance

    from reminder_pipeline.core.instance import prepare_dagster_home
    from reminder_pipeline.definitions import defs

    url = _database_url()
    _check_ready(url)
    prepare_dagster_home(url)
    with DagsterInstance.get() as instance:
        stored = {
            state.instigator_name: state.status.value
            for state in instance.all_instigator_state()
            if state.instigator_type.value == "SCHEDULE"
        }
    for schedule_def in sorted(defs.get_repository_def().schedule_defs, key=lambda each: each.name):
        state = stored.get(schedule_def.name, "DECLARED_IN_CODE")
        if state == "DECLARED_IN_CODE":
            state = f"{schedule_def.default_status.value} (default)"
        click.echo(f"{schedule_def.name}  {state}  {schedule_def.cron_schedule} {schedule_def.execution_timezone}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=3000, show_default=True)
@_friendly_errors
def ui(host: str, port: int) -> None:
    """Start `dagster dev` (webserver and daemon) with run history in PostgreSQL."""
    from reminder_pipeline.core.instance import WORKSPACE_FILE, prepare_dagster_home

    url = _database_url()
    _check_ready(url)
    dagster_home = prepare_dagster_home(url)
    command = [_dagster_executable(), "dev", "-w", WORKSPACE_FILE, "-h", host, "-p", str(port)]
    _warn_if_no_alert_channel()
    sys.exit(_run_until_stopped(command, cwd=dagster_home))


def _warn_if_no_alert_channel() -> None:
    """Once, where the daemon (which raises alerts) starts: not as an alert that retries forever."""
    from reminder_pipeline import definitions  # noqa: F401  (every domain registers its warnings)
    from reminder_pipeline.core.doctor import startup_warnings

    for warning in startup_warnings():
        click.echo(f"warning: {warning}", err=True)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@_friendly_errors
def psql(psql_args: tuple[str, ...]) -> None:
    """psql on the database this command uses (the embedded server or DATABASE_URL): the runbook's
    SQL pastes here. Extra arguments go to psql, e.g. `reminder-pipeline psql -c 'SELECT 1'`. The
    password is handed over in the environment, never on a command line."""
    import warnings

    from reminder_pipeline.core.database import libpq_environment, pg_client

    url = _database_url()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the wheel's import-time notes are not the operator's business
        binary = pg_client("psql")
    connection, secret = libpq_environment(url)
    child = subprocess.Popen([str(binary), "-X", "-d", connection, *psql_args], env={**os.environ, **secret})
    # Ctrl-C belongs to psql (it cancels the query); this process keeps the embedded server up meanwhile.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    sys.exit(code)


SERVE_ROLES = ("code-server", "webserver", "daemon")


@main.command()
@click.argument("role", type=click.Choice(SERVE_ROLES))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="code-server, webserver: address to listen on (image: 0.0.0.0).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: CODE_SERVER_PORT (4000) or 3000.")
@_friendly_errors
def serve(role: str, host: str, port: int | None) -> None:
    """Start one production role as a process of its own (docs/deployment.md).

    code-server: the code location over gRPC (`dagster code-server start`); webserver: the UI and
    GraphQL (`dagster-webserver`); daemon: schedules, sensors and the run queue (`dagster-daemon run`).
    The webserver and the daemon reach the code server at CODE_SERVER_HOST:CODE_SERVER_PORT; all three
    use the packaged instance configuration (run history in PostgreSQL).
    """
    from reminder_pipeline.core.instance import GRPC_WORKSPACE_FILE, prepare_dagster_home
    from reminder_pipeline.core.launch import LOCATION_NAME

    url = _database_url()
    _check_ready(url)
    dagster_home = prepare_dagster_home(url)
    current = settings.load()
    if role == "code-server":
        command = [
            _dagster_executable(), "code-server", "start", "-h", host, "-p", str(port or current.code_server_port),
            "-m", "reminder_pipeline.definitions", "--location-name", LOCATION_NAME,
        ]  # fmt: skip
    elif role == "webserver":
        command = [
            _dagster_executable("dagster-webserver"), "-h", host, "-p", str(port or 3000), "-w", GRPC_WORKSPACE_FILE,
        ]  # fmt: skip
    else:
        command = [_dagster_executable("dagster-daemon"), "run", "-w", GRPC_WORKSPACE_FILE]
    click.echo(f"{role}: Dagster home {dagster_home}, database {describe(url)}", err=True)
    if role == "daemon":
        _warn_if_no_alert_channel()
    sys.exit(_run_until_stopped(command, cwd=dagster_home))


@main.command()
@click.option(
    "--no-alert",
    is_flag=True,
    help="Send no operations alert (it still pings the monitor and records overdue runs in the database).",
)
@_friendly_errors
def watchdog(no_alert: bool) -> None:
    """The check that needs no Dagster process (cron / systemd timer, every 5 minutes).

    Reports the dagster-daemon down when its heartbeats stop, and every scheduled run that has no
    success by its expected time plus grace (recorded in the database); pings HEARTBEAT_URL_DAGSTER_DAEMON
    (success, or /fail); alerts operations once per incident. Exit code 1 when anything is wrong.
    """
    from dagster import DagsterInstance

    from reminder_pipeline.alerting.watchdog import watch
    from reminder_pipeline.core.instance import prepare_dagster_home
    from reminder_pipeline.definitions import JOB_SPECS

    url = _database_url()
    _check_ready(url)
    prepare_dagster_home(url)
    with DagsterInstance.get() as instance:
        report = watch(url, instance, JOB_SPECS, alert=not no_alert)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        sys.exit(1)


@main.command()
@_friendly_errors
def doctor() -> None:
    """Which settings each role sees (names and where they come from, never values), and what each
    job is missing. Exit code 1 when a job cannot do its work as configured."""
    from reminder_pipeline.admin_api import settings as _api_settings  # noqa: F401  (its settings, listed)
    from reminder_pipeline.core.doctor import diagnose
    from reminder_pipeline.definitions import JOB_SPECS

    report = diagnose(JOB_SPECS)
    for line in report.lines:
        click.echo(line)
    if report.problems:
        sys.exit(1)


def _dagster_executable(name: str = "dagster") -> str:
    """A Dagster command installed beside this interpreter (same virtualenv)."""
    return os.path.join(os.path.dirname(sys.executable), name)


def _run_until_stopped(command: list[str], cwd: Path) -> int:
    """Run `command`; SIGINT or SIGTERM to this process becomes SIGINT to it, which `dagster dev`
    answers by stopping its webserver and daemon cleanly. The embedded database stops after it."""
    child = subprocess.Popen(command, cwd=cwd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def forward(signum: int, frame: object) -> None:
        child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        return child.wait()
    finally:
        if child.poll() is None:
            child.kill()


if __name__ == "__main__":
    main()
