"""Operations alerting: consecutive failures and recovery, long runs, missed runs."""

from reminder_pipeline.alerting import settings  # noqa: F401  (registers this domain's settings)
