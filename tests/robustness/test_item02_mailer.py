"""Issue 11, item 2 (part): a mailer refusal is never a 500.

Before, an address the SMTP server refused (or any exception from a mail callback) made
reset and verification requests answer 500 with a traceback in the log, while an unknown
address got 200: a way to tell accounts apart (S7). better-auth 1.7.25 runs most callbacks
through `runInBackgroundOrAwait` (logged, the request goes on); Bastion now does so for all
of them (`send_or_log`: one log line, the token cut out, no traceback). Where better-auth
rethrows — `/send-verification-email` — the anonymous caller gets the same answer as for an
unknown address, and a signed-in user asking for their own address gets a clean 502
FAILED_TO_SEND_EMAIL.

Security check S37, "mail failures reveal nothing":
a mail that cannot be sent changes neither the status nor the body of an answer that must not
tell whether an account exists, and is never a 500.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bastion.identity.email import (
    EmailLink,
    SMTPMailer,
    change_email_sender,
    delete_account_sender,
    reset_password_sender,
    verification_sender,
)
from tests.identity.conftest import running

REFUSED = "refused@example.com"  # the SMTP server answers 550 for this recipient
UNKNOWN = "nobody@example.com"  # no account
PASSWORD = "correct-horse-battery"
RESET_ANSWER = {
    "status": True,
    "message": "If this email exists in our system, check your email for the reset link",
}
MAIL_LOGGER = "bastion.identity.email"


class _RefusingHandler:
    """Accepts every recipient but REFUSED, as a server refuses a mailbox it does not have."""

    def __init__(self) -> None:
        self.delivered: list[str] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower() == REFUSED:
            return "550 5.1.1 <refused@example.com>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.delivered.extend(envelope.rcpt_tos)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[SMTPMailer, _RefusingHandler]]:
    """A real local SMTP server that refuses REFUSED, and a mailer that delivers to it."""
    handler = _RefusingHandler()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield (
            SMTPMailer("127.0.0.1", port, sender="no-reply@bastion.test", start_tls=False),
            handler,
        )
    finally:
        controller.stop()


def mail_options(mailer: SMTPMailer, **extra: Any) -> dict[str, Any]:
    """Every mail callback of the Identity through `mailer`."""
    return {
        "email_and_password": {
            "enabled": True,
            "send_reset_password": reset_password_sender(mailer),
            **extra.pop("email_and_password", {}),
        },
        "email_verification": {
            "send_verification_email": verification_sender(mailer),
            **extra.pop("email_verification", {}),
        },
        "user": {
            "change_email": {
                "enabled": True,
                "send_change_email_confirmation": change_email_sender(mailer),
            },
            "delete_user": {
                "enabled": True,
                "send_delete_account_verification": delete_account_sender(mailer),
            },
        },
        **extra,
    }


async def sign_up(client: httpx.AsyncClient, email: str) -> str:
    """A new account and its session token (no mail: verification is not required)."""
    body = {"name": "User", "email": email, "password": PASSWORD}
    answer = await client.post("/sign-up/email", json=body)
    assert answer.status_code == 200, answer.text
    client.cookies.clear()
    return str(answer.headers["set-auth-token"])


def assert_one_clean_line(caplog: pytest.LogCaptureFixture, *secrets: str) -> str:
    """Exactly one record about the mail, without traceback or secret; nothing else at
    ERROR (the 500 handler's `logger.exception` would be one)."""
    mail = [r for r in caplog.records if r.name == MAIL_LOGGER]
    assert len(mail) == 1, [r.getMessage() for r in caplog.records]
    record = mail[0]
    text = record.getMessage()
    assert record.exc_info is None and "\n" not in text and "Traceback" not in caplog.text
    for secret in secrets:
        assert secret not in caplog.text
    others = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != MAIL_LOGGER]
    assert not others, [r.getMessage() for r in others]
    return text


# -- answers that must not tell whether an account exists ------------------------------------


async def test_item02_a_refused_reset_mail_answers_as_an_unknown_address(
    smtp: tuple[SMTPMailer, _RefusingHandler], caplog: pytest.LogCaptureFixture
) -> None:
    """request-password-reset for an account whose address the SMTP server refuses: the
    same 200 and body as for an unknown address (S7), and one log line (was: 500)."""
    mailer, server = smtp
    async with running(**mail_options(mailer)) as (_, client):
        await sign_up(client, REFUSED)
        with caplog.at_level(logging.INFO):
            refused = await client.post("/request-password-reset", json={"email": REFUSED})
        unknown = await client.post("/request-password-reset", json={"email": UNKNOWN})
        assert (refused.status_code, refused.json()) == (200, RESET_ANSWER)
        assert (unknown.status_code, unknown.json()) == (200, RESET_ANSWER)
        line = assert_one_clean_line(caplog)
        assert "reset-password" in line and "550" in line
        assert server.delivered == []


