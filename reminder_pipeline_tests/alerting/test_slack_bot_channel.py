"""The bot-token channel (dagster-slack's SlackResource) against a real HTTP server on 127.0.0.1
standing in for Slack's Web API."""

import json
import urllib.parse
import uuid

import pytest

from reminder_pipeline.alerting.channels import SlackBotChannel
from reminder_pipeline.alerting.service import slack_bot_channel_from_environment
from reminder_pipeline.core.alerts import CONSECUTIVE_FAILURES, Alert
from reminder_pipeline.core.errors import DeliveryFailed
from reminder_pipeline_tests.http_peers import HttpPeer

TOKEN = "xoxb-test-secret-token"
ALERT = Alert(
    CONSECUTIVE_FAILURES,
    "assignment_reminders",
    uuid.uuid4(),
    "run-1",
    {"error_message": "UndefinedTable: x", "consecutive_failure_count": 2, "last_success_at": None},
)


def _posted(peer: HttpPeer) -> dict:
    (request,) = peer.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    if request.headers.get("Content-Type", "").startswith("application/json"):
        return request.json()
    return {key: values[0] for key, values in urllib.parse.parse_qs(request.body.decode()).items()}


def test_an_alert_is_posted_to_the_configured_channel() -> None:
    with HttpPeer(response_body=b'{"ok": true}') as slack_api:
        SlackBotChannel(TOKEN, "#ops-alerts", 2, f"{slack_api.url}/api/").deliver(ALERT)
        body = _posted(slack_api)
    assert body["channel"] == "#ops-alerts"
    assert body["text"].endswith("assignment_reminders failed 2 times in a row")
    blocks = body["blocks"] if isinstance(body["blocks"], list) else json.loads(body["blocks"])
    assert [block["type"] for block in blocks] == ["header", "section", "context"]


def test_an_api_error_is_a_delivery_failure_that_names_no_token() -> None:
    refusing = HttpPeer(response_body=b'{"ok": false, "error": "channel_not_found"}')
    with refusing as slack_api, pytest.raises(DeliveryFailed) as caught:
        SlackBotChannel(TOKEN, "#gone", 2, f"{slack_api.url}/api/").deliver(ALERT)
    assert TOKEN not in str(caught.value) and "slack bot" in str(caught.value)


def test_a_hanging_api_costs_at_most_the_timeout() -> None:
    with HttpPeer(response_body=b'{"ok": true}', delay_seconds=10) as slack_api, pytest.raises(DeliveryFailed):
        SlackBotChannel(TOKEN, "#ops-alerts", 1, f"{slack_api.url}/api/").deliver(ALERT)


def test_the_channel_comes_from_the_environment_only_when_token_and_channel_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.delenv("SLACK_ALERT_CHANNEL", raising=False)
    assert slack_bot_channel_from_environment(5) is None
    monkeypatch.setenv("SLACK_ALERT_CHANNEL", "#ops-alerts")
    channel = slack_bot_channel_from_environment(5)
    assert channel is not None and TOKEN not in repr(channel)
