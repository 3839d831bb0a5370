"""Dagster resources shared by every job."""

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as sa
from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from reminder_pipeline.core.database import connect, create_engine, resolve_database_url, run_application_name
from reminder_pipeline.core.run_config import is_dry_run


class PipelineDatabase(ConfigurableResource):
    """The application database. Without a URL it uses `DATABASE_URL`, read when a run starts,
    or else the embedded server.

    Inside a run, every connection is named `rp:<run id>` in `pg_stat_activity` and carries the
    job statement and lock timeouts (settings `JOB_STATEMENT_TIMEOUT_SECONDS`,
    `JOB_LOCK_TIMEOUT_SECONDS`), so a blocked query ends, and the run's backends can be found.
    """

    database_url: str | None = None

    _run_id: str | None = PrivateAttr(default=None)
    _dry_run: bool = PrivateAttr(default=False)
    _engine: sa.Engine | None = PrivateAttr(default=None)

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator["PipelineDatabase"]:
        self._run_id = context.run_id
        self._dry_run = context.dagster_run is not None and is_dry_run(context.dagster_run.run_config)
        try:
            yield self
        finally:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None

    def url(self) -> str:
        return self.database_url or resolve_database_url()

    def engine(self) -> sa.Engine:
        """The run's engine (no pool): connections named after the run, with the job timeouts."""
        if self._engine is None:
            name = run_application_name(self._run_id) if self._run_id else "reminder-pipeline"
            self._engine = create_engine(self.url(), application_name=name, job_timeouts=True)
        return self._engine

    @property
    def dry_run(self) -> bool:
        return self._dry_run

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection inside one transaction, committed when the block ends without error; in a
        dry run always rolled back, so the job's real code computes exact counts and writes nothing."""
        with connect(self.url(), engine=self.engine()) as connection, self._transaction_on(connection):
            yield connection

    @contextmanager
    def transactions(
        self, *, synchronous_commit: bool = True
    ) -> Iterator[Callable[[], AbstractContextManager[sa.Connection]]]:
        """Many transactions in a row on one connection (a chunked run): yields a function that
        opens one, committed (or, in a dry run, rolled back) like `transaction`'s. With
        `synchronous_commit=False` their commits do not wait for the WAL to reach disk (set once
        for the connection, not one statement per transaction): for a caller whose work a crash may
        lose, because it is redone by the next run before anyone has seen it."""
        with connect(self.url(), engine=self.engine()) as connection:
            if not synchronous_commit:
                connection.execute(sa.text("SET synchronous_commit = off"))
                connection.commit()
            yield functools.partial(self._transaction_on, connection)

    @contextmanager
    def _transaction_on(self, connection: sa.Connection) -> Iterator[sa.Connection]:
        transaction = connection.begin()
        try:
            yield connection
        except BaseException:
            transaction.rollback()
            raise
        if self._dry_run:
            transaction.rollback()
        else:
            transaction.commit()
