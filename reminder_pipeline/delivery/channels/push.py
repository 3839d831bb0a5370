"""The push gateway: one JSON POST per recipient message to `PUSH_WEBHOOK_URL` (the app's own
notification endpoint, or a push service in front of FCM/APNs).

Python's own `http.client`, one persistent connection per worker thread and a bounded pool of
workers: on this project's 2-core machine it sends about four times as many requests a second as
httpx does (docs/delivery.md has the measurement). Every retry of a message carries the same
`Idempotency-Key`, so a gateway that honours it delivers a message re-sent after a crash once.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from reminder_pipeline.core.errors import ConfigurationError
from reminder_pipeline.delivery.channels import (
    DELIVERED,
    FAILED,
    UNDELIVERABLE,
    Deadline,
    Message,
    PerThread,
    SendOutcome,
)

#: The gateway knows no such recipient (no device, unsubscribed): trying again will not help.
UNDELIVERABLE_STATUSES = frozenset({404, 410})
#: A gateway's answer is read up to this size; the rest is dropped with the connection.
MAX_RESPONSE_BYTES = 64 * 1024
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class PushGatewayChannel:
    name = "push"

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_seconds: float = 10.0,
        concurrency: int = 32,
        ca_file: Path | None = None,
    ) -> None:
        url, token = url.strip(), (token or "").strip() or None  # a secret read from a file ends in a newline
        if token is not None and any(char.isspace() or not char.isprintable() for char in token):
            raise ConfigurationError("PUSH_WEBHOOK_TOKEN must be one line without spaces")
        parts = urlsplit(url)
        try:
            self._port = parts.port
        except ValueError:
            self._port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or self._port == -1:
            raise ConfigurationError("PUSH_WEBHOOK_URL must be an http:// or https:// URL")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None) if self._https else None
        self._token = token
        self.timeout_seconds = timeout_seconds
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="push")
        self._connections = PerThread(self._connect, lambda connection: connection.close())
        self._deadline = Deadline(timeout_seconds)

    def __repr__(self) -> str:  # the URL may carry a credential
        return "PushGatewayChannel(url='[secret]')"

    def send(self, messages: Sequence[Message]) -> list[SendOutcome]:
        return list(self._pool.map(self._post, messages))

    def close(self) -> None:
        self._pool.shutdown(wait=True)  # every request ends by its deadline
        self._connections.close_all()
        self._deadline.close()

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout_seconds, context=self._context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_seconds)

    def _post(self, message: Message) -> SendOutcome:
        body = json.dumps(
            {
                "message_id": message.key,
                "recipient_id": message.recipient_id,
                "recipient_role": message.recipient_role,
                "notification_ids": list(message.notification_ids),
                "kinds": list(message.kinds),
                "language": message.language,
                "title": message.title,
                "body": message.body,
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": message.key,
            "User-Agent": "reminder-pipeline",
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        for attempt in (1, 2):
            connection, _ = self._connections.get()
            reused = connection.sock is not None  # http.client reopens a connection the gateway closed
            with self._deadline.watch(self._connections.socket_of(threading.get_ident())) as cut_off:
                try:
                    connection.request("POST", self._path, body=body, headers=headers)
                    response = connection.getresponse()
                    response.read(MAX_RESPONSE_BYTES)
                    if not response.isclosed():  # a body larger than we read: do not reuse the connection
                        self._connections.drop()
                    return self._outcome(message.key, response.status)
                except Exception as error:  # every way a request can end badly is an outcome, never a crash
                    self._connections.drop()
                    if cut_off() or isinstance(error, TimeoutError):
                        return SendOutcome(
                            message.key, FAILED, f"push: timed out after {self.timeout_seconds:g} s", True
                        )
                    if isinstance(error, _STALE) and reused and attempt == 1:
                        continue  # the gateway closed an idle kept-alive connection: once more on a new one
                    return _failure(message.key, error)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _outcome(key: str, status: int) -> SendOutcome:
        if 200 <= status < 300:
            return SendOutcome(key, DELIVERED)
        if status in UNDELIVERABLE_STATUSES:
            return SendOutcome(key, UNDELIVERABLE, f"push: HTTP {status} (the gateway knows no such recipient)")
        return SendOutcome(key, FAILED, f"push: HTTP {status}")


def _failure(key: str, error: Exception) -> SendOutcome:
    """A failed request, named by its kind only (never its text: it may hold the URL or a header)."""
    if isinstance(error, ConnectionRefusedError):
        return SendOutcome(key, FAILED, "push: could not connect (connection refused)")
    if isinstance(error, ValueError | UnicodeError):  # nothing was sent
        return SendOutcome(key, FAILED, f"push: the request could not be built ({type(error).__name__})")
    if isinstance(error, _STALE):
        return SendOutcome(key, FAILED, "push: the gateway closed the connection", True)
    return SendOutcome(key, FAILED, f"push: {type(error).__name__}", True)
