"""A real SMTP server for tests: what Bastion mails lands here, and tests follow its links.

    from tests.identity.mailbox import SMTPMailbox, smtp_mailbox_fixture  # noqa: F401

    async def test_verify(smtp_mailbox: SMTPMailbox) -> None:
        send = verification_sender(smtp_mailbox.mailer())
        ...  # sign up with send_verification_email=send
        url = smtp_mailbox.url_for("alice@example.com", containing="/verify-email")

Importing `smtp_mailbox_fixture` registers the fixture `smtp_mailbox` in the importing
module (the function has another name so the test parameters do not shadow an import,
which ruff reports as F811); a `pytest_plugins = ["tests.identity.mailbox"]` in the root
conftest would make it available everywhere without the import.

The server is aiosmtpd's threaded `Controller` on 127.0.0.1 and a free port; `SMTPMailbox`
also works as a context manager, e.g. `SMTPMailbox(credentials=("user", "pw"))` to require
AUTH (allowed without TLS, for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage as MIMEMessage
from types import TracebackType
from typing import Any, Self, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bastion.identity.email import SMTPMailer

__all__ = ["ReceivedEmail", "SMTPMailbox", "smtp_mailbox_fixture"]

_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class ReceivedEmail:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: MIMEMessage
    login: str | None  # the AUTH user the client logged in as, if any

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        """The text/plain part."""
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, "no text/plain part"
        return str(cast(MIMEMessage, part).get_content())

    @property
    def html(self) -> str | None:
        part = self.message.get_body(preferencelist=("html",))
        return None if part is None else str(cast(MIMEMessage, part).get_content())

    @property
    def urls(self) -> list[str]:
        """The links in the text part, in order."""
        return _URL.findall(self.text)


class _Handler:
    def __init__(self, mailbox: SMTPMailbox) -> None:
        self._mailbox = mailbox

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        # AUTH is enforced here rather than with aiosmtpd's `auth_required`, which warns
        # when combined with `auth_require_tls=False`.
        if self._mailbox.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth = session.auth_data
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        received = ReceivedEmail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=message_from_bytes(content, policy=policy.default),
            login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
        )
        self._mailbox._store(received)
        return "250 Message accepted for delivery"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SMTPMailbox:
    """A local SMTP server that keeps every message it receives.

    `credentials=(user, password)` makes AUTH (PLAIN/LOGIN, no TLS needed) mandatory.
    """

    def __init__(
        self, *, host: str = "127.0.0.1", credentials: tuple[str, str] | None = None
    ) -> None:
        self.host = host
        self.port = 0
        self.credentials = credentials
        self._lock = threading.Lock()
        self._messages: list[ReceivedEmail] = []
        self._controller: Controller | None = None

    # -- lifecycle

    def start(self) -> None:
        assert self._controller is None, "already started"
        auth: dict[str, Any] = {}
        if self.credentials is not None:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        for attempt in range(5):  # a free port may be taken before we bind it
            port = _free_port(self.host)
            controller = Controller(_Handler(self), hostname=self.host, port=port, **auth)
            try:
                controller.start()
            except OSError:
                with contextlib.suppress(Exception):
                    controller.stop(no_assert=True)
                if attempt == 4:
                    raise
                continue
            self._controller, self.port = controller, port
            return

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.credentials == (
            data.login.decode(),
            data.password.decode(),
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def _store(self, received: ReceivedEmail) -> None:
        with self._lock:
            self._messages.append(received)

    # -- for tests

    def mailer(self, sender: str = "Bastion <no-reply@bastion.test>", **kw: Any) -> SMTPMailer:
        """An `SMTPMailer` that delivers here (plain SMTP; `kw` e.g. username/password)."""
        assert self._controller is not None, "mailbox not started"
        return SMTPMailer(self.host, self.port, sender=sender, start_tls=False, **kw)

    @property
    def messages(self) -> list[ReceivedEmail]:
        """Every message received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._messages)

    def messages_to(self, address: str) -> list[ReceivedEmail]:
        wanted = address.lower()
        return [m for m in self.messages if wanted in (r.lower() for r in m.rcpt_tos)]

    def last_to(self, address: str) -> ReceivedEmail:
        """The latest message to `address`; fails the test if there is none."""
        received = self.messages_to(address)
        assert received, f"no email to {address} (received: {self._summary()})"
        return received[-1]

    def url_for(self, address: str, *, containing: str | None = None) -> str:
        """The first link in the latest message to `address` (that contains `containing`,
        e.g. "/verify-email", when given) — the link a user would click."""
        received = self.last_to(address)
        urls = [u for u in received.urls if containing is None or containing in u]
        assert urls, f"no link{f' with {containing!r}' if containing else ''} in:\n{received.text}"
        return urls[0]

    async def wait_for(self, address: str, *, count: int = 1, within: float = 5.0) -> ReceivedEmail:
        """Wait until `count` messages to `address` have arrived (for mail sent in the
        background) and return the latest; fails the test after `within` seconds."""
        deadline = time.monotonic() + within
        while len(self.messages_to(address)) < count:
            assert time.monotonic() < deadline, f"no email to {address} within {within}s"
            await asyncio.sleep(0.01)
        return self.last_to(address)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def _summary(self) -> str:
        return ", ".join(f"{m.rcpt_tos} {m.subject!r}" for m in self.messages) or "none"


@pytest.fixture(name="smtp_mailbox")
def smtp_mailbox_fixture() -> Iterator[SMTPMailbox]:
    """A started `SMTPMailbox` (no AUTH), stopped after the test."""
    with SMTPMailbox() as mailbox:
        yield mailbox
