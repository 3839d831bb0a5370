import datetime as dt
import hashlib
import shutil
import threading
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from reminder_pipeline.assignments.notifications import COORDINATOR_ESCALATION, MENTOR_REMINDER
from reminder_pipeline.assignments.rules import ReminderRules, decide_reminders
from reminder_pipeline.certifications.rules import expiry_notices, pause_notices, reactivation_notices
from reminder_pipeline.core import outbox, packaged
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.migrations import MigrationChanged, MigrationsMissing, apply_migrations
from reminder_pipeline_tests import factories

pytestmark = pytest.mark.database
REMINDER, ESCALATION = MENTOR_REMINDER.name, COORDINATOR_ESCALATION.name

with packaged.migrations_directory() as shipped:
    ALL_MIGRATIONS = sorted(path.stem for path in shipped.glob("*.sql"))


def _applied(url: str) -> list[str]:
    with connect(url) as connection:
        return sorted(connection.execute(sa.text("SELECT migration_id FROM public._yoyo_migration")).scalars())


def test_migrations_apply_in_order_from_an_empty_database_and_rerun_as_a_no_op(
    empty_database_url: str,
) -> None:
    assert apply_migrations(empty_database_url) == ALL_MIGRATIONS
    assert apply_migrations(empty_database_url) == []
    assert _applied(empty_database_url) == ALL_MIGRATIONS


