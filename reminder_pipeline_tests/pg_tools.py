"""PostgreSQL's own client programs, from the embedded server's wheel (the newest there reads every
older server)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reminder_pipeline.core.database import libpq_url, pg_client


def pg_binary(name: str) -> Path:
    return pg_client(name)


def psql(url: str, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` as an operator would paste it into psql: unaligned, tuples only, stop on error."""
    return subprocess.run(
        [str(pg_binary("psql")), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", libpq_url(url)],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
