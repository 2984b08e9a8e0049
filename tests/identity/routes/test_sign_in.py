"""POST /sign-in/email (spec §3.2, errata 3 and 6), over HTTP and in-process.

S1: long and Unicode passwords round-trip and are compared whole. S7: unknown email, no
password and wrong password look the same and cost one scrypt each. S19: login CSRF is
refused by Fetch-Metadata and Origin; a client with no Origin and no cookie (curl) passes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bastion.identity import APIError, Code
from bastion.identity.email import verification_sender
from tests.identity.conftest import MakeIdentity, running
from tests.identity.mailbox import SMTPMailbox

from .helpers import (
    ORIGIN,
    PASSWORD,
    SESSION_COOKIE,
    ScryptCounter,
    browser,
    set_cookie,
    sign_in,
    sign_up,
)

USER_KEYS = ["id", "name", "email", "emailVerified", "image", "createdAt", "updatedAt"]
INVALID = {"message": "Invalid email or password", "code": "INVALID_EMAIL_OR_PASSWORD"}

# better-auth 1.7.1's scrypt hash of "password123", from the golden run
# (spec/better-auth-golden/run1.out, the account row of alice@example.com).
GOLDEN_HASH = (
    "ccdf1d9d1006bfc5d13d939e86643f84:b151a12ff719df553672e1587edddfbff7461c43ddbcc37e35883041"
    "bb5ce5e782292a642dd60f2f7e9cd64696ee629da7b62a8ac55c71bd195086788c34ea26"
)


async def test_sign_in_answers_redirect_token_and_user(make_identity: MakeIdentity) -> None:
    async with make_identity() as (identity, client):
        await sign_up(client, "ada@example.com")
        async with browser(identity, origin=False) as other:
            response = await sign_in(other, "ADA@example.com")
            assert response.status_code == 200
            body = response.json()
            assert list(body) == ["redirect", "token", "user"]
            assert body["redirect"] is False and re.fullmatch(r"[A-Za-z0-9]{32}", body["token"])
            assert list(body["user"]) == USER_KEYS
            assert body["user"]["email"] == "ada@example.com"
            assert "password" not in response.text.lower()
            assert "location" not in response.headers
            cookie = set_cookie(response, SESSION_COOKIE)
            assert cookie is not None and cookie["value"].startswith(body["token"] + ".")
            session = (await other.get("/get-session")).json()
            assert session["session"]["token"] == body["token"]


async def test_a_callback_url_answers_200_with_a_location() -> None:
    async with running() as (_, client):
        await sign_up(client, "cb@example.com")
        response = await sign_in(client, "cb@example.com", callbackURL="/dashboard")
        assert response.status_code == 200
        assert response.headers["location"] == "/dashboard"
        body = response.json()
        assert list(body) == ["redirect", "token", "url", "user"]
        assert body["redirect"] is True and body["url"] == "/dashboard"


async def test_an_untrusted_callback_url_is_refused() -> None:
    async with running() as (_, client):
        await sign_up(client, "evil@example.com")
        response = await sign_in(client, "evil@example.com", callbackURL="https://evil.example")
        assert response.status_code == 403
        assert response.json()["code"] == "INVALID_CALLBACK_URL"


async def test_failures_look_alike_and_cost_the_same(
    make_identity: MakeIdentity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S7: wrong password, unknown email and a user without a password: one 401 body, one
    scrypt each."""
    async with make_identity() as (identity, client):
        await sign_up(client, "known@example.com")
        social = await identity.store.create_user(
            {"name": "Social", "email": "social@example.com", "emailVerified": True}
        )
        await identity.store.create_account(
            {"userId": social["id"], "accountId": "gh-1", "providerId": "github"}
        )
        empty = await identity.store.create_user(
            {"name": "Empty", "email": "empty@example.com", "emailVerified": True}
        )
        await identity.store.create_account(
            {"userId": empty["id"], "accountId": empty["id"], "providerId": "credential"}
        )
        scrypt = ScryptCounter(monkeypatch)
        answers = []
        for email, password in [
            ("known@example.com", "wrong-password"),
            ("nobody@example.com", PASSWORD),
            ("social@example.com", PASSWORD),
            ("empty@example.com", PASSWORD),
        ]:
            async with browser(identity) as fresh:
                response = await sign_in(fresh, email, password)
            answers.append((response.status_code, response.json(), scrypt.take()))
            assert set_cookie(response, SESSION_COOKIE) is None
        assert answers == [(401, INVALID, 1)] * 4


