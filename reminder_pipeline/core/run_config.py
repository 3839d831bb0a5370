"""Run configuration shared by the date-driven jobs."""

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from dagster import Config, OpExecutionContext, RunRequest
from pydantic import Field, field_validator

from reminder_pipeline.core.errors import InputRejected
from reminder_pipeline.core.settings import LOCAL_TIMEZONE, MAX_DAYS_AHEAD, MAX_DAYS_BACK


def today_local() -> dt.date:
    """Today in Europe/Oslo: every reminder date is an Oslo date."""
    return dt.datetime.now(ZoneInfo(LOCAL_TIMEZONE)).date()


def local_date_of(moment: dt.datetime) -> dt.date:
    return moment.astimezone(ZoneInfo(LOCAL_TIMEZONE)).date()


#: Every run of a dated job carries the date it acts for, whoever launched it.
AS_OF_TAG = "reminder_pipeline/as_of"
#: A run that computed what it would do and wrote nothing.
DRY_RUN_TAG = "reminder_pipeline/dry_run"


def date_outside_window(as_of: dt.date, today: dt.date | None = None) -> str | None:
    """Why `as_of` is outside the sane window, or None; the message names the rule, not the date."""
    today = today or today_local()
    if as_of > today + dt.timedelta(days=MAX_DAYS_AHEAD):
        return f"as_of is more than {MAX_DAYS_AHEAD} day after today (Europe/Oslo)"
    if as_of < today - dt.timedelta(days=MAX_DAYS_BACK):
        return f"as_of is more than {MAX_DAYS_BACK} days before today (Europe/Oslo)"
    return None


#: What a refusal of an out-of-window date adds, in run config terms.
OVERRIDE_HINT = "set allow_any_date: true if that is really meant"


def as_of_problem(as_of: object, allow_any_date: bool = False, override_hint: str = OVERRIDE_HINT) -> str | None:
    """The one check of a run's date, wherever it arrives (the CLI, launch, queue, the op's own
    config): why it is refused, or None. Not a YYYY-MM-DD date, or outside the window without the
    override (named as `override_hint`: the CLI says its flag); the message names the rule, never
    the value."""
    if as_of is None:
        return None
    try:
        date = dt.date.fromisoformat(str(as_of))
    except ValueError:
        return "as_of must be a date as YYYY-MM-DD"
    problem = None if allow_any_date else date_outside_window(date)
    return f"{problem}: {override_hint}" if problem else None


def launch_problem(run_config: Mapping[str, Any] | None) -> str | None:
    """Why a run's config must be refused before the run starts, or None (see :func:`as_of_problem`)."""
    ops = (run_config or {}).get("ops") or {}
    for entry in ops.values():
        config = (entry or {}).get("config") or {}
        if isinstance(config, Mapping):
            problem = as_of_problem(config.get("as_of"), bool(config.get("allow_any_date")))
            if problem:
                return problem
    return None


def dated_run_config(
    dated_op: str, as_of: dt.date | None = None, *, allow_any_date: bool = False, dry_run: bool = False, **extra: Any
) -> dict[str, Any]:
    """The run config of a dated job: the one place its shape is written (schedules, CLI, tests, bench)."""
    config: dict[str, Any] = dict(extra)
    if as_of is not None:
        config["as_of"] = as_of.isoformat()
    if allow_any_date:
        config["allow_any_date"] = True
    if dry_run:
        config["dry_run"] = True
    return {"ops": {dated_op: {"config": config}}}


def is_dry_run(run_config: Mapping[str, Any] | None) -> bool:
    """`dry_run: true` in any op's config makes the whole run a dry run."""
    ops = (run_config or {}).get("ops") or {}
    return any(bool(((entry or {}).get("config") or {}).get("dry_run")) for entry in ops.values())


def tag_as_of(context: OpExecutionContext, as_of: dt.date) -> None:
    context.instance.add_run_tags(context.run_id, {AS_OF_TAG: as_of.isoformat()})


def dated_run_request(job_name: str, config_op: str, scheduled_time: dt.datetime) -> RunRequest:
    """A daily tick's run acts for the tick's own Oslo date, even when evaluated late; the run key
    makes a repeated evaluation of the same tick launch nothing twice."""
    as_of = local_date_of(scheduled_time)
    return RunRequest(
        run_key=f"{job_name}:{as_of.isoformat()}",
        run_config=dated_run_config(config_op, as_of),
        tags={AS_OF_TAG: as_of.isoformat()},
    )


class AsOfConfig(Config):
    """A run can be told the date it acts for, to re-run or simulate a day."""

    as_of: str | None = Field(
        default=None, description="Date (YYYY-MM-DD, Europe/Oslo) the run acts for; default: today."
    )
    dry_run: bool = Field(
        default=False, description="Compute and report what the run would create, and write nothing at all."
    )
    allow_any_date: bool = Field(
        default=False,
        description=f"Allow as_of more than {MAX_DAYS_AHEAD} day ahead or {MAX_DAYS_BACK} days back (real reminders).",
    )

    @field_validator("as_of")
    @classmethod
    def _valid_date(cls, value: str | None) -> str | None:
        if as_of_problem(value, allow_any_date=True):
            raise ValueError("as_of must be a date as YYYY-MM-DD")
        return value

    def as_of_date(self) -> dt.date:
        """The date the run acts for; outside the sane window only with `allow_any_date`."""
        if not self.as_of:
            return today_local()
        problem = as_of_problem(self.as_of, self.allow_any_date)
        if problem:
            raise InputRejected(problem)
        return dt.date.fromisoformat(self.as_of)
