"""Alert secrets, read when an alert is sent (never at import time, never logged)."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from reminder_pipeline.alerting import settings as alerting_settings
from reminder_pipeline.core import settings
from reminder_pipeline.core.vault import read_secret

VAULT_SECRET_NAME = "slack_alert_webhook_url"
#: The last webhook URL read from Vault, kept (mode 0600) so that an alert can still reach Slack
#: while the application database, which holds the vault, is down.
CACHE_FILE = "slack-webhook-from-vault"


def _cache_path() -> Path:
    return settings.load().home() / CACHE_FILE


def _remember(url: str) -> None:
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.read_text() == url:
            return
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as cache:
            cache.write(url)
    except OSError:  # a read-only home costs the fallback, never the alert
        pass


def _remembered() -> str | None:
    try:
        return _cache_path().read_text().strip() or None
    except OSError:
        return None


def slack_webhook_url(connection: sa.Connection | None) -> str | None:
    """Supabase Vault's `slack_alert_webhook_url` when a vault is installed and holds it, else
    `SLACK_WEBHOOK_URL` from the environment, else (database down: `connection` is None) the last
    value read from Vault, else None (no webhook channel)."""
    secret = read_secret(connection, VAULT_SECRET_NAME)
    if secret:
        _remember(secret)
        return secret
    from_environment = settings.secret(alerting_settings.load().slack_webhook_url)
    if from_environment or connection is not None:
        return from_environment
    return _remembered()
