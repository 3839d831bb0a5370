"""Alert secrets, read when an alert is sent (never at import time, never logged)."""

from __future__ import annotations

import sqlalchemy as sa

from reminder_pipeline.core import settings

VAULT_SECRET_NAME = "slack_alert_webhook_url"


def slack_webhook_url(connection: sa.Connection) -> str | None:
    """Supabase Vault's `slack_alert_webhook_url` when a vault is installed and holds it, else
    `SLACK_WEBHOOK_URL` from the environment, else None (no Slack channel)."""
    if connection.execute(sa.text("SELECT to_regclass('vault.decrypted_secrets') IS NOT NULL")).scalar():
        secret = connection.execute(
            sa.text("SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = :name LIMIT 1"),
            {"name": VAULT_SECRET_NAME},
        ).scalar_one_or_none()
        if secret:
            return secret
    return settings.secret(settings.load().slack_webhook_url)
