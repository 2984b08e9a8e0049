"""`AuthClient` and `AsyncAuthClient` against Bastion's Identity: every test body runs with
the sync client on a real uvicorn server and with the async client in-process.

Mail goes through a real SMTP server (tests/identity/mailbox.py); the tests follow its links
as a user would.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bastion.client import AsyncAuthClient, AuthClient, ClientError, IdentityError
from bastion.identity.email import reset_password_sender, verification_sender
from tests.client.conftest import NEW_PASSWORD, PASSWORD, AuthServer
from tests.client.servers import Served, resolve
from tests.identity.mailbox import SMTPMailbox

EMAIL = "ada@example.com"


async def _signed_up(server: Served, email: str = EMAIL, **options: Any) -> Any:
    client = server.client(**options)
    await resolve(client.sign_up.email(email=email, password=PASSWORD, name="Ada"))
    return client


async def _follow(link: str, server: Served) -> httpx.Response:
    """Open a mailed link as a browser would (one hop, no cookies)."""
    if server.app is None:
        async with httpx.AsyncClient() as browser:
            return await browser.get(link)
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport) as browser:
        return await browser.get(link)


# -- the account flow -----------------------------------------------------------------------


async def test_account_flow(auth_server: AuthServer) -> None:
    """sign-up → get-session → update-user → change-password → list-sessions →
    revoke-other-sessions (S17) → sign-out (S16)."""
    async with auth_server() as server:
        client = server.client()
        assert await resolve(client.get_session()) is None

        signed_up = await resolve(
            client.sign_up.email(email=EMAIL, password=PASSWORD, name="Ada", favorite="tea")
        )
        assert signed_up["user"]["email"] == EMAIL and isinstance(signed_up["token"], str)
        session = await resolve(client.get_session())
        assert session["user"]["id"] == signed_up["user"]["id"]
        assert session["session"]["token"] == signed_up["token"]

        assert await resolve(client.update_user(name="Ada Lovelace")) == {"status": True}
        session = await resolve(client.get_session(disable_cookie_cache=True))
        assert session["user"]["name"] == "Ada Lovelace"

        changed = await resolve(
            client.change_password(current_password=PASSWORD, new_password=NEW_PASSWORD)
        )
        assert changed["token"] is None and changed["user"]["id"] == signed_up["user"]["id"]

        phone = server.client()
        await resolve(phone.sign_in.email(email=EMAIL, password=NEW_PASSWORD))
        sessions = await resolve(client.list_sessions())
        assert len(sessions) == 2

        assert await resolve(client.revoke_other_sessions()) == {"status": True}
        assert await resolve(phone.get_session()) is None
        assert [s["token"] for s in await resolve(client.list_sessions())] == [signed_up["token"]]

        assert await resolve(client.sign_out()) == {"success": True}
        assert await resolve(client.get_session()) is None
        assert not client.cookies  # the server expired the session cookie
        with pytest.raises(IdentityError) as refused:
            await resolve(client.list_sessions())
        assert refused.value.status == 401


async def test_change_password_revoking_other_sessions_keeps_this_one(
    auth_server: AuthServer,
) -> None:
    """S3, S17: the current password is required; `revoke_other_sessions` ends the others and
    the client carries on with the new session the server issued."""
    async with auth_server() as server:
        client = await _signed_up(server)
        phone = server.client()
        await resolve(phone.sign_in.email(email=EMAIL, password=PASSWORD))
        with pytest.raises(IdentityError) as wrong:
            await resolve(
                client.change_password(current_password="not-the-password", new_password="x" * 12)
            )
        assert (wrong.value.status, wrong.value.code) == (400, "INVALID_PASSWORD")

        changed = await resolve(
            client.change_password(
                current_password=PASSWORD, new_password=NEW_PASSWORD, revoke_other_sessions=True
            )
        )
        assert isinstance(changed["token"], str)
        assert client.token is not None and client.token.split(".")[0] == changed["token"]
        assert (await resolve(client.get_session()))["session"]["token"] == changed["token"]
        assert await resolve(phone.get_session()) is None


async def test_revoke_one_session_and_all(auth_server: AuthServer) -> None:
    async with auth_server() as server:
        client = await _signed_up(server)
        phone = server.client()
        phone_token = (await resolve(phone.sign_in.email(email=EMAIL, password=PASSWORD)))["token"]
        assert await resolve(client.revoke_session(phone_token)) == {"status": True}
        assert await resolve(phone.get_session()) is None
        assert await resolve(client.get_session()) is not None

        assert await resolve(client.revoke_sessions()) == {"status": True}
        assert client.token is None  # that token's session is gone too
        assert await resolve(client.get_session()) is None


# -- mailed links ---------------------------------------------------------------------------


async def test_password_reset_with_the_mailed_token(
    auth_server: AuthServer, smtp_mailbox: SMTPMailbox
) -> None:
    """The mailed link leads to `redirect_to?token=…`; the token resets once (S8)."""
    sender = reset_password_sender(smtp_mailbox.mailer())
    options = {"email_and_password": {"enabled": True, "send_reset_password": sender}}
    async with auth_server(**options) as server:
        await _signed_up(server)
        client = server.client()
        answer = await resolve(client.request_password_reset(email=EMAIL, redirect_to="/reset"))
        assert answer["status"] is True
        await smtp_mailbox.wait_for(EMAIL)
        link = smtp_mailbox.url_for(EMAIL, containing="/reset-password/")
        assert link.startswith(f"{server.origin}/api/auth/reset-password/")

        landed = await _follow(link, server)
        assert landed.status_code == 302
        target = urlsplit(landed.headers["location"])
        assert target.path == "/reset"
        token = parse_qs(target.query)["token"][0]

        assert await resolve(client.reset_password(new_password=NEW_PASSWORD, token=token)) == {
            "status": True
        }
        with pytest.raises(IdentityError) as reused:
            await resolve(client.reset_password(new_password="another-password", token=token))
        assert (reused.value.status, reused.value.code) == (400, "INVALID_TOKEN")

        with pytest.raises(IdentityError) as old:
            await resolve(client.sign_in.email(email=EMAIL, password=PASSWORD))
        assert old.value.code == "INVALID_EMAIL_OR_PASSWORD"
        signed_in = await resolve(client.sign_in.email(email=EMAIL, password=NEW_PASSWORD))
        assert signed_in["user"]["email"] == EMAIL


async def test_verify_email_with_the_mailed_token(
    auth_server: AuthServer, smtp_mailbox: SMTPMailbox
) -> None:
    options = {
        "email_verification": {
            "send_verification_email": verification_sender(smtp_mailbox.mailer())
        }
    }
    async with auth_server(**options) as server:
        client = await _signed_up(server)
        assert (await resolve(client.get_session()))["user"]["emailVerified"] is False
        answer = await resolve(client.send_verification_email(email=EMAIL, callback_url="/done"))
        assert answer == {"status": True}
        await smtp_mailbox.wait_for(EMAIL)
        link = smtp_mailbox.url_for(EMAIL, containing="/verify-email")
        token = parse_qs(urlsplit(link).query)["token"][0]

        assert await resolve(client.verify_email(token=token)) == {"status": True, "user": None}
        session = await resolve(client.get_session(disable_cookie_cache=True))
        assert session["user"]["emailVerified"] is True

        with pytest.raises(IdentityError) as bad:
            await resolve(client.verify_email(token=token + "x"))
        assert (bad.value.status, bad.value.code) == (401, "INVALID_TOKEN")


async def test_change_email_and_delete_user(auth_server: AuthServer) -> None:
    """S17: deleting the user ends its session."""
    options = {
        "user": {
            "change_email": {"enabled": True, "update_email_without_verification": True},
            "delete_user": {"enabled": True},
        }
    }
    async with auth_server(**options) as server:
        client = await _signed_up(server)
        assert await resolve(client.change_email(new_email="lovelace@example.com")) == {
            "status": True
        }
        session = await resolve(client.get_session(disable_cookie_cache=True))
        assert session["user"]["email"] == "lovelace@example.com"

        with pytest.raises(IdentityError) as wrong:
            await resolve(client.delete_user(password="not-the-password"))
        assert wrong.value.code == "INVALID_PASSWORD"
        deleted = await resolve(client.delete_user(password=PASSWORD))
        assert deleted == {"success": True, "message": "User deleted"}
        assert await resolve(client.get_session()) is None
        with pytest.raises(IdentityError):
            await resolve(client.sign_in.email(email="lovelace@example.com", password=PASSWORD))


# -- bearer tokens --------------------------------------------------------------------------


async def test_bearer_token_from_set_auth_token(auth_server: AuthServer) -> None:
    """The token the server sends in `set-auth-token` works alone (no cookies), as with the
    JS bearer plugin recipe; signing out with it ends the session for everyone (S16)."""
    async with auth_server() as server:
        browser = server.client()
        assert browser.token is None
        signed_in = await resolve(browser.sign_up.email(email=EMAIL, password=PASSWORD, name="A"))
        token = browser.token
        assert token is not None and token.split(".")[0] == signed_in["token"]

        script = server.client(token=token)
        assert not script.cookies
        session = await resolve(script.get_session())
        assert session["user"]["email"] == EMAIL
        assert await resolve(script.update_user(name="Script")) == {"status": True}

        assert await resolve(script.sign_out()) == {"success": True}
        assert script.token is None
        assert await resolve(browser.get_session()) is None
        replay = server.client(token=token)
        assert await resolve(replay.get_session()) is None


async def test_a_raw_session_token_works_as_bearer(auth_server: AuthServer) -> None:
    """better-auth's bearer plugin signs an unsigned token itself (spec §5.5)."""
    async with auth_server() as server:
        first = server.client()
        raw = (await resolve(first.sign_up.email(email=EMAIL, password=PASSWORD, name="A")))[
            "token"
        ]
        script = server.client(token=raw)
        assert (await resolve(script.get_session()))["session"]["token"] == raw


