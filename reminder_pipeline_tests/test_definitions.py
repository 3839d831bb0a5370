from dagster import Definitions, in_process_executor

from reminder_pipeline.core import execution_log
from reminder_pipeline.definitions import defs


def test_the_code_location_loads() -> None:
    Definitions.validate_loadable(defs)


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
        assert name in execution_log.JOB_LOCK_KEYS
