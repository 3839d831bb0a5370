"""Every PostgreSQL advisory-lock key the project takes, registered in one place.

Keys are constant (an operator finds the holder in `pg_locks`, the runbook names them) and live in
the project's block `7204000..7204999`. A job's key is declared on its :class:`JobSpec`, which
registers it here when the job is declared; a second owner of a key fails at import, in the tests,
not as two jobs silently excluding each other in production.

    7204000          migrations (core/migrations.py)
    7204001..7204099 one per lock-and-log job (JobSpec.lock_key)
    7204100          class of the per-recipient transaction locks of the delivery claim
"""

from __future__ import annotations

from reminder_pipeline.core.errors import ConfigurationError

BLOCK = range(7_204_000, 7_205_000)
MIGRATIONS = 7_204_000
JOBS = range(7_204_001, 7_204_100)
RECIPIENT_CLASS = 7_204_100

_OWNERS: dict[int, str] = {MIGRATIONS: "migrations", RECIPIENT_CLASS: "delivery recipient claims"}


def register_job_lock(job_name: str, key: int) -> int:
    """Record `job_name` as the owner of `key`; declaring the same job again is harmless."""
    if key not in JOBS:
        raise ConfigurationError(
            f"job {job_name}: lock key {key} is outside the jobs' range {JOBS.start}..{JOBS.stop - 1}"
        )
    owner = _OWNERS.setdefault(key, job_name)
    if owner != job_name:
        raise ConfigurationError(f"job {job_name}: lock key {key} is already taken by {owner}")
    return key


def owners() -> dict[int, str]:
    """Every registered key and its owner, for `doctor` and the tests."""
    return dict(sorted(_OWNERS.items()))
