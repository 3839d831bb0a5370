"""Run configuration shared by the date-driven jobs."""

import datetime as dt
from zoneinfo import ZoneInfo

from dagster import Config
from pydantic import Field, field_validator

from reminder_pipeline.core.settings import LOCAL_TIMEZONE


def today_local() -> dt.date:
    """Today in Europe/Oslo: every reminder date is an Oslo date."""
    return dt.datetime.now(ZoneInfo(LOCAL_TIMEZONE)).date()


def local_date_of(moment: dt.datetime) -> dt.date:
    return moment.astimezone(ZoneInfo(LOCAL_TIMEZONE)).date()


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
                raise ValueError(f"as_of must be a date as YYYY-MM-DD, got {value!r}") from None
        return value

    def as_of_date(self) -> dt.date:
        return dt.date.fromisoformat(self.as_of) if self.as_of else today_local()
