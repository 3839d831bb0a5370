"""The push gateway channel against a real HTTP server on loopback."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reminder_pipeline.core.errors import ConfigurationError
from reminder_pipeline.delivery.channels import DELIVERED, FAILED, UNDELIVERABLE, Message
from reminder_pipeline.delivery.channels.push import PushGatewayChannel
from reminder_pipeline_tests.delivery.conftest import Recipients, deliver, policy
from reminder_pipeline_tests.http_peers import HttpPeer


def _message(number: int) -> Message:
    return Message(
        key=f"00000000-0000-4000-8000-{number:012d}",
        recipient_role="mentor",
        recipient_id="11111111-1111-4111-8111-111111111111",
        notification_ids=(number,),
        kinds=("assignment_follow_up_reminder",),
        language="nb",
        title="Husk å følge opp",
        body="Hei!",
        signature="",
    )


def test_connections_are_reused_across_messages_and_concurrency_is_bounded(gateway: HttpPeer) -> None:
    channel = PushGatewayChannel(gateway.url, concurrency=3, timeout_seconds=2)
    try:
        outcomes = channel.send([_message(n) for n in range(30)]) + channel.send([_message(n) for n in range(30, 40)])
    finally:
        channel.close()
    assert {outcome.status for outcome in outcomes} == {DELIVERED}
    assert len(gateway.requests) == 40
    assert len({request.client for request in gateway.requests}) <= 3  # one connection per worker, kept alive


def test_a_gateway_that_closes_every_connection_is_reconnected_to(gateway: HttpPeer) -> None:
    with HttpPeer(keep_alive=False) as closing:
        channel = PushGatewayChannel(closing.url, concurrency=2, timeout_seconds=2)
        try:
            outcomes = channel.send([_message(n) for n in range(10)])
        finally:
            channel.close()
    assert [outcome.status for outcome in outcomes] == [DELIVERED] * 10


@pytest.mark.parametrize(
    ("status", "expected"),
    [(404, UNDELIVERABLE), (410, UNDELIVERABLE), (401, FAILED), (429, FAILED), (502, FAILED), (400, FAILED)],
)
def test_statuses_map_to_outcomes(gateway: HttpPeer, status: int, expected: str) -> None:
    """Only "no such recipient" is permanent; anything else (our token, our payload, their load) is
    retried and, if it lasts, gives up and alerts: a bug of ours must not pass as undeliverable."""
    gateway.status = status
    channel = PushGatewayChannel(gateway.url, timeout_seconds=2)
    try:
        (outcome,) = channel.send([_message(1)])
    finally:
        channel.close()
    assert outcome.status == expected and outcome.error.startswith(f"push: HTTP {status}")


@pytest.mark.parametrize("url", ["ftp://gateway.invalid/", "gateway.invalid/push", "http:///nohost"])
def test_a_malformed_url_is_refused_by_name_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        PushGatewayChannel(url)
    assert str(refused.value) == "PUSH_WEBHOOK_URL must be an http:// or https:// URL"


@pytest.mark.database
def test_a_huge_answer_is_not_read_whole(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    gateway.response_body = b"x" * (5 * 1024 * 1024)
    recipients.reminders(recipients.mentor(), 1)
    assert deliver(database_url, policy(), push_url=gateway.url).delivered == 1
