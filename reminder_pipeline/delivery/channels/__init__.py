"""The one interface every delivery channel implements, and what passes through it.

A channel sends a batch of recipient messages with bounded concurrency over reused connections and
answers one :class:`SendOutcome` per message, never raising for a message that failed. Its error
texts are safe to store and show: a status code, an exception class, a timeout, never an address, a
URL, a token or the message text. Each message has a deadline of its own (:class:`Deadline`), so a
peer that trickles bytes cannot hold a worker longer than that.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

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
    #: The message may have reached the peer (a timeout, a connection lost mid-request): its retry
    #: must be the same message under the same key. A definite refusal is not ambiguous.
    ambiguous: bool = False


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
        self._by_thread: dict[int, Connection] = {}
        self._lock = threading.Lock()

    def socket_of(self, thread: int) -> Callable[[], Any]:
        """For another thread (a deadline's watcher): the socket of `thread`'s connection, if open."""
        return lambda: getattr(self._by_thread.get(thread), "sock", None)

    def get(self) -> tuple[Connection, bool]:
        """This thread's connection, and whether it was open already (reused)."""
        me = threading.get_ident()
        connection = self._by_thread.get(me)
        if connection is not None:
            return connection, True
        connection = self._open()
        with self._lock:
            self._by_thread[me] = connection
        return connection, False

    def drop(self) -> None:
        """Close this thread's connection (after an error); the next message opens a new one."""
        with self._lock:
            connection = self._by_thread.pop(threading.get_ident(), None)
        if connection is not None:
            self._close(connection)

    def close_all(self) -> None:
        with self._lock:
            connections, self._by_thread = list(self._by_thread.values()), {}
        for connection in connections:
            self._close(connection)


class Deadline:
    """A whole request's time limit, however slowly a peer trickles bytes: socket timeouts bound
    each read, this bounds their sum. A watcher thread shuts down the socket of a request that is
    past its time, which ends the worker's wait with an error at once."""

    POLL_SECONDS = 0.2

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._watched: dict[int, tuple[float, Callable[[], Any]]] = {}
        self._expired: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @contextmanager
    def watch(self, socket_of: Callable[[], Any]) -> Iterator[Callable[[], bool]]:
        """Around one request of this thread; yields "has the deadline cut it off?"."""
        me = threading.get_ident()
        with self._lock:
            self._watched[me] = (time.monotonic() + self.seconds, socket_of)
            self._expired.discard(me)
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="delivery-deadline", daemon=True)
                self._watcher.start()
        try:
            yield lambda: me in self._expired
        finally:
            with self._lock:
                self._watched.pop(me, None)

    def _watch(self) -> None:
        while not self._stop.wait(self.POLL_SECONDS):
            now = time.monotonic()
            with self._lock:
                late = [(me, of) for me, (due, of) in self._watched.items() if due < now and me not in self._expired]
                self._expired.update(me for me, _ in late)
            for _, socket_of in late:
                sock = socket_of()
                if isinstance(sock, socket.socket):
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
