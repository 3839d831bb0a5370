"""`schema.sql` is the schema that every migration, applied in order to an empty database, produces.

The snapshot is for reading and review (what does the database look like now?); migrations stay the
single source. When a migration changes the schema on purpose, refresh the snapshot with
`REMINDER_PIPELINE_UPDATE_SCHEMA=1 python3 tasks.py test reminder_pipeline_tests/core/test_schema.py`.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from reminder_pipeline.core.database import libpq_url
from reminder_pipeline.core.migrations import apply_migrations
from reminder_pipeline_tests import REPOSITORY
from reminder_pipeline_tests.pg_tools import pg_binary

pytestmark = pytest.mark.database
SNAPSHOT = REPOSITORY / "schema.sql"
#: Tables the migration tool keeps for itself.
TOOL_TABLES = ["public._yoyo_*", "public.yoyo_lock"]
#: Lines that vary with the pg_dump or server build, not with the schema (the embedded server's build
#: stamps every column with a `pg_attver` option).
VOLATILE = re.compile(
    r"^(--.*|SET .*|SELECT pg_catalog\.set_config.*|\\(un)?restrict .*"
    r"|ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(pg_attver=\d+\);)$"
)
#: PostgreSQL 15 spells out what 17 and newer call ALL (17 added MAINTAIN).
ALL_BEFORE_17 = "GRANT SELECT,INSERT,REFERENCES,DELETE,TRIGGER,TRUNCATE,UPDATE ON "


def dump_schema(url: str) -> str:
    """The schema as `pg_dump --schema-only`, without the tool's tables and version-dependent lines."""
    excluded = [argument for table in TOOL_TABLES for argument in ("--exclude-table", table)]
    done = subprocess.run(
        [str(pg_binary("pg_dump")), "--schema-only", "--no-owner", *excluded, "--dbname", libpq_url(url)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [
        line.replace(ALL_BEFORE_17, "GRANT ALL ON ") for line in done.stdout.splitlines() if not VOLATILE.match(line)
    ]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def test_every_migration_applied_to_an_empty_database_gives_schema_sql(empty_database_url: str) -> None:
    apply_migrations(empty_database_url)
    schema = dump_schema(empty_database_url)
    if os.environ.get("REMINDER_PIPELINE_UPDATE_SCHEMA") == "1":
        SNAPSHOT.write_text(schema)
    assert SNAPSHOT.read_text() == schema, (
        "schema.sql differs from the migrated schema: if the migration is meant to change it, refresh the"
        " snapshot (REMINDER_PIPELINE_UPDATE_SCHEMA=1, see this test's docstring) and review the diff"
    )


def test_the_snapshot_names_no_migration_tool_table() -> None:
    assert "yoyo" not in SNAPSHOT.read_text()
