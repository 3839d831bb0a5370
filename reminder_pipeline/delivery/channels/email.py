"""E-mail over SMTP to an approved provider's relay: STARTTLS required by default, credentials from
the environment or Supabase Vault, one connection per worker thread reused across messages.

A message's `Message-ID` is derived from its idempotency key, so a message re-sent after a crash
is the same message to the receiving side (mail clients and many relays drop a repeated Message-ID).
Errors name the SMTP code and the exception class only: smtplib's own texts quote addresses.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Literal

from reminder_pipeline.core.errors import SmtpSetupFailed
from reminder_pipeline.delivery.channels import (
    DELIVERED,
    FAILED,
    UNDELIVERABLE,
    Deadline,
    Message,
    PerThread,
    SendOutcome,
)

Security = Literal["starttls", "tls", "none"]


class SmtpChannel:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        timeout_seconds: float = 10.0,
        concurrency: int = 4,
    ) -> None:
        self.host, self.port, self.sender, self.security = host, port, sender, security
        self._username, self._password = username, password
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self.timeout_seconds = timeout_seconds
        self._domain = sender.rpartition("@")[2] or "reminder-pipeline.invalid"
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="smtp")
        self._connections = PerThread(self._connect, _quit)
        self._deadline = Deadline(timeout_seconds)

    def __repr__(self) -> str:
        return f"SmtpChannel(host={self.host!r}, port={self.port}, security={self.security!r}, password='[secret]')"

    def send(self, messages: Sequence[Message]) -> list[SendOutcome]:
        return list(self._pool.map(self._send, messages))

    def close(self) -> None:
        self._pool.shutdown(wait=True)  # every message ends by its deadline
        self._connections.close_all()
        self._deadline.close()

    # -- one worker's connection ---------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_seconds, context=self._context
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        try:
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SmtpSetupFailed("email: the relay offers no STARTTLS (NOTIFY_SMTP_SECURITY=starttls)")
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if self._username:
                try:
                    smtp.login(self._username, self._password or "")
                except smtplib.SMTPAuthenticationError as error:
                    raise SmtpSetupFailed(f"email: login refused ({error.smtp_code})") from None
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _email(self, message: Message) -> EmailMessage:
        email = EmailMessage()
        email["Subject"] = message.title
        email["From"] = self.sender
        email["To"] = message.email
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = f"<{message.key}@{self._domain}>"
        email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a reminder
        email.set_content(f"{message.body}\n\n{message.signature}\n")
        email["Content-Language"] = message.language  # after set_content, which replaces Content-* headers
        return email

    def _send(self, message: Message) -> SendOutcome:
        if not message.email:
            return SendOutcome(message.key, UNDELIVERABLE, "email: no address")
        try:
            email = self._email(message)
        except (ValueError, TypeError) as error:  # a header the e-mail package refuses: nothing was sent
            return SendOutcome(
                message.key, UNDELIVERABLE, f"email: the message could not be built ({type(error).__name__})"
            )
        for attempt in (1, 2):
            reused = False
            with self._deadline.watch(self._connections.socket_of(threading.get_ident())) as cut_off:
                try:
                    smtp, reused = self._connections.get()
                    smtp.send_message(email)
                    return SendOutcome(message.key, DELIVERED)
                except SmtpSetupFailed as error:
                    return SendOutcome(message.key, FAILED, str(error))
                except smtplib.SMTPRecipientsRefused as error:
                    codes = sorted({code for code, _ in error.recipients.values()})
                    self._reset()
                    status = UNDELIVERABLE if codes and all(code >= 500 for code in codes) else FAILED
                    return SendOutcome(message.key, status, f"email: recipient refused ({', '.join(map(str, codes))})")
                except smtplib.SMTPResponseException as error:  # the relay answered: a definite refusal
                    self._connections.drop()
                    return SendOutcome(message.key, FAILED, f"email: {type(error).__name__} ({error.smtp_code})")
                except Exception as error:  # every other end is an outcome too, never a crash
                    self._connections.drop()
                    if cut_off() or isinstance(error, TimeoutError):
                        return SendOutcome(
                            message.key, FAILED, f"email: timed out after {self.timeout_seconds:g} s", True
                        )
                    if isinstance(error, smtplib.SMTPServerDisconnected):
                        if reused and attempt == 1:
                            continue  # the relay closed an idle connection: once more on a new one
                        return SendOutcome(message.key, FAILED, "email: the relay closed the connection", True)
                    if isinstance(error, ConnectionRefusedError):
                        return SendOutcome(message.key, FAILED, "email: could not connect (connection refused)")
                    return SendOutcome(message.key, FAILED, f"email: {type(error).__name__}", True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _reset(self) -> None:
        """After a refused recipient the session is mid-transaction; RSET, or start over."""
        smtp, _ = self._connections.get()
        try:
            smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._connections.drop()


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
