"""GET /verify-email and POST /send-verification-email (spec §3.2, §7.4, errata 11),
following the links a real SMTP server received.

S7: without a session, send-verification-email answers `{status: true}` after at least
0.5 s and mails only an existing unverified user. S8: the link is a signed JWT bound to
the user (`userId`) that expires (1 h); a forged or expired one is refused.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from bastion.identity.email import verification_sender
from tests.identity.conftest import MakeIdentity, running
from tests.identity.mailbox import SMTPMailbox

from .helpers import (
    ORIGIN,
    SESSION_COOKIE,
    Clock,
    browser,
    jwt_claims,
    query_of,
    set_cookie,
    sign_in,
    sign_up,
)


def _options(mailbox: SMTPMailbox, **verification: Any) -> dict[str, Any]:
    return {
        "email_verification": {
            "send_verification_email": verification_sender(mailbox.mailer()),
            "send_on_sign_up": True,
            **verification,
        }
    }


def _without_callback(link: str) -> str:
    return link.split("&callbackURL=")[0]


async def _link_after_sign_up(
    client: httpx.AsyncClient, mailbox: SMTPMailbox, email: str = "ada@example.com", **extra: Any
) -> str:
    response = await sign_up(client, email, **extra)
    assert response.status_code == 200, response.text
    await mailbox.wait_for(email)
    return mailbox.url_for(email, containing="/verify-email")


async def test_the_mailed_link_verifies_the_email(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    """Without callbackURL: `{"status": true, "user": null}` (errata 11)."""
    async with make_identity(**_options(smtp_mailbox)) as (identity, client):
        link = await _link_after_sign_up(client, smtp_mailbox)
        assert link.startswith("http://localhost:3000/api/auth/verify-email?token=")
        assert link.endswith("&callbackURL=%2F")
        async with browser(identity) as elsewhere:
            response = await elsewhere.get(_without_callback(link))
            assert response.status_code == 200
            assert response.json() == {"status": True, "user": None}
            assert set_cookie(response, SESSION_COOKIE) is None  # no auto sign-in by default
        user = await identity.store.find_user_by_email("ada@example.com")
        assert user is not None and user["emailVerified"] is True


async def test_the_token_claims(smtp_mailbox: SMTPMailbox) -> None:
    """Errata 11: email, userId, iat, exp — an HS256 JWT living `expires_in` (3600 s)."""
    async with running(**_options(smtp_mailbox)) as (identity, client):
        link = await _link_after_sign_up(client, smtp_mailbox, "Ada@Example.com")
        token = query_of(link)["token"]
        claims = jwt_claims(token)
        user = await identity.store.find_user_by_email("ada@example.com")
        assert user is not None
        assert set(claims) == {"email", "userId", "iat", "exp"}
        assert (claims["email"], claims["userId"]) == ("ada@example.com", user["id"])
        assert claims["exp"] - claims["iat"] == 3600
        header = token.split(".")[0]
        assert jwt_claims(f"x.{header}.y") == {"alg": "HS256"}  # the header, as jose writes it


async def test_with_a_callback_url_it_redirects(smtp_mailbox: SMTPMailbox) -> None:
    async with running(**_options(smtp_mailbox)) as (_, client):
        link = await _link_after_sign_up(client, smtp_mailbox, callbackURL="/welcome")
        assert link.endswith("&callbackURL=%2Fwelcome")
        response = await client.get(link)
        assert response.status_code == 302
        assert response.headers["location"] == "/welcome"


async def test_an_expired_link(smtp_mailbox: SMTPMailbox) -> None:
    clock = Clock()
    async with running(**_options(smtp_mailbox), clock=clock) as (identity, client):
        link = await _link_after_sign_up(client, smtp_mailbox)
        clock.advance(3600)
        response = await client.get(_without_callback(link))
        assert response.status_code == 401
        assert response.json() == {"message": "Token expired", "code": "TOKEN_EXPIRED"}
        redirected = await client.get(_without_callback(link) + "&callbackURL=%2Fwelcome")
        assert redirected.status_code == 302
        assert redirected.headers["location"] == "/welcome?error=TOKEN_EXPIRED"
        user = await identity.store.find_user_by_email("ada@example.com")
        assert user is not None and user["emailVerified"] is False


@pytest.mark.parametrize("part", ["payload", "signature"])
async def test_a_tampered_link(smtp_mailbox: SMTPMailbox, part: str) -> None:
    async with running(**_options(smtp_mailbox)) as (identity, client):
        token = query_of(await _link_after_sign_up(client, smtp_mailbox))["token"]
        header, payload, signature = token.split(".")
        if part == "payload":
            payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
        else:
            signature = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
        response = await client.get(
            "/verify-email", params={"token": f"{header}.{payload}.{signature}"}
        )
        assert response.status_code == 401
        assert response.json() == {"message": "Invalid token", "code": "INVALID_TOKEN"}
        redirected = await client.get(
            "/verify-email",
            params={"token": f"{header}.{payload}.{signature}", "callbackURL": "/w?x=1"},
        )
        assert redirected.headers["location"] == "/w?x=1&error=INVALID_TOKEN"
        user = await identity.store.find_user_by_email("ada@example.com")
        assert user is not None and user["emailVerified"] is False


async def test_a_token_for_another_user_of_the_address(smtp_mailbox: SMTPMailbox) -> None:
    """S8: the token is bound to the user id as well as the address."""
    async with running(**_options(smtp_mailbox)) as (identity, client):
        await _link_after_sign_up(client, smtp_mailbox)
        forged = identity.context.sign_jwt(
            {"email": "ada@example.com", "userId": "someone-else"}, 600
        )
        response = await client.get("/verify-email", params={"token": forged})
        assert response.status_code == 401
        assert response.json()["code"] == "INVALID_TOKEN"
        unknown = identity.context.sign_jwt({"email": "nobody@example.com"}, 600)
        response = await client.get("/verify-email", params={"token": unknown})
        assert response.status_code == 401
        assert response.json() == {"message": "User not found", "code": "USER_NOT_FOUND"}


async def test_an_already_verified_email(smtp_mailbox: SMTPMailbox) -> None:
    async with running(**_options(smtp_mailbox)) as (_, client):
        link = await _link_after_sign_up(client, smtp_mailbox)
        assert (await client.get(_without_callback(link))).json() == {"status": True, "user": None}
        again = await client.get(_without_callback(link))
        assert again.status_code == 200
        assert again.json() == {"status": True, "user": None}
        assert (await client.get(link)).headers["location"] == "/"


async def test_auto_sign_in_after_verification(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    hooks: list[str] = []

    async def before(user: dict[str, Any], request: Any) -> None:
        hooks.append(f"before:{user['emailVerified']}")

    def after(user: dict[str, Any], request: Any) -> None:
        hooks.append(f"after:{user['emailVerified']}")

    options = {
        "email_and_password": {"enabled": True, "require_email_verification": True},
        **_options(
            smtp_mailbox,
            auto_sign_in_after_verification=True,
            before_email_verification=before,
            after_email_verification=after,
        ),
    }
    async with make_identity(**options) as (identity, client):
        link = await _link_after_sign_up(client, smtp_mailbox)
        async with browser(identity) as other:
            response = await other.get(link)
            assert response.status_code == 302
            cookie = set_cookie(response, SESSION_COOKIE)
            assert cookie is not None and cookie["max-age"] == "604800"
            session = (await other.get("/get-session")).json()
            assert session["user"]["email"] == "ada@example.com"
            assert session["user"]["emailVerified"] is True
        assert hooks == ["before:False", "after:True"]


# -- send-verification-email --------------------------------------------------------------


async def test_send_verification_email_disabled() -> None:
    async with running() as (_, client):
        response = await client.post("/send-verification-email", json={"email": "ada@example.com"})
        assert response.status_code == 400
        assert response.json() == {
            "message": "Verification email isn't enabled",
            "code": "VERIFICATION_EMAIL_NOT_ENABLED",
        }


async def test_without_a_session_only_an_unverified_user_gets_mail(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    """S7: the same `{status: true}` after ≥ 0.5 s (bounded below only; CI is slow)."""
    options = _options(smtp_mailbox, send_on_sign_up=False)
    async with make_identity(**options) as (identity, client):
        await sign_up(client, "unverified@example.com")
        verified = (await sign_up(client, "verified@example.com")).json()["user"]
        await identity.store.update_user(verified["id"], {"emailVerified": True})
        assert smtp_mailbox.messages == []
        async with browser(identity) as anonymous:
            for email in ("nobody@example.com", "verified@example.com", "Unverified@example.com"):
                started = time.monotonic()
                response = await anonymous.post(
                    "/send-verification-email", json={"email": email, "callbackURL": "/done"}
                )
                assert time.monotonic() - started >= 0.45
                assert response.status_code == 200 and response.json() == {"status": True}
        assert [m.rcpt_tos for m in smtp_mailbox.messages] == [("unverified@example.com",)]
        link = smtp_mailbox.url_for("unverified@example.com", containing="/verify-email")
        assert link.endswith("&callbackURL=%2Fdone")
        assert (await client.get(link)).headers["location"] == "/done"
        user = await identity.store.find_user_by_email("unverified@example.com")
        assert user is not None and user["emailVerified"] is True


async def test_with_a_session_the_email_must_be_ones_own_and_unverified(
    smtp_mailbox: SMTPMailbox,
) -> None:
    async with running(**_options(smtp_mailbox, send_on_sign_up=False)) as (identity, client):
        user = (await sign_up(client, "ada@example.com")).json()["user"]
        client.headers.update(ORIGIN)
        mismatch = await client.post(
            "/send-verification-email", json={"email": "someone@example.com"}
        )
        assert mismatch.status_code == 400
        assert mismatch.json() == {"message": "Email mismatch", "code": "EMAIL_MISMATCH"}
        own = await client.post("/send-verification-email", json={"email": "ADA@example.com"})
        assert own.status_code == 200 and own.json() == {"status": True}
        await smtp_mailbox.wait_for("ada@example.com")
        await identity.store.update_user(user["id"], {"emailVerified": True})
        done = await client.post("/send-verification-email", json={"email": "ada@example.com"})
        assert done.status_code == 400
        assert done.json() == {
            "message": "Email is already verified",
            "code": "EMAIL_ALREADY_VERIFIED",
        }


async def test_send_verification_email_checks_the_address(smtp_mailbox: SMTPMailbox) -> None:
    async with running(**_options(smtp_mailbox)) as (_, client):
        response = await client.post("/send-verification-email", json={"email": "nope"})
        assert response.status_code == 400
        assert response.json() == {
            "message": "[body.email] Invalid email address",
            "code": "VALIDATION_ERROR",
        }


async def test_a_verified_user_can_sign_in_when_verification_is_required(
    smtp_mailbox: SMTPMailbox,
) -> None:
    options = {
        "email_and_password": {"enabled": True, "require_email_verification": True},
        **_options(smtp_mailbox),
    }
    async with running(**options) as (identity, client):
        link = await _link_after_sign_up(client, smtp_mailbox)
        async with browser(identity) as other:
            assert (await sign_in(other, "ada@example.com")).status_code == 403
            await other.get(link)
            assert (await sign_in(other, "ada@example.com")).status_code == 200
