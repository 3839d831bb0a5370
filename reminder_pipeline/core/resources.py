"""Dagster resources shared by every job."""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from dagster import ConfigurableResource

from reminder_pipeline.core.database import connect, resolve_database_url


class PipelineDatabase(ConfigurableResource):
    """The application database. Without a URL it uses `DATABASE_URL`, read when a run starts,
    or else the embedded server."""

    database_url: str | None = None

    def url(self) -> str:
        return self.database_url or resolve_database_url()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection inside one transaction, committed when the block ends without error."""
        with connect(self.url()) as connection, connection.begin():
            yield connection
