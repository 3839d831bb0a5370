"""The one interface every delivery channel implements, and what passes through it.

A channel sends a batch of recipient messages with bounded concurrency over reused connections and
answers one :class:`SendOutcome` per message, never raising for a message that failed. Its error
texts are safe to store and show: a status code, an exception class, a timeout, never an address, a
URL, a token or the message text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

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
