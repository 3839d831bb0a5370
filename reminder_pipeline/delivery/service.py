"""Deliver what is due: release what a dead deliverer left sending, expire the stale, then claim,
compose, send and record, batch after batch.

No Dagster here: the `notification_delivery` job calls :func:`deliver_due` with the channels the
deployment configures, and tests and the benchmark call it directly. Batches start small and
double (50, 100, ... up to 1,000 recipients), and a batch that delivered nothing while a channel
failed ends the run early: a gateway that is down costs one small batch of attempts per run, not
the whole backlog's.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from reminder_pipeline.core import settings
from reminder_pipeline.core.backoff import Backoff
from reminder_pipeline.core.errors import ConfigurationError, DeliveryNotConfigured
from reminder_pipeline.core.vault import read_secret
from reminder_pipeline.delivery import repository
from reminder_pipeline.delivery import settings as delivery_settings
from reminder_pipeline.delivery.channels import (
    DELIVERED,
    FAILED,
    UNDELIVERABLE,
    DeliveryChannel,
    Message,
    SendOutcome,
)
from reminder_pipeline.delivery.channels.email import SmtpChannel
from reminder_pipeline.delivery.channels.push import PushGatewayChannel
from reminder_pipeline.delivery.messages import compose_messages
from reminder_pipeline.delivery.repository import Window
from reminder_pipeline.delivery.settings import DeliverySettings

#: Vault secret names; each is read when a run starts, before the environment variable of the same name.
VAULT_PUSH_WEBHOOK_URL = "push_webhook_url"
VAULT_PUSH_WEBHOOK_TOKEN = "push_webhook_token"
VAULT_SMTP_PASSWORD = "notify_smtp_password"
#: A claim that comes back empty while notifications are due is tried again this many times.
CONTENDED_CLAIMS = 5


@dataclass(frozen=True)
class DeliveryPolicy:
    #: The channels offered, in the order a message tries them (only configured ones).
    channels: tuple[str, ...]
    window: Window = field(default_factory=Window)
    expire_hours: int = 72
    backoff: Backoff = field(default_factory=lambda: Backoff(60.0, 3600.0, 10))
    first_batch: int = 50
    max_batch: int = 1000


@dataclass
class DeliveryResult:
    """What a delivery did, in notifications (a message carries one or more) and messages."""

    claimed: int = 0
    messages: int = 0
    messages_delivered: int = 0
    delivered: int = 0
    retrying: int = 0
    gave_up: int = 0
    undeliverable: int = 0
    #: Expired unsent because they were too old: lost, like the ones that gave up.
    expired_too_old: int = 0
    #: Expired because their contact gap ended before delivery: nothing lost.
    expired_no_longer_due: int = 0
    batches: int = 0
    #: Left `sending` by a deliverer that died: released to be sent again under the same key.
    released_orphans: int = 0
    #: A batch delivered nothing while a channel failed: the rest waits for the next run.
    stopped_early: bool = False
    #: Waiting, and held back by their recipient's quiet hours when the run ended.
    held_for_quiet_hours: int = 0
    delivered_by_channel: Counter[str] = field(default_factory=Counter)
    #: Safe error texts ("push: HTTP 500") by how many messages got them.
    errors: Counter[str] = field(default_factory=Counter)
    gave_up_ids: list[int] = field(default_factory=list)
    undeliverable_ids: list[int] = field(default_factory=list)
    #: The ones that expired too old.
    expired_ids: list[int] = field(default_factory=list)

    @property
    def top_errors(self) -> str | None:
        """The three most common error texts with their counts, e.g. `push: HTTP 503 (12)`."""
        return "; ".join(f"{text} ({count})" for text, count in self.errors.most_common(3)) or None

    @property
    def lost(self) -> int:
        """Notifications that will not reach anyone without an operator: gave up, or too old."""
        return self.gave_up + self.expired_too_old


def deliver_due(
    connection: sa.Connection,
    channels: Mapping[str, DeliveryChannel],
    policy: DeliveryPolicy,
    *,
    rng: Callable[[], float] = random.random,
    max_batches: int = 100_000,
    result: DeliveryResult | None = None,
) -> DeliveryResult:
    """Deliver every notification that is due. `connection` is autocommit and stays open for the
    whole delivery: its session's name is what marks this deliverer's claims as alive. `result` is
    filled as batches are recorded, so a caller that passes one still knows what was done (and
    lost) when a later batch fails."""
    result = result if result is not None else DeliveryResult()
    released, gave_up = repository.release_orphans(connection, policy.window, policy.backoff.max_attempts)
    result.released_orphans = len(released)
    result.gave_up += len(gave_up)
    result.gave_up_ids += gave_up
    expired = repository.expire_stale(connection, policy.window, policy.expire_hours)
    result.expired_ids = expired.too_old
    result.expired_too_old, result.expired_no_longer_due = len(expired.too_old), len(expired.no_longer_due)
    if not policy.channels:
        due = repository.backlog(connection, policy.window, policy.expire_hours).due
        if due:
            raise DeliveryNotConfigured(
                f"{due} notification(s) are due and no delivery channel is configured"
                " (PUSH_WEBHOOK_URL, NOTIFY_SMTP_HOST): they wait, nothing was claimed"
            )
        return result

    def record(claimed: pd.DataFrame, outcomes: Outcomes) -> bool:
        """Write a sent batch's outcomes; True when the channel looks down (nothing delivered, some failed)."""
        attempts = claimed.groupby("message_key")["attempts"].max()
        rows = [
            (
                key,
                sent.status,
                sent.channel,
                sent.error,
                _delay(policy.backoff, int(attempts[key]), sent.status, rng),
                sent.ambiguous,
            )
            for key, sent in outcomes.items()
        ]
        recorded = repository.record(connection, policy.window, rows, policy.backoff.max_attempts)
        _add_batch(result, claimed, outcomes, recorded)
        statuses = {sent.status for sent in outcomes.values()}
        return DELIVERED not in statuses and FAILED in statuses

    # While one batch is being sent (in a thread of its own), the next is claimed and composed and
    # the one before is recorded: the database and the peers work at the same time. The first batch
    # of a run goes alone, as a probe: a channel that is down costs that one small batch.
    size, contended = policy.first_batch, 0
    in_flight: tuple[pd.DataFrame, Future[Outcomes]] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="delivery-batch") as sender:
        for _ in range(max_batches):
            claimed = repository.claim(connection, policy.window, size)
            messages = None if claimed.empty else compose_messages(claimed, policy.channels)
            if in_flight is not None:
                previous, sending = in_flight
                outcomes = sending.result()
                in_flight = None
                if messages is not None:
                    in_flight = (claimed, sender.submit(send_messages, messages, channels))
                    size = min(size * 2, policy.max_batch)
                if record(previous, outcomes):
                    result.stopped_early = True
                    break
                if in_flight is not None:
                    continue
            if claimed.empty:
                # Empty while rows are due: another deliverer was claiming the same recipients at
                # this very moment (its claim is one short statement), or what is left belongs to
                # recipients this run has messaged already. Look again, a few times at most.
                contended += 1
                if (
                    contended > CONTENDED_CLAIMS
                    or not repository.backlog(connection, policy.window, policy.expire_hours).due
                ):
                    break
                time.sleep(0.05 * contended)
                continue
            sending = sender.submit(send_messages, messages, channels)
            if result.batches == 0:  # the probe
                if record(claimed, sending.result()):
                    result.stopped_early = True
                    break
            else:
                in_flight = (claimed, sending)
            size = min(size * 2, policy.max_batch)
        if in_flight is not None:  # claimed and sent: record it whatever ended the loop
            previous, sending = in_flight
            record(previous, sending.result())
    result.held_for_quiet_hours = repository.held_for_quiet_hours(connection, policy.window)
    return result


