"""Asset checks: evaluated after each successful run (events on the run) and on demand (the way
"Execute checks" in the UI runs them), against real rows that break the rules."""

import dataclasses
import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from dagster import AssetCheckKey, AssetKey, AssetSelection, DagsterInstance, Definitions, define_asset_job

from reminder_pipeline.core import checks
from reminder_pipeline.definitions import build_defs
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.dagster_helpers import run_assignment_reminders

pytestmark = pytest.mark.database
AS_OF = dt.date(2026, 11, 22)


@pytest.fixture
def stale_assignment(db: sa.Connection) -> object:
    """An activity newer than the stored last contact: as if something wrote around the trigger."""
    mentor = factories.mentor(db, factories.coordinator(db), full_name="Kari Nordmann")
    assignment = factories.assignment(db, mentor, assigned_on=dt.date(2026, 9, 1))
    db.execute(
        sa.text("INSERT INTO public.activities (assignment_id, mentor_id, activity_date) VALUES (:a, :m, :d)"),
        {"a": assignment, "m": mentor, "d": dt.date(2026, 11, 20)},
    )
    db.execute(
        sa.text("UPDATE public.assignments SET last_contact_date = '2026-10-01' WHERE id = :a"), {"a": assignment}
    )
    return assignment


def _evaluations(instance: DagsterInstance, run_id: str) -> dict[str, object]:
    found = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            found[evaluation.check_name] = evaluation
    return found


def test_every_successful_run_evaluates_its_assets_checks(
    database_url: str, instance: DagsterInstance, stale_assignment: object
) -> None:
    result = run_assignment_reminders(database_url, AS_OF, instance=instance)
    assert result.success  # a failing check never fails the run
    evaluations = _evaluations(instance, result.run_id)
    assert set(evaluations) == {
        "last_contact_date_current",
        "notifications_not_stuck_pending",
        "no_run_running_too_long",
        "no_schedule_overdue",
    }
    stale = evaluations["last_contact_date_current"]
    assert not stale.passed
    assert stale.metadata["count"].value == 1 and stale.metadata["sample_ids"].value == str(stale_assignment)
    assert "Kari" not in str(stale.metadata)
    assert evaluations["no_run_running_too_long"].passed


def _replace_check(monkeypatch: pytest.MonkeyPatch, database_url: str, name: str, evaluate: object) -> None:
    """The run's copy of check `name` evaluates with `evaluate` (the registry is filled as the
    definitions are built, and a later build keeps what is there)."""
    build_defs(database_url)
    asset = "reminder_outbox"
    replaced = [
        dataclasses.replace(check, evaluate=evaluate) if check.name == name else check
        for check in checks.checks_of(asset)
    ]
    monkeypatch.setitem(checks._REGISTRY, asset, replaced)


