"""The Dagster home every role uses: the shipped instance file is refreshed on each start (an
upgrade's settings apply), an operator's own is kept, and DAGSTER_PG_URL from the env file reaches
Dagster, which reads only the process environment."""

from pathlib import Path

import pytest

from reminder_pipeline.core import packaged
from reminder_pipeline.core.instance import prepare_dagster_home

pytestmark = pytest.mark.database


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    return dagster_home


def test_an_instance_file_we_wrote_is_refreshed_and_an_operators_own_is_kept(database_url: str, home: Path) -> None:
    shipped = packaged.read_text("dagster.yaml")
    older = shipped.splitlines()[0] + "\nrun_coordinator: {}\n"  # as an earlier version wrote it
    (home / "dagster.yaml").write_text(older)
    prepare_dagster_home(database_url)
    assert (home / "dagster.yaml").read_text() == shipped

    own = "# my instance\nstorage:\n  postgres:\n    postgres_url:\n      env: DAGSTER_PG_URL\n"
    (home / "dagster.yaml").write_text(own)
    prepare_dagster_home(database_url)
    assert (home / "dagster.yaml").read_text() == own


def test_dagster_pg_url_from_the_env_file_is_exported_for_dagster(
    database_url: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    env_file = tmp_path / "pipeline.env"
    env_file.write_text("DAGSTER_PG_URL=postgresql://runs@127.0.0.1:5999/run_storage\n")
    monkeypatch.setenv("REMINDER_PIPELINE_ENV_FILE", str(env_file))
    prepare_dagster_home(database_url)
    assert os.environ["DAGSTER_PG_URL"] == "postgresql://runs@127.0.0.1:5999/run_storage"
