"""The one interface every delivery channel implements, and what passes through it.

A channel sends a batch of recipient messages with bounded concurrency over reused connections and
answers one :class:`SendOutcome` per message, never raising for a message that failed. Its error
texts are safe to store and show: a status code, an exception class, a timeout, never an address, a
URL, a token or the message text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

DELIVERED = "delivered"
#: Transient: retried after backoff until the last attempt.
FAILED = "failed"
#: Permanent for this channel (the gateway knows no such recipient, the relay refuses the address):
#: the next channel of the recipient's route is tried, else the message is undeliverable.
UNDELIVERABLE = "undeliverable"

Status = Literal["delivered", "failed", "undeliverable"]


@dataclass(frozen=True)
class Message:
    """One recipient's digest in one run: every notification of theirs that was due."""

    #: The Idempotency-Key: the same for every retry of this message.
    key: str
    recipient_role: str
    recipient_id: str
    notification_ids: tuple[int, ...]
    kinds: tuple[str, ...]
    language: str
    title: str
    body: str
    signature: str
    #: The e-mail address, when the recipient has one (push needs none: the gateway knows the device).
    email: str | None = None

    def __repr__(self) -> str:  # never the address or the text, in a traceback or a log line
        return f"Message(key={self.key!r}, recipient={self.recipient_role}:{self.recipient_id})"


@dataclass(frozen=True)
class SendOutcome:
    key: str
    status: Status
    error: str | None = None


class DeliveryChannel(Protocol):
    name: str

    def send(self, messages: Sequence[Message]) -> list[SendOutcome]:
        """Send each message once; one outcome per message, in order."""

    def close(self) -> None:
        """Release connections and worker threads."""


Connection = TypeVar("Connection")


class PerThread(Generic[Connection]):
    """One connection per worker thread, opened on first use, reused for every later message of that
    worker, and all closed together when the channel closes."""

    def __init__(self, open_: Callable[[], Connection], close: Callable[[Connection], None]) -> None:
        self._open, self._close = open_, close
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    def get(self) -> tuple[Connection, bool]:
        """This thread's connection, and whether it was open already (reused)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        connection = self._open()
        self._local.connection = connection
        with self._lock:
            self._all.append(connection)
        return connection, False

    def drop(self) -> None:
        """Close this thread's connection (after an error); the next message opens a new one."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            return
        self._local.connection = None
        with self._lock:
            if connection in self._all:
                self._all.remove(connection)
        self._close(connection)

    def close_all(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            self._close(connection)