async def test_an_invalid_email_is_invalid_email() -> None:
    """Errata 2: not the schema error sign-up answers."""
    async with running() as (_, client):
        response = await sign_in(client, "not-an-email")
        assert response.status_code == 400
        assert response.json() == {"message": "Invalid email", "code": "INVALID_EMAIL"}


async def test_a_too_long_password_is_refused_before_hashing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Errata 3: 129 characters → 400 PASSWORD_TOO_LONG (not 401), and no scrypt."""
    async with running() as (_, client):
        await sign_up(client, "long@example.com")
        scrypt = ScryptCounter(monkeypatch)
        response = await sign_in(client, "long@example.com", "x" * 129)
        assert response.status_code == 400
        assert response.json() == {"message": "Password too long", "code": "PASSWORD_TOO_LONG"}
        assert scrypt.take() == 0
        at_limit = await sign_in(client, "long@example.com", "x" * 128)
        assert at_limit.status_code == 401


async def test_an_empty_password_is_401() -> None:
    """Errata 3: sign-in has no minimum; "" is just a wrong password."""
    async with running() as (_, client):
        await sign_up(client, "e@example.com")
        response = await sign_in(client, "e@example.com", "")
        assert response.status_code == 401
        assert response.json() == INVALID


async def test_an_unverified_email_is_refused_when_verification_is_required(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    """403 EMAIL_NOT_VERIFIED; with `send_on_sign_in` a new link is mailed first, and
    following it lets the user in."""
    options = {
        "email_and_password": {"enabled": True, "require_email_verification": True},
        "email_verification": {
            "send_verification_email": verification_sender(smtp_mailbox.mailer()),
            "send_on_sign_in": True,
            "send_on_sign_up": False,
        },
    }
    async with make_identity(**options) as (_, client):
        assert (await sign_up(client, "unverified@example.com")).json()["token"] is None
        assert smtp_mailbox.messages == []
        refused = await sign_in(client, "unverified@example.com")
        assert refused.status_code == 403
        assert refused.json() == {"message": "Email not verified", "code": "EMAIL_NOT_VERIFIED"}
        await smtp_mailbox.wait_for("unverified@example.com")
        link = smtp_mailbox.url_for("unverified@example.com", containing="/verify-email")
        assert (await client.get(link)).status_code == 302
        assert (await sign_in(client, "unverified@example.com")).status_code == 200


async def test_an_unverified_email_without_send_on_sign_in_mails_nothing(
    smtp_mailbox: SMTPMailbox,
) -> None:
    options: dict[str, Any] = {
        "email_and_password": {"enabled": True, "require_email_verification": True},
        "email_verification": {
            "send_verification_email": verification_sender(smtp_mailbox.mailer()),
            "send_on_sign_up": False,
        },
    }
    async with running(**options) as (_, client):
        await sign_up(client, "quiet@example.com")
        assert (await sign_in(client, "quiet@example.com")).status_code == 403
        assert smtp_mailbox.messages == []


async def test_a_wrong_password_of_an_unverified_user_is_still_401() -> None:
    """The verification check comes after the password: it must not reveal the account."""
    options: dict[str, Any] = {
        "email_and_password": {"enabled": True, "require_email_verification": True}
    }
    async with running(**options) as (_, client):
        await sign_up(client, "u@example.com")
        assert (await sign_in(client, "u@example.com", "wrong-password")).status_code == 401


async def test_sign_in_can_be_disabled() -> None:
    async with running(email_and_password={"enabled": False}) as (_, client):
        response = await sign_in(client, "off@example.com")
        assert response.status_code == 400
        assert response.json() == {
            "message": "Email and password is not enabled",
            "code": "EMAIL_PASSWORD_DISABLED",
        }


async def test_cross_site_navigation_is_refused_even_from_a_trusted_origin() -> None:
    """S19, errata 6: a form posted by another site is login CSRF."""
    async with running() as (identity, client):
        await sign_up(client, "csrf@example.com")
        async with browser(identity, origin=False) as fresh:
            response = await fresh.post(
                "/sign-in/email",
                data={"email": "csrf@example.com", "password": PASSWORD},
                headers={**ORIGIN, "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"},
            )
        assert response.status_code == 403
        assert response.json() == {
            "message": (
                "Cross-site navigation login blocked. This request appears to be a CSRF attack."
            ),
            "code": "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED",
        }
        assert set_cookie(response, SESSION_COOKIE) is None


async def test_an_untrusted_origin_is_refused() -> None:
    """S19: without cookies, an Origin that is sent must be trusted."""
    async with running() as (identity, client):
        await sign_up(client, "o@example.com")
        async with browser(identity, origin=False) as fresh:
            response = await fresh.post(
                "/sign-in/email",
                json={"email": "o@example.com", "password": PASSWORD},
                headers={"origin": "https://evil.example"},
            )
        assert response.status_code == 403
        assert response.json() == {"message": "Invalid origin", "code": "INVALID_ORIGIN"}


async def test_no_origin_and_no_cookie_passes() -> None:
    """S19: curl and server-to-server clients send neither; nothing to forge there."""
    async with running() as (identity, client):
        await sign_up(client, "curl@example.com")
        async with browser(identity, origin=False) as curl:
            response = await curl.post(
                "/sign-in/email", json={"email": "curl@example.com", "password": PASSWORD}
            )
        assert response.status_code == 200


async def test_a_hash_written_by_typescript_better_auth_verifies(
    make_identity: MakeIdentity,
) -> None:
    """A user and credential account as better-auth stores them sign in with Bastion."""
    async with make_identity() as (identity, client):
        user = await identity.db.create(
            "user", {"name": "Alice", "email": "alice@example.com", "emailVerified": False}
        )
        await identity.db.create(
            "account",
            {
                "userId": user["id"],
                "accountId": user["id"],
                "providerId": "credential",
                "password": GOLDEN_HASH,
            },
        )
        assert (await sign_in(client, "alice@example.com", "password123")).status_code == 200
        assert (await sign_in(client, "alice@example.com", "password124")).status_code == 401


LONG = "Correct-Horse-Battery-Staple-" * 2 + "x" * 6  # 64 characters
UNICODE = "pässwörd-日本語-🔐🔐"


@pytest.mark.parametrize("password", [LONG, UNICODE], ids=["64-chars", "unicode"])
async def test_long_and_unicode_passwords_round_trip(
    make_identity: MakeIdentity, password: str
) -> None:
    """S1: sign up and sign in with it; no truncation, no case folding."""
    assert len(LONG) == 64
    async with make_identity() as (identity, client):
        assert (await sign_up(client, "s1@example.com", password)).status_code == 200
        async with browser(identity) as other:
            assert (await sign_in(other, "s1@example.com", password)).status_code == 200
            assert (await sign_in(other, "s1@example.com", password.upper())).status_code == 401
            assert (await sign_in(other, "s1@example.com", password[:-1])).status_code == 401


async def test_a_password_differing_only_at_character_60_fails() -> None:
    """S1: nothing past some prefix is dropped (bcrypt stops at 72 bytes; scrypt does not)."""
    async with running() as (_, client):
        await sign_up(client, "s1b@example.com", LONG)
        changed = LONG[:59] + ("y" if LONG[59] != "y" else "z") + LONG[60:]
        assert len(changed) == 64 and changed != LONG
        assert (await sign_in(client, "s1b@example.com", changed)).status_code == 401
        assert (await sign_in(client, "s1b@example.com", LONG)).status_code == 200


async def test_remember_me_false_at_sign_in() -> None:
    async with running() as (_, client):
        await sign_up(client, "rm@example.com")
        response = await sign_in(client, "rm@example.com", rememberMe=False)
        cookie = set_cookie(response, SESSION_COOKIE)
        assert cookie is not None and "max-age" not in cookie
        assert set_cookie(response, "better-auth.dont_remember") is not None


async def test_a_form_encoded_sign_in() -> None:
    async with running() as (identity, client):
        await sign_up(client, "form@example.com")
        async with browser(identity, origin=False) as fresh:
            response = await fresh.post(
                "/sign-in/email", data={"email": "form@example.com", "password": PASSWORD}
            )
        assert response.status_code == 200


async def test_sign_in_in_process() -> None:
    async with running() as (identity, client):
        await sign_up(client, "api@example.com")
        result = await identity.api.sign_in_email(
            body={"email": "api@example.com", "password": PASSWORD}
        )
        assert result["redirect"] is False and result["user"]["email"] == "api@example.com"
        found = await identity.store.find_session(result["token"])
        assert found is not None
        with pytest.raises(APIError) as refused:
            await identity.api.sign_in_email(body={"email": "api@example.com", "password": "no"})
        assert (refused.value.status, refused.value.code) == (401, Code.INVALID_EMAIL_OR_PASSWORD)
