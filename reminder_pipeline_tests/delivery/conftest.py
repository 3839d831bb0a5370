"""Real peers on loopback for delivery: an HTTP push gateway (keep-alive; it can answer 200, 500 or
hang) and an SMTP relay (aiosmtpd), plus builders for recipients and their notifications."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message as EmailMessage
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from reminder_pipeline.core.database import connect, create_engine
from reminder_pipeline.delivery.repository import Window
from reminder_pipeline.delivery.service import ChannelSettings, DeliveryPolicy, configured_channels, deliver_due
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.http_peers import HttpPeer

DELIVERY_SETTINGS = (
    "PUSH_WEBHOOK_URL",
    "PUSH_WEBHOOK_TOKEN",
    "NOTIFY_SMTP_HOST",
    "NOTIFY_SMTP_PORT",
    "NOTIFY_SMTP_SECURITY",
    "NOTIFY_SMTP_USER",
    "NOTIFY_SMTP_PASSWORD",
    "NOTIFY_SMTP_CA_FILE",
    "NOTIFY_EMAIL_FROM",
    "NOTIFICATION_CHANNELS",
    "NOTIFICATION_QUIET_HOURS",
    "NOTIFICATION_EXPIRE_HOURS",
    "SLACK_WEBHOOK_URL",
    "ALERT_SMTP_HOST",
    "ALERT_EMAIL_TO",
)

OSLO = ZoneInfo("Europe/Oslo")


def next_oslo(hour: int, minute: int = 0) -> dt.datetime:
    """The next moment after now that is `hour:minute` in Oslo: a deliverer's clock, later than any
    row the test just created, at an hour of the test's choosing."""
    now = dt.datetime.now(OSLO)
    moment = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return moment if moment > now else moment + dt.timedelta(days=1)


#: 12:00 in Oslo: outside the default quiet hours (21:00-08:00).
NOON = next_oslo(12)


@pytest.fixture(autouse=True)
def no_ambient_delivery_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DELIVERY_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gateway() -> Iterator[HttpPeer]:
    """The push gateway: records every POST, answers 200 unless told otherwise."""
    with HttpPeer(keep_alive=True) as peer:
        yield peer


@dataclass
class SmtpRelay:
    """aiosmtpd on 127.0.0.1: records what it accepts, refuses recipients it is told to."""

    host: str
    port: int
    refuse: set[str] = field(default_factory=set)
    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append(message_from_bytes(envelope.content, policy=email_policy.default))
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"


@pytest.fixture
def smtp_relay() -> Iterator[SmtpRelay]:
    from aiosmtpd.controller import Controller

    from reminder_pipeline_tests.ui_process import free_port

    relay = SmtpRelay("127.0.0.1", free_port())
    controller = Controller(relay, hostname=relay.host, port=relay.port)
    controller.start()
    try:
        yield relay
    finally:
        controller.stop()


@pytest.fixture
def email_relay(smtp_relay: SmtpRelay, monkeypatch: pytest.MonkeyPatch) -> SmtpRelay:
    """The relay, configured as the deployment's e-mail channel (plain SMTP on loopback)."""
    use_smtp(monkeypatch, smtp_relay)
    return smtp_relay


def use_smtp(monkeypatch: pytest.MonkeyPatch, relay: SmtpRelay, security: str = "none") -> None:
    monkeypatch.setenv("NOTIFY_SMTP_HOST", relay.host)
    monkeypatch.setenv("NOTIFY_SMTP_PORT", str(relay.port))
    monkeypatch.setenv("NOTIFY_SMTP_SECURITY", security)
    monkeypatch.setenv("NOTIFY_EMAIL_FROM", "reminders@example.invalid")


