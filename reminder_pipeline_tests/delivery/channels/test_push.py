"""The push gateway channel against a real HTTP server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from reminder_pipeline.core.errors import ConfigurationError
from reminder_pipeline.delivery.channels import DELIVERED, FAILED, UNDELIVERABLE, Message
from reminder_pipeline.delivery.channels.push import PushGatewayChannel
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


def test_a_huge_answer_is_not_read_whole_and_its_connection_is_not_reused(gateway: HttpPeer) -> None:
    gateway.response_body = b"x" * (5 * 1024 * 1024)
    channel = PushGatewayChannel(gateway.url, concurrency=1, timeout_seconds=5)
    try:
        outcomes = channel.send([_message(1), _message(2)])
    finally:
        channel.close()
    assert [outcome.status for outcome in outcomes] == [DELIVERED, DELIVERED]
    first, second = gateway.requests
    assert first.client != second.client  # the rest of the answer was dropped with its connection


def test_a_secret_read_with_a_trailing_newline_still_works_and_a_broken_one_is_refused(gateway: HttpPeer) -> None:
    channel = PushGatewayChannel(f" {gateway.url}\n", token="t0ken\n")
    try:
        (outcome,) = channel.send([_message(1)])
    finally:
        channel.close()
    assert outcome.status == DELIVERED and gateway.requests[0].headers["Authorization"] == "Bearer t0ken"
    with pytest.raises(ConfigurationError) as refused:
        PushGatewayChannel(gateway.url, token="t0ken\nX-Injected: 1")
    assert str(refused.value) == "PUSH_WEBHOOK_TOKEN must be one line without spaces"


@pytest.fixture
def trickling_gateway() -> Iterator[str]:
    """A gateway that reads the request, then answers one byte every half second (about 40 s in all)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            with client:
                client.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + b"x" * 20:
                    if stop.wait(0.5):
                        break
                    try:
                        client.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_a_gateway_that_trickles_bytes_is_cut_off_at_the_deadline(trickling_gateway: str) -> None:
    channel = PushGatewayChannel(trickling_gateway, timeout_seconds=1)
    started = time.monotonic()
    try:
        (outcome,) = channel.send([_message(1)])
    finally:
        channel.close()
    elapsed = time.monotonic() - started
    assert (outcome.status, outcome.error, outcome.ambiguous) == (FAILED, "push: timed out after 1 s", True)
    assert elapsed < 3, f"a trickling gateway held a worker for {elapsed:.1f} s"
