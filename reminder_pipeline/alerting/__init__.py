"""Operations alerting: consecutive failures and recovery, long runs, missed runs."""
