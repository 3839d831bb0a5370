"""Supabase Vault: secrets read at run time from `vault.decrypted_secrets`, when a vault exists."""

from __future__ import annotations

import sqlalchemy as sa


def read_secret(connection: sa.Connection | None, name: str) -> str | None:
    """The decrypted secret called `name`, or None: no connection, no vault installed (a plain
    PostgreSQL), or no such secret. Never logged; the caller hands it to the one client that needs it."""
    if connection is None:
        return None
    if not connection.execute(sa.text("SELECT to_regclass('vault.decrypted_secrets') IS NOT NULL")).scalar():
        return None
    return (
        connection.execute(
            sa.text("SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = :name LIMIT 1"), {"name": name}
        ).scalar_one_or_none()
        or None
    )