async def test_a_forged_bearer_token_is_no_session(auth_server: AuthServer) -> None:
    async with auth_server() as server:
        await _signed_up(server)
        forged = server.client(token="A" * 32 + ".bm90LWEtc2lnbmF0dXJlLW5vdC1hLXNpZ25hdHVyZS0=")
        assert await resolve(forged.get_session()) is None
        with pytest.raises(IdentityError) as refused:
            await resolve(forged.list_sessions())
        assert refused.value.status == 401


# -- errors and the wire --------------------------------------------------------------------


async def test_errors_are_typed(auth_server: AuthServer) -> None:
    async with auth_server() as server:
        client = await _signed_up(server)
        with pytest.raises(IdentityError) as taken:
            await resolve(client.sign_up.email(email=EMAIL, password=PASSWORD, name="Again"))
        error = taken.value
        assert (error.status, error.code) == (422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
        assert error.message == "User already exists. Use another email."
        assert isinstance(error, ClientError) and error.response is not None

        with pytest.raises(IdentityError) as wrong:
            await resolve(client.sign_in.email(email=EMAIL, password="wrong-password"))
        assert (wrong.value.status, wrong.value.code) == (401, "INVALID_EMAIL_OR_PASSWORD")
        assert str(wrong.value) == "401 INVALID_EMAIL_OR_PASSWORD: Invalid email or password"

        with pytest.raises(IdentityError) as nothing:  # a message without a code
            await resolve(client.update_user())
        assert (nothing.value.status, nothing.value.code) == (400, None)
        assert nothing.value.message == "No fields to update"

        with pytest.raises(IdentityError) as missing:  # no body at all
            await resolve(client.request("GET", "/no-such-endpoint"))
        assert (missing.value.status, missing.value.code) == (404, None)
        assert missing.value.message == "Not Found"

        # The session survives all of that.
        assert await resolve(client.get_session()) is not None


async def test_the_origin_header_passes_the_csrf_check(auth_server: AuthServer) -> None:
    """S19: better-auth refuses a cookie-carrying POST from an untrusted Origin; the client
    sends its base URL's origin, which the server trusts, unless told another."""
    async with auth_server() as server:
        client = await _signed_up(server)
        cookies = dict(client.cookies)
        elsewhere = server.client(cookies=cookies, origin="http://evil.example")
        with pytest.raises(IdentityError) as refused:
            await resolve(elsewhere.update_user(name="Mallory"))
        assert (refused.value.status, refused.value.code) == (403, "INVALID_ORIGIN")
        same = server.client(cookies=cookies)
        assert await resolve(same.update_user(name="Ada")) == {"status": True}


async def test_request_reaches_other_endpoints(auth_server: AuthServer) -> None:
    async with auth_server() as server:
        client = server.client()
        assert await resolve(client.request("GET", "/ok")) == {"ok": True}
        with pytest.raises(ValueError):
            client.request("GET", "https://elsewhere.example/ok")


# -- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "root"),
    [
        ("http://127.0.0.1:4111", "http://127.0.0.1:4111/api/auth"),
        ("http://127.0.0.1:4111/", "http://127.0.0.1:4111/api/auth"),
        ("https://auth.example.com/custom/auth/", "https://auth.example.com/custom/auth"),
    ],
)
def test_base_url(base_url: str, root: str) -> None:
    with AuthClient(base_url) as client:
        assert client.base_url == root


@pytest.mark.parametrize("base_url", ["127.0.0.1:4111", "ftp://host", "http://h/?x=1", "/api"])
def test_a_bad_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError):
        AuthClient(base_url)


async def test_the_token_stays_out_of_repr() -> None:
    async with AsyncAuthClient("http://127.0.0.1:4111", token="secret-token.sig") as client:
        assert "secret" not in repr(client)
        assert repr(client) == "AsyncAuthClient('http://127.0.0.1:4111/api/auth')"


def test_a_given_http_client_is_left_open() -> None:
    http = httpx.Client()
    with AuthClient("http://127.0.0.1:4111", http_client=http):
        pass
    assert not http.is_closed
    http.close()
    with AuthClient("http://127.0.0.1:4111") as owned:
        pass
    assert owned._transport.http.is_closed
