import subprocess
import sys
from pathlib import Path

from dagster import Definitions, in_process_executor

from reminder_pipeline.core.jobs import JobSpec
from reminder_pipeline.definitions import JOB_SPECS, defs


def test_the_code_location_loads() -> None:
    Definitions.validate_loadable(defs)


def test_dagster_loads_the_module_the_workspace_names(tmp_path: Path) -> None:
    """The way `dagster dev` loads it: by module, which must hold exactly one `Definitions`."""
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "reminder_pipeline.definitions"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_jobs_and_schedules_snapshot() -> None:
    """Catches an accidental rename, removal or reschedule in review."""
    jobs = sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__"))
    schedules = sorted(
        (s.name, s.job_name, s.cron_schedule, s.execution_timezone) for s in defs.get_repository_def().schedule_defs
    )
    assert jobs == ["assignment_reminders", "certification_reminders", "dynamics_sync"]
    assert schedules == [
        ("assignment_reminders_daily", "assignment_reminders", "0 7 * * *", "Europe/Oslo"),
        ("certification_reminders_nightly", "certification_reminders", "0 2 * * *", "Europe/Oslo"),
        ("dynamics_sync_every_5_minutes", "dynamics_sync", "*/5 * * * *", "Europe/Oslo"),
    ]


def test_guarded_jobs_run_in_one_process_so_the_lock_lives_across_ops() -> None:
    for name in ("assignment_reminders", "certification_reminders", "dynamics_sync"):
        job = defs.get_job_def(name)
        assert job.executor_def is in_process_executor
        assert job.tags["reminder_pipeline/serial"] == name
        assert JobSpec.of(job) in JOB_SPECS


def test_every_job_declares_a_distinct_lock_key_and_cli_name() -> None:
    assert [(spec.name, spec.lock_key, spec.cli_name, spec.missed_run_hours) for spec in JOB_SPECS] == [
        ("assignment_reminders", 7_204_001, "assignment-reminders", 26),
        ("certification_reminders", 7_204_002, "certification-reminders", 26),
        ("dynamics_sync", 7_204_003, "dynamics-sync", 1),
    ]
