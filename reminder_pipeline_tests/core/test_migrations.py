import shutil
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from reminder_pipeline.core import packaged
from reminder_pipeline.core.database import connect
from reminder_pipeline.core.migrations import MigrationChanged, MigrationsMissing, apply_migrations

pytestmark = pytest.mark.database

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
        rows = {
            row.idempotency_key: row
            for row in db.execute(
                sa.text(
                    "SELECT idempotency_key, status, next_attempt_at IS NOT NULL AS due, delivered_at IS NOT NULL"
                    " AS delivered FROM public.notifications"
                )
            )
        }
    assert (rows["recent"].status, rows["recent"].due) == ("pending", True)
    assert (rows["old"].status, rows["old"].due) == ("expired", False)
    assert (rows["read"].status, rows["read"].due, rows["read"].delivered) == ("delivered", False, True)
    assert (rows["failed"].status, rows["failed"].due) == ("failed", True)