def test_an_input_check_is_evaluated_once_by_the_reading_thread_and_logged_when_the_run_succeeds(
    database_url: str, instance: DagsterInstance, stale_assignment: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`last_contact_date_current` reads nothing the run writes: it runs once the read is over, on
    the reader's thread while the last chunks are written, not again after the run."""
    from reminder_pipeline.assignments.checks import contact_dates_behind_activities

    threads: list[str] = []

    def recording(connection: sa.Connection) -> checks.Finding:
        threads.append(threading.current_thread().name)
        return contact_dates_behind_activities(connection)

    _replace_check(monkeypatch, database_url, "last_contact_date_current", recording)
    result = run_assignment_reminders(database_url, AS_OF, instance=instance)
    assert result.success
    assert threads == ["reminder-chunk-reader"]
    stale = _evaluations(instance, result.run_id)["last_contact_date_current"]
    assert not stale.passed and stale.metadata["sample_ids"].value == str(stale_assignment)


def test_an_input_check_that_cannot_run_is_one_warning_and_never_fails_the_run(
    database_url: str, instance: DagsterInstance, stale_assignment: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(connection: sa.Connection) -> checks.Finding:
        connection.execute(sa.text("SELECT 1 / 0 WHERE 'kari.nordmann@example.org' <> ''"))
        raise AssertionError("unreachable")

    _replace_check(monkeypatch, database_url, "last_contact_date_current", failing)
    result = run_assignment_reminders(database_url, AS_OF, instance=instance)
    assert result.success
    evaluations = _evaluations(instance, result.run_id)
    assert "last_contact_date_current" not in evaluations and "notifications_not_stuck_pending" in evaluations
    warnings = [
        record.user_message
        for record in instance.all_logs(result.run_id)
        if "could not run" in (record.user_message or "")
    ]
    assert len(warnings) == 1 and "last_contact_date_current" in warnings[0] and "division by zero" in warnings[0]
    assert "kari" not in warnings[0].lower()


def test_a_dry_run_evaluates_no_check(
    database_url: str, instance: DagsterInstance, stale_assignment: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluated: list[str] = []
    _replace_check(monkeypatch, database_url, "last_contact_date_current", lambda connection: evaluated.append("x"))
    result = run_assignment_reminders(database_url, AS_OF, instance=instance, dry_run=True)
    assert result.success
    assert evaluated == [] and _evaluations(instance, result.run_id) == {}


def test_checks_run_on_demand_as_the_ui_runs_them(
    db: sa.Connection, database_url: str, instance: DagsterInstance, stale_assignment: object
) -> None:
    db.execute(
        sa.text(
            "INSERT INTO public.cron_execution_logs (job_name, status, started_at)"
            " VALUES ('assignment_reminders', 'running', now() - interval '31 minutes')"
        )
    )
    keys = [
        AssetCheckKey(AssetKey("reminder_outbox"), name)
        for name in ("last_contact_date_current", "no_run_running_too_long", "notifications_not_stuck_pending")
    ]
    checks_job = define_asset_job("execute_checks", selection=AssetSelection.checks(*keys))
    defs = Definitions.merge(build_defs(database_url), Definitions(jobs=[checks_job]))
    result = defs.resolve_job_def("execute_checks").execute_in_process(instance=instance)
    outcomes = {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}
    assert outcomes == {
        "last_contact_date_current": False,
        "no_run_running_too_long": False,
        "notifications_not_stuck_pending": True,
    }


def test_a_notification_still_pending_a_day_after_it_was_due_fails_its_check(
    db: sa.Connection, database_url: str, instance: DagsterInstance
) -> None:
    mentor = factories.mentor(db, factories.coordinator(db))
    factories.assignment(db, mentor, assigned_on=AS_OF - dt.timedelta(days=30))
    assert run_assignment_reminders(database_url, AS_OF, instance=instance).success
    key = AssetCheckKey(AssetKey("reminder_outbox"), "notifications_not_stuck_pending")
    checks_job = define_asset_job("execute_checks", selection=AssetSelection.checks(key))
    defs = Definitions.merge(build_defs(database_url), Definitions(jobs=[checks_job]))

    def evaluate() -> object:
        (evaluation,) = (
            defs.resolve_job_def("execute_checks").execute_in_process(instance=instance).get_asset_check_evaluations()
        )
        return evaluation

    assert evaluate().passed  # just created: due, not overdue
    aged = db.execute(
        sa.text(
            "UPDATE public.notifications SET created_at = created_at - interval '25 hours',"
            " next_attempt_at = next_attempt_at - interval '25 hours'"
            " WHERE id = (SELECT min(id) FROM public.notifications) RETURNING id"
        )
    ).scalar_one()
    overdue = evaluate()
    assert not overdue.passed
    assert overdue.metadata["count"].value == 1 and overdue.metadata["sample_ids"].value == str(aged)


def test_dead_or_stuck_dynamics_events_fail_their_check(
    db: sa.Connection, database_url: str, instance: DagsterInstance
) -> None:
    mentor = factories.mentor(db, factories.coordinator(db))
    db.execute(
        sa.text(
            "INSERT INTO public.dynamics_sync_events (mentor_id, action, payload, dedupe_key, status)"
            " VALUES (:m, 'pause', '{}', 'dead-one', 'dead')"
        ),
        {"m": mentor},
    )
    key = AssetCheckKey(AssetKey("dynamics_sync_deliveries"), "no_dynamics_event_dead_or_stuck")
    checks_job = define_asset_job("execute_checks", selection=AssetSelection.checks(key))
    defs = Definitions.merge(build_defs(database_url), Definitions(jobs=[checks_job]))
    result = defs.resolve_job_def("execute_checks").execute_in_process(instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["count"].value == 1


def test_an_overdue_scheduled_run_fails_its_check_until_a_run_succeeds(
    db: sa.Connection, database_url: str, instance: DagsterInstance
) -> None:
    from reminder_pipeline.alerting.schedule_watch import record_overdue, sync_job_schedules
    from reminder_pipeline.definitions import JOB_SPECS

    sync_job_schedules(db, JOB_SPECS)
    db.execute(
        sa.text(
            "UPDATE public.job_schedules SET daily_at = CAST((now() - interval '2 hours') AT TIME ZONE timezone"
            " AS time), watched_since = now() - interval '2 days' WHERE job_name = 'assignment_reminders'"
        )
    )
    (overdue,) = record_overdue(db)
    key = AssetCheckKey(AssetKey("reminder_outbox"), "no_schedule_overdue")
    checks_job = define_asset_job("execute_checks", selection=AssetSelection.checks(key))
    defs = Definitions.merge(build_defs(database_url), Definitions(jobs=[checks_job]))

    (before,) = (
        defs.resolve_job_def("execute_checks").execute_in_process(instance=instance).get_asset_check_evaluations()
    )
    assert not before.passed and before.metadata["count"].value == 1
    assert before.metadata["sample_ids"].value == f"{overdue.expected_at.astimezone(dt.UTC):%Y-%m-%dT%H:%MZ}"

    result = run_assignment_reminders(database_url, AS_OF, instance=instance)
    assert _evaluations(instance, result.run_id)["no_schedule_overdue"].passed
