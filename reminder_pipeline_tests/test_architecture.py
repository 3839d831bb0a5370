"""Imports point one way (docs/architecture.md): entry points → domains → core."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

import reminder_pipeline

PACKAGE = Path(reminder_pipeline.__file__).parent
DOMAINS = {"assignments", "certifications", "activities", "alerting", "delivery"}
ENTRY_POINTS = {"definitions", "cli", "admin_api", "seed"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return {name.split(".")[1] for name in found if name.startswith("reminder_pipeline.") and name.count(".") >= 1}


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("core"), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_the_core_imports_no_domain_and_no_entry_point(path: Path) -> None:
    assert _imported_modules(path) - {"core"} == set()


@pytest.mark.parametrize(
    "path",
    [path for domain in sorted(DOMAINS) for path in _modules(domain)],
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_a_domain_imports_no_entry_point(path: Path) -> None:
    assert _imported_modules(path) & ENTRY_POINTS == set()


def test_the_runtime_package_never_imports_the_benchmark_except_for_its_own_command() -> None:
    """The benchmark (`benchmarks/reminder_pipeline_bench`) is a tool beside the product: only the
    CLI's `bench` command loads it, lazily."""
    importers = [
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if "reminder_pipeline_bench" in path.read_text()
    ]
    assert importers == ["cli.py"]
    cli_source = (PACKAGE / "cli.py").read_text()
    assert "\n    from reminder_pipeline_bench.harness import run_benchmark" in cli_source  # inside the command


def test_the_outbox_is_the_only_writer_of_notifications() -> None:
    """Every notification is written by core/outbox.py, its payload built from its kind's declaration."""
    writers = [
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if "INSERT INTO public.notifications" in " ".join(path.read_text().split())
    ]
    assert writers == ["core/outbox.py"]


def test_the_layers_were_found() -> None:
    assert len(_modules("core")) >= 10 and all(_modules(domain) for domain in DOMAINS)


THROWAWAY_NOTIFICATIONS = """
from reminder_pipeline.core.notification_kinds import NotificationKind, Variable, declare

TRAINING_INVITATION = declare(
    NotificationKind(
        "training_invitation",
        ("mentor",),
        {"starts_on": Variable("starts_on", "date", "min")},
        references={"training_id": "uuid"},
        ended_when="EXISTS (SELECT 1 FROM public.peer_mentors AS m"
        " WHERE m.id = n.recipient_id AND m.status = 'paused')",
        ended_reason="the mentor is paused",
    )
)
"""

THROWAWAY_JOBS = """
import pandas as pd
import sqlalchemy as sa
from dagster import op

from example_domain.notifications import TRAINING_INVITATION
from reminder_pipeline.core import outbox
from reminder_pipeline.core.guarded_run import JobOutcome, RunTicket, begin_guarded_run, finish_guarded_run, guarded_job
from reminder_pipeline.core.jobs import JobSpec
from reminder_pipeline.core.resources import PipelineDatabase

TRAINING_INVITATIONS = JobSpec(name="training_invitations", description="Invite mentors.", lock_key=7_204_050)


@op
def invite(ticket: RunTicket, database: PipelineDatabase) -> JobOutcome:
    with database.transaction() as connection:
        mentors = [str(m) for m in connection.execute(sa.text("SELECT id FROM public.peer_mentors")).scalars()]
        frame = pd.DataFrame({"recipient_id": mentors}).assign(
            source_id=lambda f: f["recipient_id"],
            kind=TRAINING_INVITATION.name, recipient_role="mentor", assignment_id=None,
            reference_date="2027-01-15", step=1, starts_on="2027-01-15",
            training_id="5f0c2b1e-0000-4000-8000-000000000001",
        )
        created = outbox.dispatch(connection, frame).created
    return JobOutcome(evaluated=len(mentors), created=created)


@guarded_job(TRAINING_INVITATIONS)
def training_invitations() -> None:
    finish_guarded_run(invite(begin_guarded_run()))
"""

THROWAWAY_RUN = """
import sys

sys.path.insert(0, sys.argv[1])
database_url, gateway_url = sys.argv[2], sys.argv[3]

from dagster import Definitions, mem_io_manager

import example_domain.jobs
from reminder_pipeline.alerting.resources import OpsAlerting
from reminder_pipeline.core.guarded_run import JobRunGuard, guarded_definitions
from reminder_pipeline.core.resources import PipelineDatabase
from reminder_pipeline.definitions import build_defs
from reminder_pipeline.delivery.jobs import NotificationDelivery

database = PipelineDatabase(database_url=database_url)
alerting = OpsAlerting(database=database)
resources = {"database": database, "ops_alerting": alerting, "io_manager": mem_io_manager,
             "run_guard": JobRunGuard(database=database, alerts=alerting)}
domain = Definitions.merge(guarded_definitions(example_domain.jobs), Definitions(resources=resources))
assert domain.resolve_job_def("training_invitations").execute_in_process().success
delivery = NotificationDelivery(push_webhook_url=gateway_url)
defs = build_defs(database_url, alerting, None, delivery)
assert defs.resolve_job_def("notification_delivery").execute_in_process().success
"""


@pytest.mark.database
def test_a_throwaway_domain_built_from_the_docs_recipe_runs_end_to_end(
    database_url: str, db: sa.Connection, tmp_path: Path
) -> None:
    """docs/architecture.md's "how to add a job" and "how to add a notification kind", followed in a
    temporary package: a job declared in its jobs module with its own kind creates notifications
    that the unchanged delivery job claims, composes and sends. In its own process, so the kind
    does not stay declared in this one."""
    from reminder_pipeline_tests import factories
    from reminder_pipeline_tests.http_peers import HttpPeer

    domain = tmp_path / "example_domain"
    domain.mkdir()
    (domain / "__init__.py").write_text("from example_domain import notifications  # noqa: F401\n")
    (domain / "notifications.py").write_text(THROWAWAY_NOTIFICATIONS)
    (domain / "jobs.py").write_text(THROWAWAY_JOBS)
    (tmp_path / "run_example.py").write_text(THROWAWAY_RUN)
    mentor = factories.mentor(db, factories.coordinator(db))
    env = {**os.environ, "NOTIFICATION_QUIET_HOURS": "none"}
    with HttpPeer() as gateway:
        done = subprocess.run(
            [sys.executable, str(tmp_path / "run_example.py"), str(tmp_path), database_url, gateway.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        (request,) = gateway.requests
    message = request.json()
    assert (message["recipient_id"], message["kinds"]) == (str(mentor), ["training_invitation"])
    assert "1 nytt varsel" in message["body"]  # no template yet: the general text
    row = db.execute(sa.text("SELECT status, payload FROM public.notifications")).one()
    training = "5f0c2b1e-0000-4000-8000-000000000001"
    assert (row.status, row.payload) == ("delivered", {"starts_on": "2027-01-15", "training_id": training})
