"""The docs are executed: every SQL block runs on a migrated database, every command line parses,
every relative link resolves."""

import datetime as dt
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import sqlalchemy as sa

from reminder_pipeline.assignments.jobs import ASSIGNMENT_REMINDERS
from reminder_pipeline.cli import main
from reminder_pipeline.core import execution_log
from reminder_pipeline.core.database import connect
from reminder_pipeline_tests import REPOSITORY as PROJECT_ROOT
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.pg_tools import psql

DOCS = [*sorted((PROJECT_ROOT / "docs").glob("*.md")), PROJECT_ROOT / "README.md"]
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)
#: psql's quoted variable: `\set job_name 'assignment_reminders'` makes `:'job_name'` a literal.
PLACEHOLDER = re.compile(r":'([a-z_]+)'")
BARE_PLACEHOLDER = re.compile(r"(?<![:\w']):([a-z_]+)\b")


def _blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for lang, body in FENCE.findall(path.read_text()):
            if lang == language:
                found.append((f"{path.name}:{body.strip().splitlines()[0][:40]}", body))
    return found


SQL_BLOCKS = _blocks("sql")


def test_the_runbook_has_its_sections_in_order() -> None:
    headings = re.findall(r"^## (.+)$", (PROJECT_ROOT / "docs" / "runbook.md").read_text(), re.M)
    assert headings[:10] == [
        "Overview",
        "Architecture Diagram",
        "Cron Schedule Registration",
        "Execution Log Schema",
        "Advisory Lock",
        "Alerting",
        "Manual Operations",
        "Troubleshooting",
        "Activity Registration Hook",
        "Certification saga",
    ]
    assert len(SQL_BLOCKS) >= 4


@pytest.fixture
def seeded(db: sa.Connection) -> dict:
    coordinator = factories.coordinator(db)
    mentor = factories.mentor(db, coordinator)
    assignment = factories.assignment(
        db, mentor, assigned_on=dt.date(2026, 1, 1), last_contact_date=dt.date(2026, 11, 1)
    )
    db.execute(
        sa.text("INSERT INTO public.activities (assignment_id, mentor_id, activity_date) VALUES (:a, :m, :d)"),
        {"a": assignment, "m": mentor, "d": dt.date(2026, 11, 1)},
    )
    execution_log.record_skipped(db, "assignment_reminders")
    event = db.execute(
        sa.text(
            "INSERT INTO public.dynamics_sync_events (mentor_id, action, payload, dedupe_key)"
            " VALUES (:m, 'pause', '{}', 'doc') RETURNING id"
        ),
        {"m": mentor},
    ).scalar_one()
    return {
        "assignment_id": assignment,
        "mentor_id": mentor,
        "job_name": "assignment_reminders",
        "event_id": event,
        "run_id": "00000000-0000-0000-0000-000000000000",
    }


@pytest.mark.database
@pytest.mark.parametrize(("where", "sql"), SQL_BLOCKS, ids=[where for where, _ in SQL_BLOCKS])
def test_every_sql_block_runs_in_psql_as_the_runbook_says(
    database_url: str, seeded: dict, where: str, sql: str
) -> None:
    """Pasted into psql after `\\set` for each placeholder, inside a transaction rolled back."""
    assert not BARE_PLACEHOLDER.findall(sql), f"{where}: write placeholders as :'name' (psql)"
    names = sorted(set(PLACEHOLDER.findall(sql)))
    assert set(names) <= set(seeded), f"{where}: unknown placeholders {set(names) - set(seeded)}"
    settings = "".join(f"\\set {name} '{seeded[name]}'\n" for name in names)
    done = psql(database_url, f"{settings}BEGIN;\n{sql}\nROLLBACK;\n")
    assert done.returncode == 0, f"{where}: {done.stderr}"
    if "assignment_id" in names or "job_name" in names or "dynamics_sync_events" in sql:
        assert done.stdout.strip(), f"{where}: returned nothing for the seeded data"


