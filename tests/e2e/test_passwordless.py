"""Magic links, email codes and usernames end to end, against TypeScript better-auth 1.7.25.

1. The official JS client with `magicLinkClient()`, `emailOTPClient()` and
   `usernameClient()` plays one flow — username sign-up and sign-in, a magic link, every
   email-OTP flow — against Bastion and, in the same test, against better-auth 1.7.25
   (`ba-peer.mjs serve` with the same plugins), on SQLite, PostgreSQL and MariaDB. Bastion's
   links and codes come from real mails (the local SMTP server); the answers of both servers
   must be the same once ids, tokens and dates are masked.
2. A shared database: both servers on one database and one secret; a link or a code issued
   by one is accepted by the other, and a username set on one signs in on the other.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bastion.identity import (
    EmailOTP,
    Identity,
    MagicLinkEmail,
    bearer,
    email_otp,
    magic_link,
    magic_link_sender,
    otp_sender,
    username,
)
from tests.e2e.bastion_server import free_port, serve
from tests.e2e.js_client import JsClient, js_client
from tests.e2e.node_peer import BetterAuthServer, better_auth_server
from tests.identity.mailbox import SMTPMailbox, smtp_mailbox_fixture  # noqa: F401
from tests.services import scratch_database

pytestmark = pytest.mark.e2e

SECRET = "passwordless-e2e-secret-0123456789abcdef0123"
PASSWORD = "correct-horse-battery"
PLUGINS = "magic-link,email-otp,username"
CLIENT_PLUGINS = "magicLinkClient,emailOTPClient,usernameClient"
MASKED = {"id", "token", "userId", "createdAt", "updatedAt", "expiresAt", "ipAddress", "userAgent"}
_serial = itertools.count()


class Mails(Protocol):
    async def magic_token(self, to: str) -> str: ...

    async def otp(self, kind: str, to: str) -> str: ...


class TSMails:
    """Links and codes from the TypeScript server's mail log."""

    def __init__(self, server: BetterAuthServer) -> None:
        self.server = server

    async def magic_token(self, to: str) -> str:
        mail = await self.server.next_mail("magic-link", to)
        assert parse_qs(urlsplit(mail["url"]).query)["token"] == [mail["token"]]
        return str(mail["token"])

    async def otp(self, kind: str, to: str) -> str:
        return str((await self.server.next_mail(f"otp-{kind}", to))["token"])


_SUBJECTS = {
    "sign-in": "Your Bastion sign-in code",
    "email-verification": "Verify your email address for Bastion",
    "forget-password": "Your Bastion password reset code",
    "change-email": "Confirm your new email address for Bastion",
}


class SMTPMails:
    """Links and codes from the mails Bastion sent to the local SMTP server."""

    def __init__(self, mailbox: SMTPMailbox) -> None:
        self.mailbox = mailbox
        self.seen: dict[tuple[str, str], int] = {}

    async def _next(self, subject: str, to: str) -> Any:
        count = self.seen.get((subject, to), 0) + 1
        for _ in range(100):
            found = [m for m in self.mailbox.messages_to(to) if m.subject == subject]
            if len(found) >= count:
                self.seen[(subject, to)] = count
                return found[count - 1]
            await self.mailbox.wait_for(to, count=len(self.mailbox.messages_to(to)) + 1)
        raise AssertionError(f"no mail {subject!r} to {to}")

    async def magic_token(self, to: str) -> str:
        mail = await self._next("Sign in to Bastion", to)
        url = next(u for u in mail.urls if "/magic-link/verify" in u)
        return parse_qs(urlsplit(url).query)["token"][0]

    async def otp(self, kind: str, to: str) -> str:
        mail = await self._next(_SUBJECTS[kind], to)
        found = re.search(r"Your code is: (\d+)", mail.text)
        assert found, mail.text
        return found.group(1)


def mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: f"<{k}>" if k in MASKED and v is not None else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