@dataclass(frozen=True)
class Sent:
    """What became of one message: its outcome and the channel that gave it."""

    status: str
    channel: str | None
    error: str | None = None
    ambiguous: bool = False


#: Per message key.
Outcomes = dict[str, Sent]


def _delay(backoff: Backoff, attempts: int, status: str, rng: Callable[[], float]) -> float:
    return backoff.delay_after(attempts, rng) if status == FAILED else 0.0


def _send_safely(channel: DeliveryChannel, messages: list[Message]) -> list[SendOutcome]:
    """A channel answers one outcome per message; if it breaks instead (a bug), every message of the
    call is a failed attempt that may have gone out, so the batch is still recorded, never left sending."""
    try:
        outcomes = channel.send(messages)
        if len(outcomes) == len(messages):
            return outcomes
        error = "answered for the wrong number of messages"
    except Exception as failure:
        error = f"{type(failure).__name__} in the channel"
    return [SendOutcome(message.key, FAILED, f"{channel.name}: {error}", True) for message in messages]


def send_messages(messages: pd.DataFrame, channels: Mapping[str, DeliveryChannel]) -> Outcomes:
    """Each message through the first channel of its route, then the next for those the channel
    answered "no such recipient"."""
    outcomes: Outcomes = {}
    pending: list[tuple[Message, tuple[str, ...]]] = []
    for message, route, reason in zip(messages["message"], messages["route"], messages["reason"], strict=True):
        if route:
            pending.append((message, route))
        else:
            outcomes[message.key] = Sent(UNDELIVERABLE, None, reason)
    step = 0
    while pending:
        by_channel: dict[str, list[tuple[Message, tuple[str, ...]]]] = {}
        for message, route in pending:
            by_channel.setdefault(route[step], []).append((message, route))
        pending = []
        for name, items in by_channel.items():
            sent = _send_safely(channels[name], [message for message, _ in items])
            for (message, route), outcome in zip(items, sent, strict=True):
                if outcome.status == UNDELIVERABLE and step + 1 < len(route):
                    pending.append((message, route))
                else:
                    outcomes[message.key] = Sent(outcome.status, name, outcome.error, outcome.ambiguous)
        step += 1
    return outcomes