@pytest.mark.database
def test_the_release_snippet_really_frees_a_stuck_lock(db: sa.Connection, database_url: str) -> None:
    (release,) = [sql for _, sql in SQL_BLOCKS if "pg_terminate_backend" in sql and "pg_locks" in sql]
    with connect(database_url, autocommit=True) as hung_run:
        assert execution_log.try_acquire_job_lock(hung_run, ASSIGNMENT_REMINDERS.lock_key)
        (row,) = db.execute(sa.text(release)).all()
        assert row.terminated
    deadline = time.monotonic() + 10
    while not execution_log.try_acquire_job_lock(db, ASSIGNMENT_REMINDERS.lock_key):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    execution_log.release_job_lock(db, ASSIGNMENT_REMINDERS.lock_key)


@pytest.mark.database
def test_the_end_a_runs_sessions_snippet_ends_exactly_that_run(db: sa.Connection, database_url: str) -> None:
    (snippet,) = [sql for _, sql in SQL_BLOCKS if "pg_terminate_backend" in sql and "application_name" in sql]
    run_id = "5f0c3a52-0000-4000-8000-000000000001"
    engine = sa.create_engine(
        str(sa.engine.make_url(database_url).set(drivername="postgresql+psycopg2")),
        connect_args={"application_name": f"rp:{run_id}"},
    )
    try:
        with engine.connect() as hung, connect(database_url) as other:
            hung.execute(sa.text("SELECT 1"))
            done = psql(database_url, f"\\set run_id '{run_id}'\n{snippet}")
            assert done.returncode == 0, done.stderr
            assert done.stdout.split("|")[-1].strip() == "t"  # terminated
            with pytest.raises(sa.exc.OperationalError):
                hung.execute(sa.text("SELECT 1"))
            assert other.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def _command_lines(program: str) -> list[str]:
    lines = set()
    for path in DOCS:
        text = path.read_text()
        for _, body in FENCE.findall(text):
            lines.update(line.strip() for line in body.splitlines())
        lines.update(re.findall(r"`([^`\n]+)`", text))
    pattern = re.compile(rf"^(?:\.venv/bin/)?{program} ")
    return sorted(line for line in lines if pattern.match(line) and "…" not in line)


REMINDER_PIPELINE_LINES = _command_lines("reminder-pipeline")
DAGSTER_LINES = _command_lines("dagster")


@pytest.mark.parametrize("line", REMINDER_PIPELINE_LINES)
def test_every_documented_reminder_pipeline_command_parses(line: str) -> None:
    words = shlex.split(line.replace("[", "").replace("]", ""))[1:]  # "[--port 3000]" documents an option
    group_context = main.make_context("reminder-pipeline", words)
    name, command, rest = main.resolve_command(group_context, group_context.protected_args + group_context.args)
    assert command is not None, line
    if isinstance(command, click.Command):
        command.make_context(name, rest, parent=group_context)  # raises on an unknown option or bad value


@pytest.mark.parametrize("line", DAGSTER_LINES)
def test_every_documented_dagster_command_exists(line: str) -> None:
    words = [w for w in shlex.split(line)[1:] if not w.startswith("-")]
    subcommand = words[:2] if words and words[0] in {"schedule", "sensor", "job", "run", "instance"} else words[:1]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), *subcommand, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-500:]


def test_documented_commands_were_found() -> None:
    assert any("schedule stop" in line for line in REMINDER_PIPELINE_LINES)
    assert any(line.startswith("dagster schedule stop") for line in DAGSTER_LINES)


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_relative_links_resolve(path: Path) -> None:
    for target in re.findall(r"\]\(([^)#]+)\)", path.read_text()):
        if "://" not in target:
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_the_example_env_file_names_every_setting_of_every_group() -> None:
    """The env file operators start from lists what core and each domain read (doctor's list)."""
    import reminder_pipeline.admin_api.settings  # noqa: F401  (the entry point's group)
    from reminder_pipeline.core import settings

    groups = [settings.Settings, *settings.registered_groups()]
    names = {name.upper() for group in groups for name in group.model_fields}
    example = (PROJECT_ROOT / "deploy" / "reminder-pipeline.env.example").read_text()
    assert len(groups) >= 5 and not sorted(name for name in names if name not in example)