async def passwordless_flow(client: JsClient, mails: Mails, tag: str) -> list[Any]:
    """Every step's (call, masked data, error status and code)."""
    seen: list[Any] = []
    first, second, third, moved = (f"{tag}-{n}@example.com" for n in ("a", "b", "c", "d"))

    async def step(call: str, args: dict[str, Any] | None = None) -> Any:
        data, error = await client.call(call, args)
        seen.append((call, mask(data), error and (error.get("status"), error.get("code"))))
        return data

    # Usernames.
    await step(
        "signUp.email",
        {"email": first, "password": PASSWORD, "name": "Flow", "username": "Flow_User"},
    )
    await step("signOut")
    await step("signIn.username", {"username": "FLOW_user", "password": PASSWORD})
    await step("signIn.username", {"username": "flow_user", "password": "wrong-password"})
    await step("isUsernameAvailable", {"username": "flow_user"})
    await step("signOut")
    # A magic link, opened as JSON (no callbackURL), then used again.
    await step("signIn.magicLink", {"email": second, "name": "Linked"})
    token = await mails.magic_token(second)
    await step("magicLink.verify", {"query": {"token": token}})
    await step("getSession")
    await step("signOut")
    # Email OTP: sign-in (a wrong code first), change of address, password reset, verify.
    await step("emailOtp.sendVerificationOtp", {"email": third, "type": "sign-in"})
    code = await mails.otp("sign-in", third)
    await step("signIn.emailOtp", {"email": third, "otp": "x" + code})
    await step("signIn.emailOtp", {"email": third, "otp": code})
    await step("emailOtp.requestEmailChange", {"newEmail": moved})
    code = await mails.otp("change-email", moved)
    await step("emailOtp.changeEmail", {"newEmail": moved, "otp": code})
    await step("getSession")
    await step("signOut")
    await step("emailOtp.requestPasswordReset", {"email": first})
    code = await mails.otp("forget-password", first)
    await step(
        "emailOtp.resetPassword", {"email": first, "otp": code, "password": "new-" + PASSWORD}
    )
    await step("signIn.email", {"email": first, "password": "new-" + PASSWORD})
    await step("emailOtp.sendVerificationOtp", {"email": first, "type": "email-verification"})
    code = await mails.otp("email-verification", first)
    check = {"email": first, "type": "email-verification", "otp": code}
    await step("emailOtp.checkVerificationOtp", check)
    await step("emailOtp.verifyEmail", {"email": first, "otp": code})
    await step("emailOtp.verifyEmail", {"email": first, "otp": code})
    await step("getSession")
    await step("signOut")
    return seen


def bastion_identity(database_url: str, mailbox: SMTPMailbox) -> Any:
    mailer = mailbox.mailer()

    def build(origin: str) -> Identity:
        return Identity(
            env={},
            secret=SECRET,
            base_url=origin,
            database=database_url,
            email_and_password={"enabled": True},
            plugins=[
                bearer(),
                magic_link(send_magic_link=magic_link_sender(mailer)),
                email_otp(send_verification_otp=otp_sender(mailer), change_email={"enabled": True}),
                username(),
            ],
        )

    return build


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
async def test_the_official_client_gets_the_same_answers(
    kind: str, smtp_mailbox: SMTPMailbox
) -> None:
    tag = f"flow{next(_serial)}"
    async with scratch_database(kind) as ts_url, scratch_database(kind) as bastion_url:
        async with (
            better_auth_server(ts_url, PLUGINS=PLUGINS) as ts,
            js_client(ts.base_url, CLIENT_PLUGINS=CLIENT_PLUGINS) as client,
        ):
            expected = await passwordless_flow(client, TSMails(ts), tag)
        async with (
            serve(bastion_identity(bastion_url, smtp_mailbox)) as (_, origin),
            js_client(f"{origin}/api/auth", CLIENT_PLUGINS=CLIENT_PLUGINS) as client,
        ):
            observed = await passwordless_flow(client, SMTPMails(smtp_mailbox), tag)
    assert len(observed) == len(expected)
    for ours, theirs in zip(observed, expected, strict=True):
        assert ours == theirs
    errors = [(call, error) for call, _, error in observed if error]
    assert errors == [
        ("signIn.username", (401, "INVALID_USERNAME_OR_PASSWORD")),
        ("signIn.emailOtp", (400, "INVALID_OTP")),
        ("emailOtp.verifyEmail", (400, "INVALID_OTP")),
    ]


# -- one database, two servers -----------------------------------------------------------


class Both:
    def __init__(self, ts: BetterAuthServer, bastion_base: str, outbox: list[Any]) -> None:
        self.ts = ts
        self.bastion_base = bastion_base
        self.outbox = outbox
        self.http = httpx.AsyncClient(timeout=20)

    def base(self, which: str) -> str:
        return self.ts.base_url if which == "ts" else self.bastion_base

    async def post(self, which: str, path: str, body: dict[str, Any], **headers: str) -> Any:
        origin = self.base(which).removesuffix("/api/auth")
        return await self.http.post(
            self.base(which) + path, json=body, headers={"origin": origin, **headers}
        )

    async def get(self, which: str, path: str) -> Any:
        return await self.http.get(self.base(which) + path)

    async def magic_token(self, which: str, to: str) -> str:
        if which == "ts":
            return await TSMails(self.ts).magic_token(to)
        return next(m.token for m in reversed(self.outbox) if isinstance(m, MagicLinkEmail))

    async def otp(self, which: str, kind: str, to: str) -> str:
        if which == "ts":
            return await TSMails(self.ts).otp(kind, to)
        for _ in range(200):
            found = [m for m in self.outbox if isinstance(m, EmailOTP) and m.email == to]
            if found and found[-1].type == kind:
                return found[-1].otp
            await _sleep()
        raise AssertionError(f"Bastion sent no {kind} code to {to}")


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.02)


