"""Run configuration shared by the date-driven jobs."""

import datetime as dt
from zoneinfo import ZoneInfo

from dagster import Config, OpExecutionContext, RunRequest
from pydantic import Field, field_validator

from reminder_pipeline.core.settings import LOCAL_TIMEZONE


def today_local() -> dt.date:
    """Today in Europe/Oslo: every reminder date is an Oslo date."""
    return dt.datetime.now(ZoneInfo(LOCAL_TIMEZONE)).date()


def local_date_of(moment: dt.datetime) -> dt.date:
    return moment.astimezone(ZoneInfo(LOCAL_TIMEZONE)).date()


#: Every run of a dated job carries the date it acts for, whoever launched it.
AS_OF_TAG = "reminder_pipeline/as_of"


def tag_as_of(context: OpExecutionContext, as_of: dt.date) -> None:
    context.instance.add_run_tags(context.run_id, {AS_OF_TAG: as_of.isoformat()})


def dated_run_request(job_name: str, config_op: str, scheduled_time: dt.datetime) -> RunRequest:
    """A daily tick's run acts for the tick's own Oslo date, even when evaluated late; the run key
    makes a repeated evaluation of the same tick launch nothing twice."""
    as_of = local_date_of(scheduled_time).isoformat()
    return RunRequest(
        run_key=f"{job_name}:{as_of}",
        run_config={"ops": {config_op: {"config": {"as_of": as_of}}}},
        tags={AS_OF_TAG: as_of},
    )


class AsOfConfig(Config):
    """A run can be told the date it acts for, to re-run or simulate a day."""

    as_of: str | None = Field(
        default=None, description="Date (YYYY-MM-DD, Europe/Oslo) the run acts for; default: today."
    )

    @field_validator("as_of")
    @classmethod
    def _valid_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError("as_of must be a date as YYYY-MM-DD") from None
        return value

    def as_of_date(self) -> dt.date:
        return dt.date.fromisoformat(self.as_of) if self.as_of else today_local()
