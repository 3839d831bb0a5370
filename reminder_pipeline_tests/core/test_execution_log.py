import time
import uuid

import pydantic
import pytest
import sqlalchemy as sa

from reminder_pipeline.core import execution_log as log
from reminder_pipeline.core.database import connect
from reminder_pipeline_tests import factories

pytestmark = pytest.mark.database
JOB = "assignment_reminders"
LOCK_KEY = 7_204_001


def _fail(db: sa.Connection, message: str = "boom", streak: int = 1) -> log.FinishedRun:
    finished = log.finish_failure(db, log.start_run(db, JOB), message, consecutive_failures=streak)
    assert finished is not None
    return finished


def _succeed(db: sa.Connection) -> log.FinishedRun:
    finished = log.finish_success(db, log.start_run(db, JOB), assignments_evaluated=5, reminders_dispatched=2)
    assert finished is not None
    return finished


def test_a_successful_run_is_inserted_running_then_updated_by_primary_key(db: sa.Connection) -> None:
    row_id = log.start_run(db, JOB, "dagster-run-1")
    (running,) = factories.log_rows(db)
    assert (running.status, running.completed_at, running.duration_ms) == ("running", None, None)

    log.finish_success(db, row_id, assignments_evaluated=7, reminders_dispatched=3, details={"due": 4})
    (done,) = factories.log_rows(db)
    assert done.status == "success"
    assert done.completed_at >= done.started_at
    assert done.duration_ms >= 0
    assert (done.assignments_evaluated, done.reminders_dispatched, done.consecutive_failure_count) == (
        7,
        3,
        0,
    )
    assert done.details == {"due": 4}
    assert done.dagster_run_id == "dagster-run-1"


def test_a_skipped_run_is_complete_at_once_without_duration_or_counts(db: sa.Connection) -> None:
    log.record_skipped(db, JOB)
    (row,) = factories.log_rows(db)
    assert row.status == "skipped"
    assert row.completed_at is not None
    assert row.duration_ms is None
    assert (row.assignments_evaluated, row.reminders_dispatched, row.error_message) == (0, 0, None)


def test_a_failed_row_records_the_streak_it_is_given_and_a_success_resets_it(db: sa.Connection) -> None:
    """The count itself comes from Dagster's run storage (core/test_run_history.py): the log row
    records it, it does not count a second time."""
    assert [_fail(db, streak=streak).consecutive_failure_count for streak in (1, 2, 3)] == [1, 2, 3]
    assert _succeed(db).consecutive_failure_count == 0


def test_finalising_twice_changes_nothing(db: sa.Connection) -> None:
    row_id = log.start_run(db, JOB)
    assert log.finish_failure(db, row_id, "first", consecutive_failures=1) is not None
    assert log.finish_failure(db, row_id, "second", consecutive_failures=2) is None
    assert log.finish_success(db, row_id, assignments_evaluated=1, reminders_dispatched=1) is None
    (row,) = factories.log_rows(db)
    assert (row.status, row.error_message, row.consecutive_failure_count) == ("failed", "first", 1)


def test_rows_left_running_by_a_dead_process_are_closed_as_abandoned_and_count(db: sa.Connection) -> None:
    _fail(db)
    log.start_run(db, JOB, "dead-run")  # its process "died"
    asked: list[tuple[str, str | None]] = []
    closed = log.close_abandoned_runs(db, JOB, lambda job, run_id: asked.append((job, run_id)) or 2)
    assert [(run.status, run.consecutive_failure_count) for run in closed] == [("failed", 2)]
    assert closed[0].error_message == log.ABANDONED_MESSAGE
    assert asked == [(JOB, "dead-run")]  # the streak is asked of the run's own history


def test_the_database_refuses_a_second_running_row_for_the_same_job(db: sa.Connection) -> None:
    log.start_run(db, JOB)
    with pytest.raises(sa.exc.IntegrityError):
        log.start_run(db, JOB)


def test_the_job_lock_is_exclusive_and_dies_with_its_connection(database_url: str) -> None:
    with connect(database_url, autocommit=True) as first, connect(database_url, autocommit=True) as second:
        assert log.try_acquire_job_lock(first, LOCK_KEY)
        assert not log.try_acquire_job_lock(second, LOCK_KEY)
        first.close()  # a crashed process's session ends the same way
        # the server ends the backend asynchronously after the client hangs up: allow it a moment
        deadline = time.monotonic() + 10
        while not log.try_acquire_job_lock(second, LOCK_KEY):
            assert time.monotonic() < deadline, "the lock outlived its connection"
            time.sleep(0.05)
        log.release_job_lock(second, LOCK_KEY)


def test_error_messages_drop_row_values_and_mask_contact_details(db: sa.Connection) -> None:
    coordinator = factories.coordinator(db)
    factories.mentor(db, coordinator, email="kari.nordmann@example.invalid")
    db.execute(sa.text("CREATE UNIQUE INDEX mentor_email ON public.peer_mentors (email)"))
    with pytest.raises(sa.exc.IntegrityError) as caught:
        factories.mentor(db, coordinator, email="kari.nordmann@example.invalid")
    assert "kari.nordmann" in str(caught.value)  # PostgreSQL's DETAIL line quotes the value...
    message = log.safe_error_message(caught.value)
    assert "kari.nordmann" not in message  # ...the log never does
    assert message.startswith("UniqueViolation: duplicate key value")

    assignment_id = str(uuid.uuid4())
    masked = log.safe_error_message(ValueError(f"mentor ola@example.invalid +47 912 34 567 on {assignment_id}"))
    assert "ola@" not in masked and "912 34" not in masked  # not "912" alone: a random id may hold it
    assert assignment_id in masked  # reference ids are what the message is for
    assert "[email]" in masked and "[phone]" in masked

    header = log.safe_error_message(ValueError("Invalid header value b'Bearer s3cr3t-t0ken\\n'"))
    query = log.safe_error_message(OSError("GET https://gateway.invalid/push?token=abc123&x=1 failed"))
    assert "s3cr3t" not in header and "abc123" not in query
    assert "Bearer [secret]" in header and "token=[secret]&x=1" in query


def test_a_refused_run_config_names_each_field_and_its_rule_not_the_value() -> None:
    from reminder_pipeline.assignments.jobs import ReminderRunConfig

    with pytest.raises(pydantic.ValidationError) as caught:
        ReminderRunConfig(chunk_size=987_654_321, reminder_after_days=-42)
    message = log.safe_error_message(caught.value)

    assert message.startswith("invalid ReminderRunConfig: ")
    assert "chunk_size: Input should be less than or equal to 1000000" in message
    assert "reminder_after_days: Input should be greater than or equal to 1" in message
    assert "987654321" not in message and "-42" not in message and "\n" not in message