@pytest.fixture(params=["postgresql", "sqlite", "mysql"])
async def both(request: pytest.FixtureRequest) -> AsyncIterator[Both]:
    outbox: list[Any] = []

    async def keep(data: Any, request: Any) -> None:
        outbox.append(data)

    async with scratch_database(request.param) as database_url:
        bastion_port = free_port()
        bastion_origin = f"http://127.0.0.1:{bastion_port}"
        async with better_auth_server(
            database_url,
            PLUGINS=PLUGINS,
            BETTER_AUTH_SECRET=SECRET,
            TRUSTED_ORIGINS=bastion_origin,
        ) as ts:

            def build(origin: str) -> Identity:
                return Identity(
                    env={},
                    secret=SECRET,
                    base_url=origin,
                    database=database_url,
                    email_and_password={"enabled": True},
                    trusted_origins=[ts.origin],
                    plugins=[
                        bearer(),
                        magic_link(send_magic_link=keep),
                        email_otp(send_verification_otp=keep, change_email={"enabled": True}),
                        username(),
                    ],
                )

            async with serve(build, port=bastion_port) as (_, origin):
                both = Both(ts, f"{origin}/api/auth", outbox)
                try:
                    yield both
                finally:
                    await both.http.aclose()


@pytest.mark.parametrize(("issuer", "verifier"), [("ts", "bastion"), ("bastion", "ts")])
async def test_a_magic_link_from_one_server_signs_in_on_the_other(
    both: Both, issuer: str, verifier: str
) -> None:
    email = f"link-{issuer}-{next(_serial)}@example.com"
    response = await both.post(issuer, "/sign-in/magic-link", {"email": email, "name": "Link"})
    assert response.json() == {"status": True}
    token = await both.magic_token(issuer, email)
    opened = await both.get(verifier, f"/magic-link/verify?token={token}")
    assert opened.status_code == 200, opened.text
    assert opened.json()["user"]["email"] == email
    again = await both.get(issuer, f"/magic-link/verify?token={token}")
    assert again.status_code == 302 and "error=INVALID_TOKEN" in again.headers["location"]


@pytest.mark.parametrize(("issuer", "verifier"), [("ts", "bastion"), ("bastion", "ts")])
async def test_a_code_from_one_server_works_on_the_other(
    both: Both, issuer: str, verifier: str
) -> None:
    email = f"otp-{issuer}-{next(_serial)}@example.com"
    sent = await both.post(
        issuer, "/email-otp/send-verification-otp", {"email": email, "type": "sign-in"}
    )
    assert sent.json() == {"success": True}
    code = await both.otp(issuer, "sign-in", email)
    wrong = await both.post(verifier, "/sign-in/email-otp", {"email": email, "otp": "x"})
    assert wrong.json()["code"] == "INVALID_OTP"  # counted in the shared row
    signed_in = await both.post(verifier, "/sign-in/email-otp", {"email": email, "otp": code})
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["emailVerified"] is True
    reused = await both.post(issuer, "/sign-in/email-otp", {"email": email, "otp": code})
    assert reused.json()["code"] == "INVALID_OTP"


@pytest.mark.parametrize(("writer", "reader"), [("ts", "bastion"), ("bastion", "ts")])
async def test_a_username_set_on_one_server_signs_in_on_the_other(
    both: Both, writer: str, reader: str
) -> None:
    n = next(_serial)
    body = {
        "email": f"name-{n}@example.com",
        "password": PASSWORD,
        "name": "Named",
        "username": f"Shared_{n}",
    }
    signed_up = await both.post(writer, "/sign-up/email", body)
    assert signed_up.status_code == 200, signed_up.text
    assert signed_up.json()["user"]["username"] == f"shared_{n}"
    signed_in = await both.post(
        reader, "/sign-in/username", {"username": f"SHARED_{n}", "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["displayUsername"] == f"Shared_{n}"
    taken = await both.post(reader, "/is-username-available", {"username": f"shared_{n}"})
    assert taken.json() == {"available": False}
