"""The official better-auth JS client, unchanged, against Bastion's identity server.

The same flow as the reference run against TypeScript better-auth
(test_js_client_against_better_auth.py), in cookie and bearer mode, on SQLite, PostgreSQL
and MariaDB. Reset and verification links are mailed over real SMTP (aiosmtpd) and
followed from the received mail.
"""

from __future__ import annotations

import pytest

from bastion.identity import Identity, bearer
from bastion.identity.email import reset_password_sender, verification_sender
from tests.e2e.bastion_server import serve
from tests.e2e.client_flow import MailKind, run_client_flow
from tests.e2e.js_client import js_client
from tests.identity.mailbox import SMTPMailbox, smtp_mailbox_fixture  # noqa: F401

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery"
SECRET = "e2e-secret-0123456789abcdef0123456789abcdef"


class SMTPMailLinks:
    """The flow's MailBox: the link in the newest mail of that kind to that address."""

    def __init__(self, mailbox: SMTPMailbox) -> None:
        self.mailbox = mailbox
        self.seen: dict[tuple[str, str], int] = {}

    async def next_url(self, kind: MailKind, to: str) -> str:
        path = "/reset-password/" if kind == "reset-password" else "/verify-email"
        count = self.seen.get((kind, to), 0) + 1
        deadline = 0
        while True:
            links = [u for m in self.mailbox.messages_to(to) for u in m.urls if path in u]
            if len(links) >= count:
                self.seen[(kind, to)] = count
                return links[count - 1]
            deadline += 1
            assert deadline < 500, f"no {kind} mail to {to}"
            await self.mailbox.wait_for(to, count=len(self.mailbox.messages_to(to)) + 1)


@pytest.mark.parametrize("mode", ["cookie", "bearer"])
async def test_official_client_flow(
    database_url: str, mode: str, smtp_mailbox: SMTPMailbox
) -> None:
    mailer = smtp_mailbox.mailer()

    def identity_for(origin: str) -> Identity:
        return Identity(
            env={},
            secret=SECRET,
            base_url=origin,
            database=database_url,
            email_and_password={
                "enabled": True,
                "send_reset_password": reset_password_sender(mailer),
            },
            email_verification={"send_verification_email": verification_sender(mailer)},
            plugins=[bearer()],
        )

    async with serve(identity_for) as (_, origin), js_client(f"{origin}/api/auth", mode) as client:
        result = await run_client_flow(
            client, SMTPMailLinks(smtp_mailbox), email=f"{mode}@example.com", password=PASSWORD
        )
        assert result.steps
