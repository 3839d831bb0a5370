"""E-mail to a real SMTP relay on loopback (aiosmtpd): plain, STARTTLS with its own certificate and
a login, a refused recipient, a relay that asks to try later."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reminder_pipeline_tests.delivery.conftest import Recipients, SmtpRelay, deliver, policy, rows, use_smtp
from reminder_pipeline_tests.ui_process import free_port

pytestmark = pytest.mark.database


def test_one_email_per_recipient_with_first_name_counts_and_a_stable_message_id(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    email_relay: SmtpRelay,
) -> None:
    mentor = recipients.mentor(full_name="Ola Nordmann", email="ola@example.invalid")
    ids = recipients.reminders(mentor, 2, days=14)

    result = deliver(database_url, policy(("email",)))

    assert (result.delivered, result.messages_delivered) == (2, 1)
    (email,) = email_relay.received
    assert email_relay.envelopes == [("reminders@example.invalid", ["ola@example.invalid"])]
    key = rows(db)[ids[0]].message_key
    assert (email["Subject"], email["To"], email["Message-ID"]) == (
        "Husk å følge opp",
        "ola@example.invalid",
        f"<{key}@example.invalid>",
    )
    assert email["Auto-Submitted"] == "auto-generated" and email["Content-Language"] == "nb"
    text = email.get_content()
    assert text.startswith("Hei Ola!") and "2 av oppdragene dine" in text and "14 dager" in text
    assert "Nordmann" not in text and text.rstrip().endswith("Hilsen likepersonstjenesten")


def test_a_relay_that_says_try_later_gets_the_message_again_after_backoff(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    email_relay: SmtpRelay,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipients.reminders(recipients.mentor(), 1)
    answers = ["451 4.3.0 try again later"]
    accept = SmtpRelay.handle_DATA

    async def busy_then_accept(self, server, session, envelope):
        if answers:
            self.received.append(None)  # seen, not accepted
            return answers.pop()
        return await accept(self, server, session, envelope)

    monkeypatch.setattr(SmtpRelay, "handle_DATA", busy_then_accept)
    first = deliver(database_url, policy(("email",)))
    assert first.retrying == 1 and first.errors == {"email: SMTPDataError (451)": 1}
    db.execute(sa.text("UPDATE public.notifications SET next_attempt_at = now() WHERE status = 'failed'"))
    assert deliver(database_url, policy(("email",))).delivered == 1
    (row,) = rows(db).values()
    assert email_relay.received[-1]["Message-ID"] == f"<{row.message_key}@example.invalid>"


def test_a_refused_recipient_is_undeliverable_and_the_error_names_no_address(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    email_relay: SmtpRelay,
) -> None:
    email_relay.refuse.add("gone@example.invalid")
    recipients.reminders(recipients.mentor(email="gone@example.invalid"), 1)
    recipients.reminders(recipients.mentor(email="here@example.invalid"), 1)
    result = deliver(database_url, policy(("email",)))
    assert (result.delivered, result.undeliverable) == (1, 1)
    refused = next(row for row in rows(db).values() if row.status == "undeliverable")
    assert refused.last_error == "email: recipient refused (550)"


def test_starttls_is_required_unless_switched_off(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    smtp_relay: SmtpRelay,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_smtp(monkeypatch, smtp_relay, security="starttls")  # the default: this relay offers no TLS
    recipients.reminders(recipients.mentor(), 1)
    result = deliver(database_url, policy(("email",)))
    assert result.retrying == 1 and smtp_relay.received == []
    (row,) = rows(db).values()
    assert row.last_error == "email: the relay offers no STARTTLS (NOTIFY_SMTP_SECURITY=starttls)"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the STARTTLS relay")
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_relay(certificate: tuple[Path, Path]) -> Iterator[tuple[SmtpRelay, list[tuple[bytes, bytes]]]]:
    """A relay that requires STARTTLS before anything, and a login after it."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    logins: list[tuple[bytes, bytes]] = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        if auth_data.password == b"relay-s3cret":
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    relay = SmtpRelay("127.0.0.1", free_port())
    controller = Controller(
        relay,
        hostname=relay.host,
        port=relay.port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield relay, logins
    finally:
        controller.stop()


def test_starttls_with_the_relays_certificate_and_a_login(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    tls_relay: tuple[SmtpRelay, list[tuple[bytes, bytes]]],
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relay, logins = tls_relay
    use_smtp(monkeypatch, relay, security="starttls")
    monkeypatch.setenv("NOTIFY_SMTP_CA_FILE", str(certificate[0]))
    monkeypatch.setenv("NOTIFY_SMTP_USER", "reminders")
    monkeypatch.setenv("NOTIFY_SMTP_PASSWORD", "relay-s3cret")
    recipients.reminders(recipients.mentor(), 1)
    assert deliver(database_url, policy(("email",))).delivered == 1
    assert logins == [(b"reminders", b"relay-s3cret")] and len(relay.received) == 1

    monkeypatch.setenv("NOTIFY_SMTP_PASSWORD", "wrong")
    recipients.reminders(recipients.mentor(), 1)
    result = deliver(database_url, policy(("email",)))
    assert result.retrying == 1 and list(result.errors) == ["email: login refused (535)"]
    assert "wrong" not in str(rows(db))
