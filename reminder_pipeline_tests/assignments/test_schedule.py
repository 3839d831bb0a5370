import datetime as dt
from zoneinfo import ZoneInfo

from dagster import DefaultScheduleStatus, build_schedule_context

from reminder_pipeline.definitions import defs

assignment_reminders_daily = defs.resolve_schedule_def("assignment_reminders_daily")


def test_the_daily_schedule_is_pinned_to_seven_in_oslo_and_running_by_default() -> None:
    schedule = defs.resolve_schedule_def("assignment_reminders_daily")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "0 7 * * *",
        "Europe/Oslo",
        "assignment_reminders",
    )
    assert schedule.default_status == DefaultScheduleStatus.RUNNING


def test_a_tick_acts_for_its_own_oslo_date_even_when_evaluated_late() -> None:
    # 07:00 in Oslo on 1 December is 06:00 UTC; the run must act for 1 December.
    tick = dt.datetime(2026, 12, 1, 7, 0, tzinfo=ZoneInfo("Europe/Oslo"))
    request = assignment_reminders_daily(build_schedule_context(scheduled_execution_time=tick))
    assert request.run_config == {"ops": {"decide_reminders_op": {"config": {"as_of": "2026-12-01"}}}}
    assert request.run_key == "assignment_reminders:2026-12-01"


def test_the_run_config_the_schedule_builds_is_valid_for_the_job() -> None:
    tick = dt.datetime(2026, 6, 30, 7, 0, tzinfo=ZoneInfo("Europe/Oslo"))
    request = assignment_reminders_daily(build_schedule_context(scheduled_execution_time=tick))
    job = defs.get_job_def("assignment_reminders")
    assert job.run_config_schema.config_type is not None
    from dagster._config import validate_config

    assert validate_config(job.run_config_schema.config_type, request.run_config).success
