"""The optional e-mail channel against a real SMTP server on 127.0.0.1 (aiosmtpd)."""

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from reminder_pipeline.alerting.channels import EmailChannel
from reminder_pipeline.core.alerts import CONSECUTIVE_FAILURES, Alert
from reminder_pipeline.core.errors import DeliveryFailed


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


ALERT = Alert(
    CONSECUTIVE_FAILURES,
    "assignment_reminders",
    uuid.uuid4(),
    "run-1",
    {"error_message": "UndefinedTable: x", "consecutive_failure_count": 2, "last_success_at": None},
)


def test_an_alert_arrives_by_email(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    EmailChannel("127.0.0.1", port, "pipeline@example.invalid", ("oncall@example.invalid",)).deliver(ALERT)
    (message,) = inbox.messages
    assert b"Subject: assignment_reminders failed 2 times in a row" in message
    assert b"Error: UndefinedTable: x" in message


def test_an_unreachable_smtp_server_is_a_delivery_failure_without_secrets() -> None:
    channel = EmailChannel("127.0.0.1", _free_port(), "a@example.invalid", ("b@example.invalid",), 2, "user", "hunter2")
    with pytest.raises(DeliveryFailed) as caught:
        channel.deliver(ALERT)
    assert "hunter2" not in str(caught.value) and "hunter2" not in repr(channel)