@dataclass
class Recipients:
    """A coordinator and mentors with due notifications, built in the test's database."""

    db: sa.Connection
    coordinator: uuid.UUID = field(init=False)

    def __post_init__(self) -> None:
        self.coordinator = factories.coordinator(self.db)

    def mentor(self, *, email: str | None = "mentor@example.invalid", full_name: str = "Ola Nordmann") -> uuid.UUID:
        return factories.mentor(self.db, self.coordinator, full_name=full_name, email=email)

    def reminders(self, mentor: uuid.UUID, count: int = 1, days: int = 12) -> list[int]:
        """`count` assignment reminders for `mentor`, each on an assignment of its own."""
        ids = []
        for _ in range(count):
            assignment = factories.assignment(self.db, mentor, assigned_on=dt.date(2026, 1, 1))
            ids.append(
                notification(
                    self.db,
                    recipient_id=mentor,
                    assignment_id=assignment,
                    reference_date=dt.date(2026, 11, 1),
                    payload={"days_without_contact": days},
                )
            )
        return ids


@pytest.fixture
def recipients(db: sa.Connection) -> Recipients:
    return Recipients(db)


def notification(
    db: sa.Connection,
    *,
    recipient_id: uuid.UUID,
    recipient_role: str = "mentor",
    kind: str = "assignment_follow_up_reminder",
    assignment_id: uuid.UUID | None = None,
    reference_date: dt.date | None = None,
    payload: dict | None = None,
    created_at: dt.datetime | None = None,
) -> int:
    if assignment_id is None and kind.startswith("assignment_follow_up"):
        # A reminder is about an open contact gap: on an assignment of its own (the recipient's is
        # beside the point here), or it would count as ended and expire.
        assignment_id = factories.assignment(
            db, factories.mentor(db, factories.coordinator(db)), assigned_on=dt.date(2026, 1, 1)
        )
    return db.execute(
        sa.text(
            "INSERT INTO public.notifications (source_id, kind, recipient_role, recipient_id, assignment_id,"
            " reference_date, payload, created_at, next_attempt_at)"
            " VALUES (coalesce(:assignment, :key), :kind, :role, :recipient, :assignment, :reference,"
            " CAST(:payload AS jsonb),"
            " coalesce(CAST(:created AS timestamptz), now()), coalesce(CAST(:created AS timestamptz), now()))"
            " RETURNING id"
        ),
        {
            "key": uuid.uuid4(),  # the source of a notification about no assignment
            "kind": kind,
            "role": recipient_role,
            "recipient": recipient_id,
            "assignment": assignment_id,
            "reference": reference_date,
            "payload": json.dumps(payload or {}),
            "created": created_at,
        },
    ).scalar_one()


def rows(db: sa.Connection) -> dict[int, sa.Row]:
    return {
        row.id: row
        for row in db.execute(
            sa.text(
                "SELECT id, status, attempts, channel, message_key::text AS message_key, last_error, delivered_at,"
                " next_attempt_at, claimed_by FROM public.notifications ORDER BY id"
            )
        )
    }


def policy(channels: tuple[str, ...] = ("push",), **overrides: object) -> DeliveryPolicy:
    values: dict = {"window": Window(now=NOON, quiet_hours=(dt.time(21), dt.time(8)))}
    values.update(overrides)
    return DeliveryPolicy(channels=channels, **values)


def deliver(
    database_url: str,
    delivery_policy: DeliveryPolicy | None = None,
    *,
    push_url: str | None = None,
    name: str | None = None,
    timeout_seconds: float = 2.0,
    **channel_settings: object,
):
    """One deliverer, as a job run does it: a session named for this delivery alone, the configured
    channels."""
    engine = create_engine(database_url, application_name=name or f"test-deliverer-{uuid.uuid4().hex[:8]}")
    try:
        with connect(database_url, autocommit=True, engine=engine) as connection:
            settings = ChannelSettings(timeout_seconds=timeout_seconds, push_webhook_url=push_url, **channel_settings)
            with configured_channels(connection, settings) as channels:
                return deliver_due(connection, channels, delivery_policy or policy(tuple(channels)))
    finally:
        engine.dispose()