def _add_batch(
    result: DeliveryResult,
    claimed: pd.DataFrame,
    outcomes: Outcomes,
    recorded: repository.Recorded,
) -> None:
    result.batches += 1
    result.claimed += len(claimed)
    result.messages += len(outcomes)
    result.delivered += recorded.count(DELIVERED)
    result.retrying += recorded.count(FAILED)
    result.gave_up += recorded.count("gave_up")
    result.undeliverable += recorded.count(UNDELIVERABLE)
    result.gave_up_ids += recorded.ids_by_outcome.get("gave_up", [])
    result.undeliverable_ids += recorded.ids_by_outcome.get(UNDELIVERABLE, [])
    for sent in outcomes.values():
        if sent.status == DELIVERED:
            result.messages_delivered += 1
            result.delivered_by_channel[sent.channel or "-"] += 1
        elif sent.error:
            result.errors[sent.error] += 1


# -- the deployment's channels ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelSettings:
    timeout_seconds: float = 10.0
    push_concurrency: int = 32
    email_concurrency: int = 4
    #: Overrides for tests; normally unset (Vault, then the environment).
    push_webhook_url: str | None = None


def push_webhook_url(
    connection: sa.Connection | None, current: DeliverySettings, override: str | None = None
) -> str | None:
    """The push gateway's URL: the resource's override (tests), Vault, then `PUSH_WEBHOOK_URL`."""
    return override or read_secret(connection, VAULT_PUSH_WEBHOOK_URL) or settings.secret(current.push_webhook_url)


def delivery_configured(connection: sa.Connection | None, current: DeliverySettings) -> bool:
    """Whether any delivery channel is configured now (the push gateway, or `NOTIFY_SMTP_HOST`): reads
    only and builds nothing, so a sensor may ask it on every tick."""
    return bool(push_webhook_url(connection, current) or current.notify_smtp_host)


@contextmanager
def configured_channels(
    connection: sa.Connection | None, config: ChannelSettings, current: DeliverySettings | None = None
) -> Iterator[dict[str, DeliveryChannel]]:
    """The channels this deployment configures, by name, built from the run's settings (`current`,
    resolved once by the run's resource; secrets from Vault first) and closed on the way out. Empty
    when none is configured."""
    current = current or delivery_settings.load()
    built: dict[str, DeliveryChannel] = {}
    url = push_webhook_url(connection, current, config.push_webhook_url)
    try:
        if url:
            built["push"] = PushGatewayChannel(
                url,
                token=read_secret(connection, VAULT_PUSH_WEBHOOK_TOKEN) or settings.secret(current.push_webhook_token),
                timeout_seconds=config.timeout_seconds,
                concurrency=config.push_concurrency,
            )
        if current.notify_smtp_host:
            if not current.notify_email_from:
                raise ConfigurationError("NOTIFY_SMTP_HOST is set but NOTIFY_EMAIL_FROM is not: e-mail needs a sender")
            built["email"] = SmtpChannel(
                current.notify_smtp_host,
                current.notify_smtp_port,
                current.notify_email_from,
                security=current.notify_smtp_security,
                username=current.notify_smtp_user,
                password=read_secret(connection, VAULT_SMTP_PASSWORD) or settings.secret(current.notify_smtp_password),
                ca_file=current.notify_smtp_ca_file,
                timeout_seconds=config.timeout_seconds,
                concurrency=config.email_concurrency,
            )
        yield built
    finally:
        for channel in built.values():
            channel.close()


def offered(configured: Mapping[str, DeliveryChannel], current: DeliverySettings) -> tuple[str, ...]:
    """The configured channels in the deployment's order (`NOTIFICATION_CHANNELS`); naming one
    that is not configured is an error, not a silent skip."""
    order = current.delivery_channel_order()
    if current.notification_channels:
        missing = [name for name in order if name not in configured]
        if missing:
            raise ConfigurationError(
                f"NOTIFICATION_CHANNELS names {', '.join(missing)}, which is not configured"
                " (PUSH_WEBHOOK_URL for push, NOTIFY_SMTP_HOST for email)"
            )
    return tuple(name for name in order if name in configured)
