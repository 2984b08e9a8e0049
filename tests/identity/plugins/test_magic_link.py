"""The magic-link plugin (better-auth 1.7.25's `magicLink()`), through HTTP, following the
links a real SMTP server received.

S13: a link works once, for `expires_in` seconds, and makes new users only where sign-up is
allowed. S8: the token is 32 letters from a CSPRNG, single use, stored hashed on request.
S7: asking for a link answers the same whether or not the address has an account. S5: 5
requests a minute per address on both paths, and mails counted per address. Every status
and code below was observed on better-auth 1.7.25 with the same requests.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from bastion.identity import MagicLinkEmail, magic_link, magic_link_sender
from bastion.identity.crypto import sha256_base64url
from bastion.identity.db import eq
from bastion.identity.storage import MemoryStorage
from tests.identity.conftest import BASE, ORIGIN, MakeIdentity, running
from tests.identity.mailbox import SMTPMailbox
from tests.identity.routes.helpers import (
    PASSWORD,
    SESSION_COOKIE,
    Clock,
    query_of,
    set_cookie,
    sign_in,
    sign_up,
)

AUTH = f"{BASE}/api/auth"


def _plugin(mailbox: SMTPMailbox, **options: Any) -> list[Any]:
    return [magic_link(send_magic_link=magic_link_sender(mailbox.mailer()), **options)]


async def _ask(client: httpx.AsyncClient, email: str, **body: Any) -> httpx.Response:
    return await client.post("/sign-in/magic-link", json={"email": email, **body})


async def _link(mailbox: SMTPMailbox, email: str, count: int = 1) -> str:
    await mailbox.wait_for(email, count=count)
    return mailbox.url_for(email, containing="/magic-link/verify")


def _path(url: str) -> str:
    assert url.startswith(AUTH), url
    return url[len(AUTH) :]


async def test_a_new_user_signs_in_from_the_mailed_link(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    async with make_identity(plugins=_plugin(smtp_mailbox)) as (identity, client):
        response = await _ask(
            client,
            "Ada@Example.com",
            name="Ada",
            callbackURL="/dashboard",
            newUserCallbackURL="/welcome",
        )
        assert (response.status_code, response.json()) == (200, {"status": True})
        link = await _link(smtp_mailbox, "Ada@Example.com")
        query = query_of(link)
        assert link.startswith(f"{AUTH}/magic-link/verify?token=")
        assert re.fullmatch(r"[A-Za-z]{32}", query["token"])  # S8: 32 letters, a CSPRNG
        assert (query["callbackURL"], query["newUserCallbackURL"]) == ("/dashboard", "/welcome")
        opened = await client.get(_path(link))
        assert (opened.status_code, opened.headers["location"]) == (302, f"{BASE}/welcome")
        assert set_cookie(opened, SESSION_COOKIE) is not None
        session = (await client.get("/get-session")).json()
        assert session["user"]["email"] == "ada@example.com"
        assert session["user"]["emailVerified"] is True
        assert session["user"]["name"] == "Ada"
        # Another link for the same address: an existing user goes to callbackURL.
        client.cookies.clear()
        await _ask(client, "ada@example.com", callbackURL="/dashboard", newUserCallbackURL="/w")
        second = await client.get(_path(await _link(smtp_mailbox, "ada@example.com", 2)))
        assert second.headers["location"] == f"{BASE}/dashboard"
        assert await identity.db.count("user") == 1


async def test_without_callback_url_the_answer_is_json(smtp_mailbox: SMTPMailbox) -> None:
    """The link always has callbackURL; opened without it, {token, user, session}."""
    async with running(plugins=_plugin(smtp_mailbox)) as (_, client):
        await _ask(client, "ada@example.com")
        link = await _link(smtp_mailbox, "ada@example.com")
        assert query_of(link)["callbackURL"] == "/"
        response = await client.get(f"/magic-link/verify?token={query_of(link)['token']}")
        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["token", "user", "session"]
        assert body["session"]["token"] == body["token"]
        assert body["user"]["name"] == "" and body["user"]["emailVerified"] is True


async def test_a_link_works_once(smtp_mailbox: SMTPMailbox) -> None:
    """S13, S8: the second click goes to errorCallbackURL with ?error=INVALID_TOKEN."""
    async with running(plugins=_plugin(smtp_mailbox)) as (identity, client):
        await _ask(client, "ada@example.com", callbackURL="/in", errorCallbackURL="/oops?x=1")
        link = await _link(smtp_mailbox, "ada@example.com")
        assert (await client.get(_path(link))).headers["location"] == f"{BASE}/in"
        client.cookies.clear()
        again = await client.get(_path(link))
        assert again.status_code == 302
        assert again.headers["location"] == f"{BASE}/oops?x=1&error=INVALID_TOKEN"
        assert set_cookie(again, SESSION_COOKIE) is None
        assert await identity.db.count("session") == 1


async def test_a_bad_token_goes_to_the_callback_url_with_the_error() -> None:
    """Without errorCallbackURL the error goes to callbackURL, resolved on the base URL and
    its query written as URLSearchParams writes it (better-auth 1.7.25's exact Location)."""
    async with running(plugins=[magic_link(send_magic_link=lambda d, r: None)]) as (_, client):
        response = await client.get("/magic-link/verify?token=abc")
        assert response.headers["location"] == f"{BASE}/?error=INVALID_TOKEN"
        response = await client.get(
            "/magic-link/verify?token=abc&callbackURL=/x%3Fa%3D1%2520b%26c%3Dd"
        )
        assert response.headers["location"] == f"{BASE}/x?a=1+b&c=d&error=INVALID_TOKEN"
        missing = await client.get("/magic-link/verify")
        assert (missing.status_code, missing.json()) == (
            400,
            {
                "message": "[query.token] Invalid input: expected string, received undefined",
                "code": "VALIDATION_ERROR",
            },
        )


async def test_an_expired_link_is_refused(smtp_mailbox: SMTPMailbox) -> None:
    """S13: `expires_in` (300 s by default): a minute later than that, INVALID_TOKEN."""
    clock = Clock()
    async with running(plugins=_plugin(smtp_mailbox), clock=clock) as (identity, client):
        await _ask(client, "ada@example.com", callbackURL="/in")
        link = await _link(smtp_mailbox, "ada@example.com")
        clock.advance(301)
        response = await client.get(_path(link))
        assert response.headers["location"] == f"{BASE}/in?error=INVALID_TOKEN"
        assert await identity.db.count("user") == 0


async def test_no_new_user_when_sign_up_is_disabled(smtp_mailbox: SMTPMailbox) -> None:
    """S13: the link of an unknown address makes no user; existing users still sign in."""
    plugins = _plugin(smtp_mailbox, disable_sign_up=True)
    async with running(plugins=plugins) as (identity, client):
        await _ask(client, "new@example.com", callbackURL="/in", errorCallbackURL="/error")
        refused = await client.get(_path(await _link(smtp_mailbox, "new@example.com")))
        assert refused.headers["location"] == f"{BASE}/error?error=new_user_signup_disabled"
        assert await identity.db.count("user") == 0
        await sign_up(client, "old@example.com")
        client.cookies.clear()
        await _ask(client, "old@example.com", callbackURL="/in")
        opened = await client.get(_path(await _link(smtp_mailbox, "old@example.com")))
        assert opened.headers["location"] == f"{BASE}/in"
        assert set_cookie(opened, SESSION_COOKIE) is not None


async def test_an_unverified_account_loses_what_was_attached_before_the_proof(
    smtp_mailbox: SMTPMailbox,
) -> None:
    """Someone signed up with another's address and a password: when the owner signs in by
    link, that password and its sessions go, and the address is verified (1.7.25)."""
    async with running(plugins=_plugin(smtp_mailbox)) as (identity, client):
        squatter = await sign_up(client, "ada@example.com", "squatters-password")
        assert squatter.status_code == 200
        client.cookies.clear()
        await _ask(client, "ada@example.com", callbackURL="/in")
        opened = await client.get(_path(await _link(smtp_mailbox, "ada@example.com")))
        assert opened.status_code == 302
        user = await identity.store.find_user_by_email("ada@example.com")
        assert user is not None and user["emailVerified"] is True
        assert await identity.store.list_accounts(user["id"]) == []
        assert await identity.db.count("session") == 1  # the owner's new one only
        client.cookies.clear()
        old = await sign_in(client, "ada@example.com", "squatters-password")
        assert old.status_code == 401


async def test_redirect_targets_are_checked() -> None:
    """The POST's URLs get their own codes; the link's three all get INVALID_CALLBACK_URL
    (better-auth checks each with its callbackURL check)."""
    async with running(plugins=[magic_link(send_magic_link=lambda d, r: None)]) as (_, client):
        for field, code in [
            ("callbackURL", "INVALID_CALLBACK_URL"),
            ("newUserCallbackURL", "INVALID_NEW_USER_CALLBACK_URL"),
            ("errorCallbackURL", "INVALID_ERROR_CALLBACK_URL"),
        ]:
            response = await _ask(client, "a@example.com", **{field: "https://evil.example"})
            assert (response.status_code, response.json()["code"]) == (403, code)
            response = await client.get(
                f"/magic-link/verify?token=abc&{field}=https://evil.example/x"
            )
            assert response.json() == {
                "message": "Invalid callbackURL",
                "code": "INVALID_CALLBACK_URL",
            }
            assert response.status_code == 403
        trusted = await client.get(f"/magic-link/verify?token=abc&errorCallbackURL={BASE}/e")
        assert trusted.headers["location"] == f"{BASE}/e?error=INVALID_TOKEN"


async def test_bad_requests() -> None:
    async with running(plugins=[magic_link(send_magic_link=lambda d, r: None)]) as (_, client):
        response = await _ask(client, "not-an-email")
        assert (response.status_code, response.json()) == (
            400,
            {"message": "[body.email] Invalid email address", "code": "VALIDATION_ERROR"},
        )
        cross_site = await client.post(
            "/sign-in/magic-link",
            json={"email": "a@example.com"},
            headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"},
        )
        assert cross_site.json()["code"] == "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED"


async def test_the_same_answer_for_any_address(smtp_mailbox: SMTPMailbox) -> None:
    """S7: a link is sent whether or not the address has an account: nothing tells them
    apart."""
    async with running(plugins=_plugin(smtp_mailbox)) as (_, client):
        await sign_up(client, "known@example.com")
        client.cookies.clear()
        known = await _ask(client, "known@example.com")
        unknown = await _ask(client, "unknown@example.com")
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
        assert known.headers.get("set-cookie") == unknown.headers.get("set-cookie") is None
        await _link(smtp_mailbox, "known@example.com")
        await _link(smtp_mailbox, "unknown@example.com")


async def test_the_stored_row_is_better_auths() -> None:
    """A database shared with better-auth: `magic-link:<token>` holding
    `{"type":"magic-link","email","name"}`, or the token's SHA-256 (S8) when hashed."""
    sent: list[MagicLinkEmail] = []
    for store_token in ("plain", "hashed"):
        plugin = magic_link(send_magic_link=lambda d, r: sent.append(d), store_token=store_token)
        async with running(plugins=[plugin]) as (identity, client):
            await _ask(client, "Ada@example.com", name="Ada", metadata={"from": "test"})
            token = sent[-1].token
            assert sent[-1].metadata == {"from": "test"} and sent[-1].email == "Ada@example.com"
            stored = token if store_token == "plain" else sha256_base64url(token)
            rows = await identity.db.find_many(
                "verification", eq("identifier", f"magic-link:{stored}")
            )
            assert len(rows) == 1
            assert json.loads(rows[0]["value"]) == {
                "type": "magic-link",
                "email": "Ada@example.com",
                "name": "Ada",
            }
            assert (
                rows[0]["value"] == '{"type":"magic-link","email":"Ada@example.com","name":"Ada"}'
            )
            lifetime = rows[0]["expiresAt"] - rows[0]["createdAt"]
            assert lifetime.total_seconds() == pytest.approx(300, abs=1)
            response = await client.get(f"/magic-link/verify?token={token}&callbackURL=/in")
            assert response.headers["location"] == f"{BASE}/in"


async def test_a_row_written_by_better_auth_signs_in() -> None:
    """Shared database: the row better-auth 1.7.25 writes (the verification table, a
    hashed token) is accepted here."""
    plugin = magic_link(send_magic_link=lambda d, r: None, store_token="hashed")
    async with running(plugins=[plugin]) as (identity, client):
        token = "RNKXibcnhgmkJZPBTdjeQmCgsXDozCuN"
        await identity.store.create_verification(
            f"magic-link:{sha256_base64url(token)}",
            '{"type":"magic-link","email":"A@x.com"}',
            300,
        )
        response = await client.get(f"/magic-link/verify?token={token}")
        assert response.status_code == 200 and response.json()["user"]["email"] == "a@x.com"
        # A value that is not a magic-link record (another plugin's row) is no link.
        await identity.store.create_verification("magic-link:forged", '{"email":"b@x.com"}', 300)
        forged = await client.get("/magic-link/verify?token=forged")
        assert forged.headers["location"] == f"{BASE}/?error=INVALID_TOKEN"


async def test_a_link_asked_for_before_a_password_change_can_be_refused() -> None:
    """S13 "not usable after a password change", on request (better-auth has no such check)."""
    sent: list[MagicLinkEmail] = []
    clock = Clock()
    plugin = magic_link(
        send_magic_link=lambda d, r: sent.append(d), invalidate_on_password_change=True
    )
    async with running(plugins=[plugin], clock=clock) as (_, client):
        await sign_up(client, "ada@example.com")
        client.cookies.clear()
        await _ask(client, "ada@example.com", callbackURL="/in")
        clock.advance(1)
        await sign_in(client, "ada@example.com")
        changed = await client.post(
            "/change-password",
            json={"currentPassword": PASSWORD, "newPassword": "another-password"},
            headers=ORIGIN,
        )
        assert changed.status_code == 200
        client.cookies.clear()
        refused = await client.get(_path(sent[-1].url))
        assert refused.headers["location"] == f"{BASE}/in?error=INVALID_TOKEN"
        clock.advance(1)
        await _ask(client, "ada@example.com", callbackURL="/in")
        fresh = await client.get(_path(sent[-1].url))
        assert fresh.headers["location"] == f"{BASE}/in"


async def test_a_mail_that_cannot_be_sent() -> None:
    """better-auth answers a 500; here 502 FAILED_TO_SEND_EMAIL, and the link is dropped."""

    def broken(data: MagicLinkEmail, request: Any) -> None:
        raise ConnectionError("SMTP down")

    async with running(plugins=[magic_link(send_magic_link=broken)]) as (identity, client):
        response = await _ask(client, "ada@example.com")
        assert (response.status_code, response.json()["code"]) == (502, "FAILED_TO_SEND_EMAIL")
        assert await identity.db.count("verification") == 0


async def test_links_in_secondary_storage() -> None:
    """With a secondary storage the link lives there, and still works once."""
    sent: list[MagicLinkEmail] = []
    plugin = magic_link(send_magic_link=lambda d, r: sent.append(d))
    async with running(plugins=[plugin], secondary_storage=MemoryStorage()) as (identity, client):
        await _ask(client, "ada@example.com", callbackURL="/in")
        assert await identity.db.count("verification") == 0
        assert (await client.get(_path(sent[-1].url))).headers["location"] == f"{BASE}/in"
        client.cookies.clear()
        again = await client.get(_path(sent[-1].url))
        assert again.headers["location"] == f"{BASE}/in?error=INVALID_TOKEN"


async def test_the_per_ip_limit() -> None:
    """S5: 5 per 60 s per address on each path (better-auth's magic-link rule)."""
    async with running(
        plugins=[magic_link(send_magic_link=lambda d, r: None)], rate_limit={"enabled": True}
    ) as (_, client):
        asked = [(await _ask(client, f"u{i}@example.com")).status_code for i in range(6)]
        assert asked == [200] * 5 + [429]
        opened = [(await client.get("/magic-link/verify?token=x")).status_code for _ in range(6)]
        assert opened == [302] * 5 + [429]


async def test_mails_to_one_address_are_limited() -> None:
    """S5: one address cannot be flooded with links from one client (5 per 15 min)."""
    options = {"rate_limit": {"enabled": True}, "advanced": {"trusted_proxies": ["127.0.0.1"]}}
    sent: list[MagicLinkEmail] = []
    plugin = magic_link(send_magic_link=lambda d, r: sent.append(d), rate_limit={"max": 100})
    async with running(plugins=[plugin], **options) as (_, client):
        headers = {"x-forwarded-for": "203.0.113.7"}
        answers = [
            (
                await client.post(
                    "/sign-in/magic-link", json={"email": "ada@example.com"}, headers=headers
                )
            ).status_code
            for _ in range(6)
        ]
        assert answers == [200] * 5 + [429]
        assert len(sent) == 5
