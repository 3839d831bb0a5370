"""The wheel is the product: build it, install it (not editable, pinned by constraints.txt) into a
fresh virtualenv, and from a directory far from the checkout run what a deployment runs, against a
database with nothing in it."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reminder_pipeline.core.database import connect
from reminder_pipeline_tests import REPOSITORY
from reminder_pipeline_tests.http_peers import HttpPeer
from reminder_pipeline_tests.ui_process import code_location_errors, running_ui, ui_environment

pytestmark = pytest.mark.database


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(build), str(REPOSITORY)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = build.glob("reminder_pipeline-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `reminder-pipeline` executable of a fresh virtualenv holding the wheel and its pinned dependencies."""
    environment = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "-c", str(REPOSITORY / "constraints.txt"), str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return environment / "bin" / "reminder-pipeline"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory with no checkout in it or above it."""
    directory = tmp_path / "deployment"
    directory.mkdir()
    assert not any((parent / "pyproject.toml").exists() for parent in [directory, *directory.parents])
    return directory


@pytest.fixture
def environment(empty_database_url: str, server_url: str, elsewhere: Path) -> Iterator[dict[str, str]]:
    with ui_environment(empty_database_url, server_url, elsewhere / "home") as env:
        yield env


def test_the_wheel_carries_the_migrations_and_the_dagster_settings(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = sorted(path.name for path in (REPOSITORY / "migrations").glob("*.sql"))
    assert migrations
    assert {f"reminder_pipeline/data/migrations/{name}" for name in migrations} <= names
    assert {"reminder_pipeline/data/dagster.yaml", "reminder_pipeline/data/workspace.yaml"} <= names
    assert {"reminder_pipeline/data/templates/nb.toml", "reminder_pipeline/data/templates/en.toml"} <= names
    assert not any(name.startswith("reminder_pipeline_tests/") for name in names)
    # The benchmark ships beside the runtime package (for `reminder-pipeline bench`), not inside it.
    assert {"reminder_pipeline_bench/harness.py", "reminder_pipeline_bench/yardsticks.py"} <= names
    assert not any(name.startswith("reminder_pipeline/bench") for name in names)


def test_migrate_seed_run_and_ui_from_the_installed_wheel(
    installed: Path, environment: dict[str, str], elsewhere: Path, empty_database_url: str
) -> None:
    def cli(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(installed), *arguments], env=environment, cwd=elsewhere, capture_output=True, text=True, timeout=300
        )

    migrations = len(list((REPOSITORY / "migrations").glob("*.sql")))
    done = cli("migrate")
    assert done.returncode == 0 and f"applied {migrations} migration(s)" in done.stdout, done.stdout + done.stderr

    done = cli("seed", "--assignments", "200")
    assert done.returncode == 0 and "seeded 200 assignments" in done.stdout, done.stdout + done.stderr

    done = cli("run", "assignment-reminders", "--as-of", dt.date.today().isoformat())
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"execution log: success, [1-9]\d* assignments evaluated, [1-9]\d* reminders", done.stdout), (
        done.stdout
    )
    with connect(empty_database_url) as connection:
        status = connection.execute(sa.text("SELECT status FROM public.cron_execution_logs")).scalars().all()
    assert status == ["success"]

    with HttpPeer(keep_alive=True) as gateway:  # the reminders reach people, in the wheel's own templates
        delivery = {**environment, "PUSH_WEBHOOK_URL": gateway.url, "NOTIFICATION_QUIET_HOURS": "none"}
        done = subprocess.run(
            [str(installed), "run", "notification-delivery"],
            env=delivery,
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert gateway.requests and all(r.json()["body"].startswith("Hei") for r in gateway.requests)
        assert re.search(r"messages_delivered: [1-9]\d*", done.stdout), done.stdout

    with running_ui([str(installed)], environment, elsewhere, elsewhere / "ui.log") as (base, _port):
        assert code_location_errors(base) == []