async def test_item02_a_raising_reset_callback_is_logged_without_its_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Any exception from the user's callback, even one that quotes the link: 200 as for an
    unknown address, one line, the token cut out of it."""
    links: list[EmailLink] = []

    def broken(link: EmailLink, request: Any) -> None:  # sync: runs in a worker thread
        links.append(link)
        raise RuntimeError(f"mail service down while sending\n{link.url}")

    options: dict[str, Any] = {
        "email_and_password": {"enabled": True, "send_reset_password": broken}
    }
    async with running(**options) as (_, client):
        await sign_up(client, "ada@example.com")
        with caplog.at_level(logging.INFO):
            answer = await client.post("/request-password-reset", json={"email": "ada@example.com"})
        assert (answer.status_code, answer.json()) == (200, RESET_ANSWER)
        [link] = links
        line = assert_one_clean_line(caplog, link.token)
        assert "RuntimeError: mail service down while sending" in line and "[token]" in line


async def test_item02_anonymous_send_verification_email_answers_as_for_an_unknown_address(
    smtp: tuple[SMTPMailer, _RefusingHandler], caplog: pytest.LogCaptureFixture
) -> None:
    """/send-verification-email without a session, for an unverified account whose mail is
    refused: `{status: true}` as for an unknown address. better-auth 1.7.25 rethrows here
    (a 500 for exactly the accounts that exist); Bastion does not."""
    mailer, _ = smtp
    async with running(**mail_options(mailer)) as (_, client):
        await sign_up(client, REFUSED)
        with caplog.at_level(logging.INFO):
            refused = await client.post("/send-verification-email", json={"email": REFUSED})
        unknown = await client.post("/send-verification-email", json={"email": UNKNOWN})
        assert (refused.status_code, refused.json()) == (200, {"status": True})
        assert (unknown.status_code, unknown.json()) == (200, {"status": True})
        assert "verification" in assert_one_clean_line(caplog)


async def test_item02_sign_up_and_sign_in_go_on_when_the_mail_is_refused(
    smtp: tuple[SMTPMailer, _RefusingHandler], caplog: pytest.LogCaptureFixture
) -> None:
    """Sign-up that mails a verification, and sign-in that mails it again to an unverified
    account (both as better-auth: logged, the request goes on): the user exists, sign-in
    answers 403 EMAIL_NOT_VERIFIED — never a 500 that a retry turns into "user exists"."""
    mailer, _ = smtp
    options = mail_options(
        mailer,
        email_and_password={"require_email_verification": True},
        email_verification={"send_on_sign_up": True, "send_on_sign_in": True},
    )
    async with running(**options) as (identity, client):
        with caplog.at_level(logging.INFO):
            body = {"name": "User", "email": REFUSED, "password": PASSWORD}
            signed_up = await client.post("/sign-up/email", json=body)
        assert signed_up.status_code == 200, signed_up.text
        assert await identity.store.find_user_by_email(REFUSED) is not None
        assert_one_clean_line(caplog)
        signed_in = await client.post(
            "/sign-in/email", json={"email": REFUSED, "password": PASSWORD}
        )
        assert signed_in.status_code == 403
        assert signed_in.json()["code"] == "EMAIL_NOT_VERIFIED"


# -- the signed-in user's own requests ------------------------------------------------------


async def test_item02_signed_in_send_verification_email_is_a_clean_502(
    smtp: tuple[SMTPMailer, _RefusingHandler], caplog: pytest.LogCaptureFixture
) -> None:
    """Asking for a verification mail to one's own address, which the SMTP server refuses:
    502 FAILED_TO_SEND_EMAIL (the mail service failed, not this server; better-auth answers
    500), one log line, no traceback."""
    mailer, _ = smtp
    async with running(**mail_options(mailer)) as (_, client):
        token = await sign_up(client, REFUSED)
        with caplog.at_level(logging.INFO):
            answer = await client.post(
                "/send-verification-email",
                json={"email": REFUSED},
                headers={"authorization": f"Bearer {token}"},
            )
        assert answer.status_code == 502
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {
            "message": "The email could not be sent. Try again later.",
            "code": "FAILED_TO_SEND_EMAIL",
        }
        assert_one_clean_line(caplog)


async def test_item02_change_email_to_a_refused_address_answers_as_a_taken_one(
    smtp: tuple[SMTPMailer, _RefusingHandler], caplog: pytest.LogCaptureFixture
) -> None:
    """change-email to an address the SMTP server refuses: `{status: true}`, as better-auth
    answers (logged) and as a taken address answers (S7: an error here would tell free
    addresses from registered ones)."""
    mailer, _ = smtp
    async with running(**mail_options(mailer)) as (_, client):
        token = await sign_up(client, "ada@example.com")
        await sign_up(client, "taken@example.com")
        headers = {"authorization": f"Bearer {token}"}
        with caplog.at_level(logging.INFO):
            refused = await client.post(
                "/change-email", json={"newEmail": REFUSED}, headers=headers
            )
        taken = await client.post(
            "/change-email", json={"newEmail": "taken@example.com"}, headers=headers
        )
        assert (refused.status_code, refused.json()) == (200, {"status": True})
        assert (taken.status_code, taken.json()) == (200, {"status": True})
        assert_one_clean_line(caplog)


async def test_item02_a_raising_delete_account_callback_is_not_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """delete-user's verification mail from a callback that raises: better-auth's answer
    (logged, "Verification email sent"), not a 500."""

    async def broken(link: EmailLink, request: Any) -> None:
        raise ConnectionError("mail relay unreachable")

    options: dict[str, Any] = {
        "email_and_password": {"enabled": True},
        "user": {"delete_user": {"enabled": True, "send_delete_account_verification": broken}},
    }
    async with running(**options) as (identity, client):
        token = await sign_up(client, "ada@example.com")
        with caplog.at_level(logging.INFO):
            answer = await client.post(
                "/delete-user", json={}, headers={"authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 200
        assert answer.json() == {"success": True, "message": "Verification email sent"}
        assert "ConnectionError: mail relay unreachable" in assert_one_clean_line(caplog)
        assert await identity.store.find_user_by_email("ada@example.com") is not None
