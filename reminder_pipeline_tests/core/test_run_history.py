"""The one failure count: a job's streak as Dagster's run storage has it (real instance, real runs)."""

from collections.abc import Iterator

import pytest
from dagster import Config, DagsterInstance, job, op

from reminder_pipeline.core import run_history
from reminder_pipeline.core.run_config import DRY_RUN_TAG
from reminder_pipeline.core.run_history import SKIPPED_TAG, failure_streak, finished_runs


class Outcome(Config):
    fail: bool = False


@op
def succeed_or_fail(config: Outcome) -> None:
    if config.fail:
        raise RuntimeError("boom")


@job
def flaky() -> None:
    succeed_or_fail()


@job
def other() -> None:
    succeed_or_fail()


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as instance:
        yield instance


def _run(instance: DagsterInstance, outcome: str, job_def=flaky) -> str:
    """'F' fails, 'S' succeeds; 'skipped' and 'dry' succeed with the wrapper's tags."""
    tags = {"skipped": {SKIPPED_TAG: "true"}, "dry": {DRY_RUN_TAG: "true"}}.get(outcome, {})
    result = job_def.execute_in_process(
        run_config={"ops": {"succeed_or_fail": {"config": {"fail": outcome == "F"}}}},
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )
    return result.run_id


def test_a_failing_run_counts_itself_and_the_failures_right_before_it(instance: DagsterInstance) -> None:
    for outcome in "FFS":
        _run(instance, outcome)
    streaks = []
    for _ in range(3):
        run_id = _run(instance, "F")
        streaks.append(failure_streak(instance, "flaky", run_id))
    assert streaks == [1, 2, 3]
    _run(instance, "S")
    assert failure_streak(instance, "flaky", _run(instance, "F")) == 1


def test_a_running_run_counts_the_finished_failures_before_it(instance: DagsterInstance) -> None:
    """The failure hook asks while its own run is still STARTED: the run is not in the history yet."""
    _run(instance, "F")
    _run(instance, "F")
    started = instance.create_run_for_job(flaky, run_config={"ops": {"succeed_or_fail": {"config": {"fail": True}}}})
    assert failure_streak(instance, "flaky", started.run_id) == 3


def test_only_runs_created_before_the_run_count(instance: DagsterInstance) -> None:
    first = _run(instance, "F")
    _run(instance, "F")
    assert failure_streak(instance, "flaky", first) == 1  # a later failure is not part of its streak


def test_skipped_and_dry_runs_neither_end_nor_extend_a_streak(instance: DagsterInstance) -> None:
    _run(instance, "F")
    _run(instance, "skipped")
    _run(instance, "dry")
    assert failure_streak(instance, "flaky", _run(instance, "F")) == 2
    assert [run.succeeded for run in finished_runs(instance, "flaky")] == [False, False]


def test_streaks_are_per_job(instance: DagsterInstance) -> None:
    _run(instance, "F")
    assert failure_streak(instance, "other", _run(instance, "F", other)) == 1
    assert failure_streak(instance, "flaky", _run(instance, "F")) == 2


def test_without_a_run_storage_the_run_counts_alone(instance: DagsterInstance) -> None:
    _run(instance, "F")
    assert failure_streak(None, "flaky", "any") == 1
    assert failure_streak(instance, "flaky", None) == 1

    class UnreachableStorage:
        def get_run_records(self, *args: object, **kwargs: object) -> None:
            raise ConnectionError("run storage down")

        get_run_record_by_id = get_run_records

    # A run storage that cannot be read: the failure is still recorded, counting alone.
    assert failure_streak(UnreachableStorage(), "flaky", "any") == 1  # type: ignore[arg-type]


def test_an_older_run_counts_its_own_streak_however_many_runs_came_after(
    instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dead-runs job closes the row of a run that may be far back: its streak is read from the
    runs before it, not from the newest page of history."""
    monkeypatch.setattr(run_history, "HISTORY", 3)
    _run(instance, "F")
    _run(instance, "F")
    dead = instance.create_run_for_job(flaky, run_config={"ops": {"succeed_or_fail": {"config": {"fail": True}}}})
    for _ in range(3):
        _run(instance, "S")
    assert failure_streak(instance, "flaky", dead.run_id) == 3