def test_an_applied_migration_that_changed_is_an_error(empty_database_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    with packaged.migrations_directory() as shipped:
        shutil.copytree(shipped, directory)
    apply_migrations(empty_database_url, directory)
    edited = directory / f"{ALL_MIGRATIONS[-1]}.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationChanged, match=ALL_MIGRATIONS[-1]):
        apply_migrations(empty_database_url, directory)


@pytest.mark.parametrize("present", [False, True], ids=["no-folder", "empty-folder"])
def test_no_migration_files_is_an_error_never_applied_0(empty_database_url: str, tmp_path: Path, present: bool) -> None:
    directory = tmp_path / "migrations"
    if present:
        directory.mkdir()
    with pytest.raises(MigrationsMissing, match="no migration files found"):
        apply_migrations(empty_database_url, directory)


def test_two_concurrent_migrators_apply_each_migration_once(empty_database_url: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def migrate() -> None:
        start.wait()
        try:
            results.append(apply_migrations(empty_database_url))
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(results, key=len) == [[], ALL_MIGRATIONS]
    assert _applied(empty_database_url) == ALL_MIGRATIONS


def test_supabase_roles_and_jwt_shim_exist(db: sa.Connection) -> None:
    roles = dict(
        db.execute(
            sa.text(
                "SELECT rolname, rolbypassrls FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role')"
            )
        ).all()
    )
    assert roles == {"anon": False, "authenticated": False, "service_role": True}
    assert db.execute(sa.text("SELECT auth.jwt()")).scalar() == {}
    db.execute(sa.text("SELECT set_config('request.jwt.claims', '{\"sub\": \"x\"}', false)"))
    assert db.execute(sa.text("SELECT auth.jwt() ->> 'sub'")).scalar() == "x"


def test_every_public_table_has_row_level_security(db: sa.Connection) -> None:
    unprotected = (
        db.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND NOT rowsecurity"))
        .scalars()
        .all()
    )
    assert unprotected == []


def test_cron_execution_logs_has_the_specified_columns(db: sa.Connection) -> None:
    columns = {
        row.column_name: (row.data_type, row.is_nullable, row.column_default)
        for row in db.execute(
            sa.text(
                "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = 'cron_execution_logs'"
            )
        )
    }
    assert columns["id"][0] == "uuid"
    assert columns["started_at"][0] == columns["completed_at"][0] == "timestamp with time zone"
    assert columns["completed_at"][1] == "YES" and columns["duration_ms"][1] == "YES"
    for counter in ("assignments_evaluated", "reminders_dispatched", "consecutive_failure_count"):
        assert columns[counter][0] == "integer" and columns[counter][2] == "0"
    assert columns["status"][0] == columns["error_message"][0] == columns["job_name"][0] == "text"
    assert columns["details"][0] == "jsonb"
    assert "now()" in columns["created_at"][2]
    indexes = (
        db.execute(sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = 'cron_execution_logs'")).scalars().all()
    )
    assert any("(started_at DESC)" in index for index in indexes)
    assert any("(job_name, started_at DESC)" in index for index in indexes)


def test_the_delivery_migration_takes_over_an_outbox_that_already_has_rows(
    empty_database_url: str, tmp_path: Path
) -> None:
    """0009 on a database whose outbox filled up before delivery existed: recent pending rows become
    due, old ones expire (they are not worth sending any more), and no row breaks a new constraint."""
    before = tmp_path / "before-delivery"
    before.mkdir()
    with packaged.migrations_directory() as shipped:
        for path in shipped.glob("*.sql"):
            if path.stem < "0009":
                shutil.copy(path, before / path.name)
    apply_migrations(empty_database_url, before)
    with connect(empty_database_url, autocommit=True) as db:
        db.execute(
            sa.text(
                "INSERT INTO public.notifications (idempotency_key, kind, recipient_role, recipient_id, status,"
                " created_at, delivered_at) VALUES"
                " ('recent', 'k', 'mentor', gen_random_uuid(), 'pending', now() - interval '1 hour', NULL),"
                " ('old', 'k', 'mentor', gen_random_uuid(), 'pending', now() - interval '5 days', NULL),"
                " ('read', 'k', 'mentor', gen_random_uuid(), 'delivered', now() - interval '5 days', NULL),"
                " ('failed', 'k', 'mentor', gen_random_uuid(), 'failed', now() - interval '1 day', NULL)"
            )
        )
    assert apply_migrations(empty_database_url)[-1] == ALL_MIGRATIONS[-1]
    with connect(empty_database_url) as db:
        # Their text keys fit no kind's shape: migration 0014 keyed each by the md5 of its text key.
        rows = {
            row.key: row
            for row in db.execute(
                sa.text(
                    "SELECT k.key, status, next_attempt_at IS NOT NULL AS due, delivered_at IS NOT NULL"
                    " AS delivered FROM public.notifications"
                    " JOIN (VALUES ('recent'), ('old'), ('read'), ('failed')) AS k (key)"
                    " ON source_id = md5(k.key)::uuid"
                )
            )
        }
    assert (rows["recent"].status, rows["recent"].due) == ("pending", True)
    assert (rows["old"].status, rows["old"].due) == ("expired", False)
    assert (rows["read"].status, rows["read"].due, rows["read"].delivered) == ("delivered", False, True)
    assert (rows["failed"].status, rows["failed"].due) == ("failed", True)


def test_the_compact_key_carries_every_notification_so_that_the_same_notices_are_created_none_again(
    empty_database_url: str, tmp_path: Path
) -> None:
    """Migration 0014 keys each existing row by what its text key said; the domains' own frames for
    the same notices then find every key taken (nothing is sent twice across the migration)."""
    before = tmp_path / "before-compact-key"
    before.mkdir()
    with packaged.migrations_directory() as shipped:
        for path in shipped.glob("*.sql"):
            if path.stem < "0014":
                shutil.copy(path, before / path.name)
    apply_migrations(empty_database_url, before)
    cert, pause = uuid.uuid4(), uuid.uuid4()
    with connect(empty_database_url) as db, db.begin():
        coordinator = factories.coordinator(db)
        mentor = factories.mentor(db, coordinator)
        assignment = factories.assignment(db, mentor, assigned_on=dt.date(2026, 1, 1))
        old_rows = [  # (text key, kind, role, recipient, assignment, reference date, step)
            (f"{assignment}:{REMINDER}:2026-11-06:1", REMINDER, "mentor", mentor, assignment, "2026-11-06", 1),
            (
                f"{assignment}:{ESCALATION}:2026-11-06:0",
                ESCALATION,
                "coordinator",
                coordinator,
                assignment,
                "2026-11-06",
                0,
            ),
            (
                f"certification_expiry:{cert}:30",
                "certification_expiry_reminder",
                "mentor",
                mentor,
                None,
                "2027-01-01",
                30,
            ),
            *[
                (f"mentor_auto_paused:{role}:{mentor}:{cert}", "mentor_auto_paused", role, who, None, None, None)
                for role, who in (("mentor", mentor), ("coordinator", coordinator))
            ],
            (f"mentor_reactivated:mentor:{mentor}:{pause}", "mentor_reactivated", "mentor", mentor, None, None, None),
            ("hand-made", "assignment_follow_up_reminder", "mentor", mentor, None, None, None),
        ]
        for key, kind, role, recipient, about, reference, step in old_rows:
            db.execute(
                sa.text(
                    "INSERT INTO public.notifications (idempotency_key, kind, recipient_role, recipient_id,"
                    " assignment_id, reference_date, step) VALUES (:key, :kind, :role, :recipient, :about,"
                    " :reference, :step)"
                ),
                dict(key=key, kind=kind, role=role, recipient=recipient, about=about, reference=reference, step=step),
            )

    assert apply_migrations(empty_database_url)[-1] == ALL_MIGRATIONS[-1]
    with connect(empty_database_url) as db:
        keys = sorted(db.execute(sa.text(f"SELECT {outbox.KEY_TEXT_SQL} FROM public.notifications AS n")).scalars())
    hand_made = str(uuid.UUID(hashlib.md5(b"hand-made").hexdigest()))
    assert keys == sorted(
        [
            f"{assignment}:{REMINDER}:mentor:2026-11-06:1",
            f"{assignment}:{ESCALATION}:coordinator:2026-11-06:0",
            f"{cert}:certification_expiry_reminder:mentor::30",  # the expiry date is the payload's
            f"{cert}:mentor_auto_paused:mentor::",
            f"{cert}:mentor_auto_paused:coordinator::",
            f"{pause}:mentor_reactivated:mentor::",
            f"{hand_made}:assignment_follow_up_reminder:mentor::",
        ]
    )

    day = dt.date(2026, 11, 6)
    gap = pd.DataFrame(
        {
            "assignment_id": [str(assignment)],
            "mentor_id": [str(mentor)],
            "coordinator_id": [str(coordinator)],
            "assignment_status": ["active"],
            "mentor_status": ["active"],
            "assigned_on": [dt.date(2026, 1, 1)],
            "last_contact_date": [day],
        }
    )
    people = {"mentor_id": str(mentor), "coordinator_id": str(coordinator), "cert_id": str(cert)}
    again = [
        decide_reminders(gap, day + dt.timedelta(days=ReminderRules().escalate_after_days), ReminderRules()),
        expiry_notices(pd.DataFrame([{**people, "threshold_days": 30, "days_left": 30, "expires_on": "2027-01-01"}])),
        pause_notices(pd.DataFrame([{**people, "expired_on": "2026-12-01"}])),
        reactivation_notices(pd.DataFrame([{**people, "pause_id": str(pause), "expires_on": "2028-12-01"}])),
    ]
    assert set(again[0]["step"]) == {0, 1}
    with connect(empty_database_url) as db, db.begin():
        created = [outbox.dispatch(db, frame).created for frame in again]
    # Only the reactivation notice to the coordinator is new (no such row existed before).
    assert created == [0, 0, 0, 1]
