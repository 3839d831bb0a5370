from collections.abc import Iterator

import pytest

from reminder_pipeline_tests.http_peers import HttpPeer


@pytest.fixture
def slack() -> Iterator[HttpPeer]:
    """A real HTTP server on 127.0.0.1 standing in for Slack's incoming webhook."""
    with HttpPeer() as peer:
        yield peer


@pytest.fixture(autouse=True)
def no_ambient_alert_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_WEBHOOK_URL", "ALERT_SMTP_HOST", "ALERT_EMAIL_TO"):
        monkeypatch.delenv(name, raising=False)
