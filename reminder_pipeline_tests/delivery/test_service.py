"""Delivery against real peers on loopback: the push gateway (200, 500, 404, hanging) and aiosmtpd."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
import uuid

import pytest
import sqlalchemy as sa

from reminder_pipeline.core.backoff import Backoff
from reminder_pipeline.delivery import repository
from reminder_pipeline.delivery.messages import NO_ADDRESS, NO_CHANNEL
from reminder_pipeline.delivery.repository import Window
from reminder_pipeline.delivery.service import DeliveryNotConfigured
from reminder_pipeline_tests.delivery.conftest import (
    NOON,
    Recipients,
    SmtpRelay,
    deliver,
    next_oslo,
    notification,
    policy,
    rows,
)
from reminder_pipeline_tests.http_peers import HttpPeer

pytestmark = pytest.mark.database


def _preferences(db: sa.Connection, mentor: object, **values: object) -> None:
    columns = ", ".join(["recipient_role", "recipient_id", *values])
    placeholders = ", ".join([":role", ":id", *(f":{name}" for name in values)])
    db.execute(
        sa.text(f"INSERT INTO public.notification_preferences ({columns}) VALUES ({placeholders})"),
        {"role": "mentor", "id": mentor, **values},
    )


def _make_due(db: sa.Connection) -> None:
    db.execute(sa.text("UPDATE public.notifications SET next_attempt_at = now() WHERE status = 'failed'"))


def test_one_message_per_recipient_lists_every_due_notification(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSH_WEBHOOK_TOKEN", "t0ken-s3cret")
    ola = recipients.mentor(full_name="Ola Nordmann", email="ola@example.invalid")
    kari = recipients.mentor(full_name="Kari Nordmann", email="kari@example.invalid")
    three = recipients.reminders(ola, 3, days=12)
    one = recipients.reminders(kari, 1, days=30)
    notification(
        db,
        recipient_id=recipients.coordinator,
        recipient_role="coordinator",
        kind="assignment_follow_up_escalation",
        payload={"days_without_contact": 30},
    )

    result = deliver(database_url, push_url=gateway.url)

    assert (result.claimed, result.messages, result.delivered, result.messages_delivered) == (5, 3, 5, 3)
    by_recipient = {request.json()["recipient_id"]: request for request in gateway.requests}
    assert len(gateway.requests) == 3 and set(by_recipient) == {str(ola), str(kari), str(recipients.coordinator)}
    message = by_recipient[str(ola)]
    body = message.json()
    assert sorted(body["notification_ids"]) == three
    assert (body["recipient_role"], body["kinds"], body["language"]) == (
        "mentor",
        ["assignment_follow_up_reminder"],
        "nb",
    )
    assert body["title"] == "Husk å følge opp"
    assert body["body"].startswith("Hei Ola!") and "3 av oppdragene dine" in body["body"] and "12 dager" in body["body"]
    assert message.headers["Idempotency-Key"] == body["message_id"]
    assert message.headers["Authorization"] == "Bearer t0ken-s3cret"
    assert "Nordmann" not in message.body.decode() and "@" not in message.body.decode()  # first name only, no address
    assert by_recipient[str(kari)].json()["notification_ids"] == one
    stored = rows(db)
    assert {row.status for row in stored.values()} == {"delivered"}
    assert {stored[i].message_key for i in three} == {body["message_id"]}
    assert all(row.delivered_at is not None and row.channel == "push" and row.attempts == 1 for row in stored.values())
    assert deliver(database_url, push_url=gateway.url).claimed == 0 and len(gateway.requests) == 3  # never twice


def test_a_gateway_answering_500_is_retried_after_backoff(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    ids = recipients.reminders(recipients.mentor(), 2)
    gateway.statuses = [500]
    first = deliver(database_url, push_url=gateway.url)
    assert (first.retrying, first.delivered, first.stopped_early) == (2, 0, True)
    assert first.errors == {"push: HTTP 500": 1}
    failed = rows(db)[ids[0]]
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 1, "push: HTTP 500")
    assert failed.next_attempt_at > NOON  # backoff: not due yet
    assert failed.message_key is None  # refused for certain: the next attempt is a message of its own

    assert deliver(database_url, push_url=gateway.url).claimed == 0 and len(gateway.requests) == 1
    _make_due(db)
    assert deliver(database_url, push_url=gateway.url).delivered == 2
    assert sorted(gateway.requests[1].json()["notification_ids"]) == ids
    assert {(row.status, row.attempts) for row in rows(db).values()} == {("delivered", 2)}


def test_a_message_that_may_have_gone_out_is_sent_again_as_it_was_under_the_same_key(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    """A timeout leaves it open whether the gateway got the message: the retry is the same message,
    same key, same notifications, and what became due meanwhile waits for a message of its own."""
    mentor = recipients.mentor()
    first = recipients.reminders(mentor, 2)
    gateway.delay_seconds = 3
    assert deliver(database_url, push_url=gateway.url, timeout_seconds=1).retrying == 2
    (timed_out,) = gateway.requests
    later = recipients.reminders(mentor, 1)
    gateway.delay_seconds = 0
    _make_due(db)

    again = deliver(database_url, push_url=gateway.url)
    assert (again.messages, again.delivered) == (1, 2)  # one message a run
    retried = gateway.requests[-1]
    assert retried.headers["Idempotency-Key"] == timed_out.headers["Idempotency-Key"]
    assert retried.body == timed_out.body
    assert deliver(database_url, push_url=gateway.url).delivered == 1  # the next run: the newer one
    assert gateway.requests[-1].json()["notification_ids"] == later
    assert sorted(first) == sorted(retried.json()["notification_ids"])


def test_a_gateway_that_hangs_costs_one_timeout_and_is_a_failed_attempt(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    recipients.reminders(recipients.mentor(), 1)
    gateway.delay_seconds = 10
    started = time.monotonic()
    result = deliver(database_url, push_url=gateway.url, timeout_seconds=1)
    elapsed = time.monotonic() - started
    assert result.retrying == 1 and result.errors == {"push: timed out after 1 s": 1}
    assert elapsed < 5, f"a hanging gateway held the deliverer for {elapsed:.1f} s"


def test_after_the_last_attempt_a_notification_gives_up(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    (only,) = recipients.reminders(recipients.mentor(), 1)
    gateway.status = 503
    two_attempts = policy(backoff=Backoff(1, 1, max_attempts=2))
    assert deliver(database_url, two_attempts, push_url=gateway.url).retrying == 1
    _make_due(db)
    result = deliver(database_url, two_attempts, push_url=gateway.url)
    assert (result.gave_up, result.gave_up_ids, result.lost) == (1, [only], 1)
    row = rows(db)[only]
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, None)
    assert deliver(database_url, two_attempts, push_url=gateway.url).claimed == 0  # it waits for an operator

    assert repository.retry_gave_up(db, Window(now=NOON)) == [only]
    gateway.status = 200
    assert deliver(database_url, two_attempts, push_url=gateway.url).delivered == 1
    assert [request.json()["notification_ids"] for request in gateway.requests] == [[only]] * 3


def test_a_failing_gateway_costs_one_small_batch_per_run(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    for _ in range(10):
        recipients.reminders(recipients.mentor(), 1)
    gateway.status = 500
    result = deliver(database_url, policy(first_batch=2, max_batch=4), push_url=gateway.url)
    assert (result.batches, result.messages, result.stopped_early) == (1, 2, True)
    assert repository.status_counts(db) == {"failed": 2, "pending": 8}


def test_errors_are_stored_without_the_url_or_its_secret(
    db: sa.Connection, database_url: str, recipients: Recipients
) -> None:
    recipients.reminders(recipients.mentor(), 1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/push?token=s3cret"
    result = deliver(database_url, push_url=url)
    (row,) = rows(db).values()
    assert row.last_error == "push: could not connect (connection refused)"
    assert "s3cret" not in json.dumps(list(result.errors))


def test_quiet_hours_hold_messages_until_they_end_and_a_recipient_may_choose_none(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    sleeper, night_owl = recipients.mentor(), recipients.mentor()
    recipients.reminders(sleeper, 1)
    recipients.reminders(night_owl, 1)
    _preferences(db, night_owl, quiet_hours_start=dt.time(0), quiet_hours_end=dt.time(0))  # none

    late = next_oslo(23, 30)
    at_night = deliver(database_url, policy(window=Window(now=late)), push_url=gateway.url)
    assert (at_night.delivered, at_night.held_for_quiet_hours) == (1, 1)
    assert [request.json()["recipient_id"] for request in gateway.requests] == [str(night_owl)]
    assert repository.status_counts(db) == {"delivered": 1, "pending": 1}  # waiting, not dropped

    early = next_oslo(7, 59)
    assert deliver(database_url, policy(window=Window(now=early)), push_url=gateway.url).claimed == 0
    assert deliver(database_url, policy(window=Window(now=next_oslo(8))), push_url=gateway.url).delivered == 1
    assert gateway.requests[-1].json()["recipient_id"] == str(sleeper)


def test_a_recipients_own_quiet_hours_apply(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    mentor = recipients.mentor()
    recipients.reminders(mentor, 1)
    _preferences(db, mentor, quiet_hours_start=dt.time(11), quiet_hours_end=dt.time(13))
    assert deliver(database_url, push_url=gateway.url).claimed == 0  # noon is quiet for them
    assert deliver(database_url, policy(window=Window(now=next_oslo(13))), push_url=gateway.url).delivered == 1


def test_push_switched_off_goes_by_email_and_a_gateway_404_falls_back_to_email(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    gateway: HttpPeer,
    email_relay: SmtpRelay,
) -> None:
    no_push = recipients.mentor(email="no-push@example.invalid")
    no_device = recipients.mentor(email="no-device@example.invalid")
    recipients.reminders(no_push, 2)
    recipients.reminders(no_device, 1)
    _preferences(db, no_push, push_enabled=False)
    gateway.status = 404

    result = deliver(database_url, policy(("push", "email")), push_url=gateway.url)

    assert (result.delivered, result.undeliverable) == (3, 0)
    assert result.delivered_by_channel == {"email": 2}
    assert [request.json()["recipient_id"] for request in gateway.requests] == [str(no_device)]
    assert sorted(rcpt for _, (rcpt,) in email_relay.envelopes) == [
        "no-device@example.invalid",
        "no-push@example.invalid",
    ]
    assert {row.channel for row in rows(db).values()} == {"email"}


def test_without_an_address_or_any_channel_switched_on_a_message_is_undeliverable(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    email_relay: SmtpRelay,
) -> None:
    without_address = recipients.mentor(email=None)
    opted_out = recipients.mentor()
    reachable = recipients.mentor(email="reachable@example.invalid")
    (no_address_id,) = recipients.reminders(without_address, 1)
    (opted_out_id,) = recipients.reminders(opted_out, 1)
    recipients.reminders(reachable, 1)
    _preferences(db, opted_out, email_enabled=False, push_enabled=False)

    result = deliver(database_url, policy(("email",)))

    assert (result.delivered, result.undeliverable) == (1, 2)
    stored = rows(db)
    assert (stored[no_address_id].status, stored[no_address_id].last_error) == ("undeliverable", NO_ADDRESS)
    assert (stored[opted_out_id].status, stored[opted_out_id].last_error) == ("undeliverable", NO_CHANNEL)
    assert [rcpt for _, (rcpt,) in email_relay.envelopes] == ["reachable@example.invalid"]


def test_english_when_the_recipient_chose_it(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    mentor = recipients.mentor(full_name="Sam Smith")
    recipients.reminders(mentor, 2, days=15)
    _preferences(db, mentor, language="en")
    deliver(database_url, push_url=gateway.url)
    body = gateway.requests[0].json()
    assert (body["language"], body["title"]) == ("en", "Time to follow up")
    assert body["body"].startswith("Hi Sam,") and "2 of your assignments" in body["body"]


def test_stale_notifications_expire_instead_of_being_sent(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    mentor = recipients.mentor()
    (old,) = [notification(db, recipient_id=mentor, created_at=NOON - dt.timedelta(hours=73))]
    (resolved,) = recipients.reminders(mentor, 1)
    db.execute(
        sa.text(
            "UPDATE public.assignments SET last_contact_date = '2026-11-20' WHERE id ="
            " (SELECT assignment_id FROM public.notifications WHERE id = :id)"
        ),
        {"id": resolved},
    )
    (gone,) = recipients.reminders(mentor, 1)  # about an assignment deleted since (no foreign key holds it)
    db.execute(
        sa.text(
            "DELETE FROM public.assignments WHERE id = (SELECT source_id FROM public.notifications WHERE id = :id)"
        ),
        {"id": gone},
    )
    (fresh,) = recipients.reminders(mentor, 1)

    result = deliver(database_url, push_url=gateway.url)

    assert (result.expired_too_old, result.expired_no_longer_due, result.delivered, result.lost) == (1, 2, 1, 1)
    stored = rows(db)
    assert stored[old].status == "expired"
    assert stored[old].last_error == "expired: not sent within 72 hours of its creation"
    assert stored[resolved].status == "expired" and "no longer due" in stored[resolved].last_error
    assert stored[gone].status == "expired" and "assignment closed or gone" in stored[gone].last_error
    assert [request.json()["notification_ids"] for request in gateway.requests] == [[fresh]]


def test_after_a_refusal_the_retry_and_newer_notifications_go_in_one_message(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    mentor = recipients.mentor()
    first = recipients.reminders(mentor, 1)
    gateway.statuses = [500]
    deliver(database_url, push_url=gateway.url)
    later = recipients.reminders(mentor, 1)
    _make_due(db)

    assert deliver(database_url, push_url=gateway.url).messages == 1
    assert sorted(gateway.requests[-1].json()["notification_ids"]) == sorted(first + later)
    assert gateway.requests[-1].headers["Idempotency-Key"] != gateway.requests[0].headers["Idempotency-Key"]


def test_nothing_is_claimed_while_no_channel_is_configured(
    db: sa.Connection, database_url: str, recipients: Recipients
) -> None:
    assert deliver(database_url, policy(())).claimed == 0  # nothing due: nothing to complain about
    recipients.reminders(recipients.mentor(), 1)
    with pytest.raises(DeliveryNotConfigured, match=r"1 notification.*no delivery channel is configured"):
        deliver(database_url, policy(()))
    assert repository.status_counts(db) == {"pending": 1}


def _orphan(db: sa.Connection, ids: list[int], attempts: int = 1) -> None:
    """What a deliverer that died while sending leaves behind."""
    db.execute(
        sa.text(
            "UPDATE public.notifications SET status = 'sending', attempts = :attempts, next_attempt_at = NULL,"
            " message_key = CAST(:key AS uuid), claimed_by = 'rp:a-run-that-died', claimed_at = now()"
            " WHERE id = ANY(:ids)"
        ),
        {"ids": ids, "attempts": attempts, "key": str(uuid.uuid4())},
    )


def test_what_a_dead_deliverer_left_sending_goes_out_again_under_its_key_but_not_in_quiet_hours(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    ids = recipients.reminders(recipients.mentor(), 2)
    _orphan(db, ids)
    (key,) = {row.message_key for row in rows(db).values()}

    late = deliver(database_url, policy(window=Window(now=next_oslo(23))), push_url=gateway.url)
    assert (late.released_orphans, late.claimed) == (2, 0) and gateway.requests == []  # quiet hours: it waits
    assert {row.status for row in rows(db).values()} == {"failed"}

    morning = next_oslo(23) + dt.timedelta(hours=13)  # the next day's noon: outside quiet hours, whenever CI runs
    result = deliver(database_url, policy(window=Window(now=morning)), push_url=gateway.url)
    assert result.delivered == 2
    (request,) = gateway.requests
    assert request.headers["Idempotency-Key"] == key and sorted(request.json()["notification_ids"]) == ids


def test_a_notification_whose_deliverer_keeps_dying_gives_up(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    (only,) = recipients.reminders(recipients.mentor(), 1)
    _orphan(db, [only], attempts=10)  # the tenth attempt died too
    result = deliver(database_url, push_url=gateway.url)
    assert (result.gave_up, result.gave_up_ids, gateway.requests) == (1, [only], [])
    assert "no attempt is left" in rows(db)[only].last_error


def test_what_gave_up_or_was_attempted_never_expires_by_age(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    mentor = recipients.mentor()
    old = NOON - dt.timedelta(days=5)
    gave_up = notification(db, recipient_id=mentor, created_at=old)
    retrying = notification(db, recipient_id=mentor, created_at=old)
    db.execute(
        sa.text(
            "UPDATE public.notifications SET status = 'failed', attempts = 3,"
            " next_attempt_at = CASE WHEN id = :g THEN NULL ELSE now() END WHERE id IN (:g, :r)"
        ),
        {"g": gave_up, "r": retrying},
    )
    result = deliver(database_url, push_url=gateway.url)
    assert result.expired_too_old == 0 and result.delivered == 1  # the one still retrying
    assert rows(db)[gave_up].status == "failed"  # waits for an operator, who can still send it
    assert repository.retry_gave_up(db, Window(now=NOON)) == [gave_up]
    assert deliver(database_url, push_url=gateway.url).delivered == 1


class BrokenChannel:
    """A channel with a bug: it raises instead of answering."""

    name = "push"

    def send(self, messages: list) -> list:
        raise RuntimeError("a bug with https://gateway.invalid/?token=s3cret in its message")

    def close(self) -> None:
        pass


def test_a_channel_that_breaks_mid_batch_leaves_nothing_sending(
    db: sa.Connection, database_url: str, recipients: Recipients
) -> None:
    from reminder_pipeline.core.database import connect
    from reminder_pipeline.delivery.service import deliver_due

    ids = recipients.reminders(recipients.mentor(), 2)
    with connect(database_url, autocommit=True) as connection:
        result = deliver_due(connection, {"push": BrokenChannel()}, policy())
    assert result.retrying == 2 and list(result.errors) == ["push: RuntimeError in the channel"]
    stored = rows(db)
    assert {row.status for row in stored.values()} == {"failed"}
    assert stored[ids[0]].message_key is not None  # it may have gone out: the retry keeps the key


def test_an_address_that_could_break_a_header_is_never_handed_to_the_relay(
    db: sa.Connection, database_url: str, recipients: Recipients, email_relay: SmtpRelay
) -> None:
    (injected,) = recipients.reminders(recipients.mentor(email="ola@example.invalid\r\nBcc: all@example.invalid"), 1)
    recipients.reminders(recipients.mentor(email="  kari@example.invalid\n"), 1)  # surrounding space: trimmed
    result = deliver(database_url, policy(("email",)))
    assert (result.delivered, result.undeliverable) == (1, 1)
    assert email_relay.envelopes == [("reminders@example.invalid", ["kari@example.invalid"])]
    assert rows(db)[injected].last_error == NO_ADDRESS
