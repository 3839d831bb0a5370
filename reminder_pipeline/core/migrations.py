"""Apply the plain-SQL migrations the package ships (`migrations/` in the repository) with yoyo.

yoyo records what was applied; on top of it this module adds what yoyo lacks:
- a PostgreSQL advisory lock, so concurrent `migrate` calls queue instead of racing (yoyo's own
  lock row would outlive a crashed process; under our lock a stale row is safely broken);
- a SHA-256 of every applied file, so editing an applied migration is an error, not a silent drift;
- row-level security on yoyo's bookkeeping tables, which live in `public` and would otherwise be
  readable through Supabase's REST API.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import sqlalchemy as sa

from reminder_pipeline.core import locks, packaged
from reminder_pipeline.core.database import connect, libpq_url
from reminder_pipeline.core.errors import MigrationChanged, MigrationsMissing

#: Advisory-lock key held while migrating (documented in docs/runbook.md).
MIGRATIONS_LOCK_KEY = locks.MIGRATIONS

CHECKSUM_TABLE = "schema_migration_checksums"
BOOKKEEPING_TABLES = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock", CHECKSUM_TABLE)


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def apply_migrations(url: str, directory: Path | None = None) -> list[str]:
    """Apply every pending migration in order; return the ids applied (empty when up to date).
    `directory` defaults to the migrations shipped with the package."""
    if directory is None:
        with packaged.migrations_directory() as shipped:
            return apply_migrations(url, shipped)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import yoyo

    migrations = yoyo.read_migrations(str(directory)) if directory.is_dir() else []
    if not migrations:
        raise MigrationsMissing(
            "no migration files found: the package is incomplete; reinstall reminder-pipeline from a wheel or checkout"
        )
    files = {migration.id: Path(migration.path) for migration in migrations}

    with connect(url, autocommit=True) as guard:
        guard.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATIONS_LOCK_KEY})
        try:
            guard.execute(
                sa.text(
                    f"CREATE TABLE IF NOT EXISTS public.{CHECKSUM_TABLE} ("
                    " migration_id text PRIMARY KEY, sha256 text NOT NULL,"
                    " recorded_at timestamptz NOT NULL DEFAULT now())"
                )
            )
            backend = yoyo.get_backend(libpq_url(url))
            try:
                pending = backend.to_apply(migrations)
                pending_ids = {migration.id for migration in pending}
                _verify_applied(guard, {k: v for k, v in files.items() if k not in pending_ids})
                backend.break_lock()  # only a crashed migrator can have left it: we hold the advisory lock
                with backend.lock():
                    backend.apply_migrations(pending)
            finally:
                backend.connection.close()
            _record(guard, {migration.id: files[migration.id] for migration in pending})
            _secure_bookkeeping(guard)
            return [migration.id for migration in pending]
        finally:
            guard.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATIONS_LOCK_KEY})


def _verify_applied(connection: sa.Connection, applied: dict[str, Path]) -> None:
    recorded = dict(connection.execute(sa.text(f"SELECT migration_id, sha256 FROM public.{CHECKSUM_TABLE}")).all())
    for migration_id, path in sorted(applied.items()):
        if migration_id in recorded and recorded[migration_id] != _checksum(path):
            raise MigrationChanged(
                f"migration {migration_id} was changed after it was applied; "
                "add a new migration file instead of editing an applied one"
            )
    _record(connection, {k: v for k, v in applied.items() if k not in recorded})


def _record(connection: sa.Connection, migrations: dict[str, Path]) -> None:
    for migration_id, path in migrations.items():
        connection.execute(
            sa.text(
                f"INSERT INTO public.{CHECKSUM_TABLE} (migration_id, sha256) VALUES (:id, :sha)"
                " ON CONFLICT (migration_id) DO NOTHING"
            ),
            {"id": migration_id, "sha": _checksum(path)},
        )


def _secure_bookkeeping(connection: sa.Connection) -> None:
    roles = connection.execute(
        sa.text("SELECT string_agg(rolname, ', ') FROM pg_roles WHERE rolname IN ('anon', 'authenticated')")
    ).scalar()
    for table in BOOKKEEPING_TABLES:
        if connection.execute(sa.text("SELECT to_regclass(:t)"), {"t": f"public.{table}"}).scalar() is None:
            continue
        connection.execute(sa.text(f"ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY"))
        if roles:
            connection.execute(sa.text(f"REVOKE ALL ON public.{table} FROM {roles}"))
