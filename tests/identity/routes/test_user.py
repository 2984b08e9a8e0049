"""The signed-in user: /update-user, /change-email, /delete-user and its callback
(spec §3.2, errata 4 and 10), with the mails going through a real SMTP server.

S3: a new address must be proven by a mailed link (unless the current one was never
verified and the option allows it). S7: change-email answers a taken address as a free
one. S17: deleting a user ends all of its sessions.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from bastion.identity import Identity
from bastion.identity.db import Field, eq
from bastion.identity.email import (
    change_email_sender,
    delete_account_sender,
    verification_sender,
)
from tests.identity.conftest import MakeIdentity, running
from tests.identity.mailbox import SMTPMailbox

from .helpers import (
    ORIGIN,
    PASSWORD,
    SESSION_COOKIE,
    Clock,
    browser,
    jwt_claims,
    query_of,
    set_cookie,
    sign_in,
    sign_up,
)


async def _signed_up(client: httpx.AsyncClient, email: str = "ada@example.com") -> dict[str, Any]:
    """Sign up (which signs the client in) and send the Origin from now on."""
    response = await sign_up(client, email)
    assert response.status_code == 200, response.text
    client.headers.update(ORIGIN)
    user: dict[str, Any] = response.json()["user"]
    return user


async def _session_user(client: httpx.AsyncClient) -> dict[str, Any] | None:
    body = (await client.get("/get-session")).json()
    return None if body is None else dict(body["user"])


async def _verify(identity: Identity, user_id: str) -> None:
    await identity.store.update_user(user_id, {"emailVerified": True})


# -- update-user --------------------------------------------------------------------------


async def test_update_user_changes_name_and_image(make_identity: MakeIdentity) -> None:
    async with make_identity() as (identity, client):
        user = await _signed_up(client)
        response = await client.post(
            "/update-user", json={"name": "Ada L.", "image": "https://img.example/ada.png"}
        )
        assert response.status_code == 200
        assert response.json() == {"status": True}
        assert set_cookie(response, SESSION_COOKIE) is not None  # the cookie is re-set
        seen = await _session_user(client)
        assert seen is not None
        assert (seen["name"], seen["image"]) == ("Ada L.", "https://img.example/ada.png")
        stored = await identity.store.find_user_by_id(user["id"])
        assert stored is not None and stored["name"] == "Ada L."
        assert (await client.post("/update-user", json={"image": None})).status_code == 200
        seen = await _session_user(client)
        assert seen is not None and seen["image"] is None


async def test_update_user_is_seen_through_the_cookie_cache() -> None:
    """get-session may answer from the session_data cookie: update-user re-signs it."""
    async with running(session={"cookie_cache": {"enabled": True}}) as (_, client):
        await _signed_up(client)
        await client.get("/get-session")
        await client.post("/update-user", json={"name": "Cached"})
        seen = await _session_user(client)
        assert seen is not None and seen["name"] == "Cached"


async def test_a_number_for_the_name_is_stored_as_text(make_identity: MakeIdentity) -> None:
    """Errata 4: `{"name": 42}` → 200, stored as "42"."""
    async with make_identity() as (identity, client):
        user = await _signed_up(client)
        assert (await client.post("/update-user", json={"name": 42})).status_code == 200
        stored = await identity.store.find_user_by_id(user["id"])
        assert stored is not None and stored["name"] == "42"
        seen = await _session_user(client)
        assert seen is not None and seen["name"] == "42"


async def test_a_null_name_is_refused() -> None:
    """The name is required: null is a 400, not a database error (500)."""
    async with running() as (_, client):
        await _signed_up(client)
        response = await client.post("/update-user", json={"name": None})
        assert response.status_code == 400
        assert response.json() == {
            "message": "[body.name] Invalid input: expected string, received null",
            "code": "VALIDATION_ERROR",
        }


async def test_the_email_cannot_be_updated_here() -> None:
    async with running() as (_, client):
        await _signed_up(client)
        response = await client.post("/update-user", json={"email": "new@example.com"})
        assert response.status_code == 400
        assert response.json() == {
            "message": "Email can not be updated",
            "code": "EMAIL_CAN_NOT_BE_UPDATED",
        }


@pytest.mark.parametrize(
    "body", [{}, {"emailVerified": True}, {"unknown": 1}, {"email": ""}], ids=repr
)
async def test_nothing_to_update_is_a_message_without_code(body: dict[str, Any]) -> None:
    """Core fields other than name and image, and unknown keys, are not updates."""
    async with running() as (_, client):
        await _signed_up(client)
        response = await client.post("/update-user", json=body)
        assert response.status_code == 400
        assert response.json() == {"message": "No fields to update"}
        seen = await _session_user(client)
        assert seen is not None and seen["emailVerified"] is False


async def test_update_user_needs_an_object_then_a_session() -> None:
    """The body is checked first, as a schema (400 before 401)."""
    async with running() as (_, client):
        assert (await client.post("/update-user", json={"name": "x"})).status_code == 401
        response = await client.post("/update-user", json=["name"])
        assert response.status_code == 400
        assert response.json() == {
            "message": "[body] Invalid input: expected record, received array",
            "code": "VALIDATION_ERROR",
        }
        await _signed_up(client)
        response = await client.post("/update-user")
        assert response.status_code == 400
        assert response.json()["message"] == (
            "[body] Invalid input: expected record, received undefined"
        )


async def test_additional_fields_are_updated_and_input_false_refused() -> None:
    extra = {
        "nickname": Field(type="string", required=False),
        "role": Field(type="string", required=False, input=False),
    }
    async with running(user={"additional_fields": extra}) as (_, client):
        await _signed_up(client)
        assert (await client.post("/update-user", json={"nickname": "ada"})).status_code == 200
        seen = await _session_user(client)
        assert seen is not None and seen["nickname"] == "ada"
        refused = await client.post("/update-user", json={"role": "admin"})
        assert refused.status_code == 400
        assert refused.json() == {
            "message": "role is not allowed to be set",
            "code": "FIELD_NOT_ALLOWED",
        }


# -- change-email -------------------------------------------------------------------------


def _change_options(mailbox: SMTPMailbox, **change: Any) -> dict[str, Any]:
    return {
        "email_verification": {"send_verification_email": verification_sender(mailbox.mailer())},
        "user": {"change_email": {"enabled": True, **change}},
    }


async def test_change_email_disabled() -> None:
    async with running() as (_, client):
        await _signed_up(client)
        response = await client.post("/change-email", json={"newEmail": "new@example.com"})
        assert response.status_code == 400
        assert response.json() == {
            "message": "Change email is disabled",
            "code": "CHANGE_EMAIL_DISABLED",
        }


async def test_the_same_email_is_refused(smtp_mailbox: SMTPMailbox) -> None:
    async with running(**_change_options(smtp_mailbox)) as (_, client):
        await _signed_up(client)
        response = await client.post("/change-email", json={"newEmail": "ADA@example.com"})
        assert response.status_code == 400
        assert response.json() == {"message": "Email is the same"}


async def test_a_taken_email_answers_as_a_free_one(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    """S7: 200 `{status: true}`, and nothing happens: no mail, no change."""
    async with make_identity(**_change_options(smtp_mailbox)) as (identity, client):
        async with browser(identity) as other:
            await sign_up(other, "taken@example.com")
        smtp_mailbox.clear()
        user = await _signed_up(client)
        response = await client.post("/change-email", json={"newEmail": "taken@example.com"})
        assert response.status_code == 200
        assert response.json() == {"status": True}
        assert smtp_mailbox.messages_to("taken@example.com") == []
        stored = await identity.store.find_user_by_id(user["id"])
        assert stored is not None and stored["email"] == "ada@example.com"


async def test_no_flow_available_is_refused_before_the_lookup() -> None:
    """No sender and no immediate update: the same 400 for a taken and a free address (S7)."""
    async with running(user={"change_email": {"enabled": True}}) as (identity, client):
        async with browser(identity) as other:
            await sign_up(other, "taken@example.com")
        await _signed_up(client)
        answers = [
            await client.post("/change-email", json={"newEmail": email})
            for email in ("taken@example.com", "free@example.com")
        ]
        for response in answers:
            assert response.status_code == 400
            assert response.json() == {"message": "Verification email isn't enabled"}


async def test_an_unverified_email_changes_at_once_when_allowed(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    options = _change_options(smtp_mailbox, update_email_without_verification=True)
    async with make_identity(**options) as (identity, client):
        user = await _signed_up(client)
        response = await client.post("/change-email", json={"newEmail": "Now@Example.com"})
        assert response.status_code == 200 and response.json() == {"status": True}
        seen = await _session_user(client)
        assert seen is not None and seen["email"] == "now@example.com"
        assert seen["emailVerified"] is False
        # The new address is asked to verify itself.
        await smtp_mailbox.wait_for("now@example.com")
        link = smtp_mailbox.url_for("now@example.com", containing="/verify-email")
        claims = jwt_claims(query_of(link)["token"])
        assert (claims["email"], claims["userId"]) == ("now@example.com", user["id"])
        assert (await client.get(link)).status_code == 302
        stored = await identity.store.find_user_by_id(user["id"])
        assert stored is not None and stored["emailVerified"] is True


async def test_a_verified_user_confirms_from_the_old_address_first(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    """Old address approves → the new one is mailed → its link moves the address, which
    stays verified."""
    mailer = smtp_mailbox.mailer()
    options = _change_options(
        smtp_mailbox, send_change_email_confirmation=change_email_sender(mailer)
    )
    async with make_identity(**options) as (identity, client):
        user = await _signed_up(client)
        await _verify(identity, user["id"])
        response = await client.post(
            "/change-email", json={"newEmail": "new@example.com", "callbackURL": "/settings"}
        )
        assert response.status_code == 200 and response.json() == {"status": True}

        approval = await smtp_mailbox.wait_for("ada@example.com")
        assert "new@example.com" in approval.text
        assert smtp_mailbox.messages_to("new@example.com") == []
        link = smtp_mailbox.url_for("ada@example.com", containing="/verify-email")
        claims = jwt_claims(query_of(link)["token"])
        assert claims["requestType"] == "change-email-confirmation"
        assert (claims["email"], claims["updateTo"]) == ("ada@example.com", "new@example.com")
        clicked = await client.get(link)
        assert clicked.status_code == 302 and clicked.headers["location"] == "/settings"
        stored = await identity.store.find_user_by_id(user["id"])
        assert stored is not None and stored["email"] == "ada@example.com"  # not yet

        await smtp_mailbox.wait_for("new@example.com")
        link = smtp_mailbox.url_for("new@example.com", containing="/verify-email")
        assert jwt_claims(query_of(link)["token"])["requestType"] == "change-email-verification"
        assert (await client.get(link)).status_code == 302
        stored = await identity.store.find_user_by_id(user["id"])
        assert stored is not None
        assert (stored["email"], stored["emailVerified"]) == ("new@example.com", True)
        seen = await _session_user(client)
        assert seen is not None and seen["email"] == "new@example.com"

        # The link worked once: the address it names has changed since.
        again = await client.get(link.split("&callbackURL=")[0])
        assert again.status_code == 401 and again.json()["code"] == "INVALID_TOKEN"


async def test_by_default_the_new_address_is_mailed_and_its_link_moves_it(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    """`emailVerified` is kept as it was (better-auth 1.7.25): a verified user who proves
    the new address stays verified."""
    async with make_identity(**_change_options(smtp_mailbox)) as (identity, client):
        user = await _signed_up(client)
        await _verify(identity, user["id"])
        smtp_mailbox.clear()
        response = await client.post("/change-email", json={"newEmail": "moved@example.com"})
        assert response.status_code == 200
        assert smtp_mailbox.messages_to("ada@example.com") == []
        await smtp_mailbox.wait_for("moved@example.com")
        link = smtp_mailbox.url_for("moved@example.com", containing="/verify-email")
        claims = jwt_claims(query_of(link)["token"])
        assert claims["email"] == "ada@example.com" and claims["userId"] == user["id"]
        # Opened elsewhere (no session), without callbackURL: JSON with the updated user.
        async with browser(identity) as elsewhere:
            clicked = await elsewhere.get(link.split("&callbackURL=")[0])
        assert clicked.status_code == 200
        body = clicked.json()
        assert body["status"] is True and body["user"]["email"] == "moved@example.com"
        stored = await identity.store.find_user_by_id(user["id"])
        assert stored is not None
        assert (stored["email"], stored["emailVerified"]) == ("moved@example.com", True)


async def test_a_change_email_link_is_refused_in_another_users_session(
    smtp_mailbox: SMTPMailbox,
) -> None:
    async with running(**_change_options(smtp_mailbox)) as (identity, client):
        await _signed_up(client)
        await client.post("/change-email", json={"newEmail": "moved@example.com"})
        await smtp_mailbox.wait_for("moved@example.com")
        link = smtp_mailbox.url_for("moved@example.com", containing="/verify-email")
        async with browser(identity) as mallory:
            await sign_up(mallory, "mallory@example.com")
            response = await mallory.get(link.split("&callbackURL=")[0])
        assert response.status_code == 401
        assert response.json() == {"message": "Invalid user", "code": "INVALID_USER"}
        assert await identity.store.find_user_by_email("moved@example.com") is None


# -- delete-user --------------------------------------------------------------------------


async def _sessions_of(identity: Identity, user_id: str) -> int:
    return await identity.db.count("session", eq("userId", user_id))


async def test_delete_user_disabled_is_an_empty_404() -> None:
    async with running() as (_, client):
        await _signed_up(client)
        response = await client.post("/delete-user", json={})
        assert response.status_code == 404
        assert response.content == b""


async def test_delete_user_with_the_password_ends_every_session(
    make_identity: MakeIdentity,
) -> None:
    """S17: the user, its accounts and all its sessions go; this browser's cookies too."""
    async with make_identity(user={"delete_user": {"enabled": True}}) as (identity, client):
        user = await _signed_up(client)
        async with browser(identity) as phone:
            await sign_in(phone, "ada@example.com")
            assert await _sessions_of(identity, user["id"]) == 2
            response = await client.post("/delete-user", json={"password": PASSWORD})
            assert response.status_code == 200
            assert response.json() == {"success": True, "message": "User deleted"}
            cleared = set_cookie(response, SESSION_COOKIE)
            assert cleared is not None and cleared["max-age"] == "0"
            assert (await phone.get("/get-session")).json() is None
        assert await identity.store.find_user_by_id(user["id"]) is None
        assert await identity.db.count("account", eq("userId", user["id"])) == 0
        assert await _sessions_of(identity, user["id"]) == 0


async def test_delete_user_with_a_wrong_password(make_identity: MakeIdentity) -> None:
    async with make_identity(user={"delete_user": {"enabled": True}}) as (identity, client):
        user = await _signed_up(client)
        response = await client.post("/delete-user", json={"password": "not-the-password"})
        assert response.status_code == 400
        assert response.json() == {"message": "Invalid password", "code": "INVALID_PASSWORD"}
        assert await identity.store.find_user_by_id(user["id"]) is not None


async def test_delete_user_without_password_needs_a_fresh_session() -> None:
    """A session older than fresh_age (1 day) must re-authenticate: 400 SESSION_EXPIRED."""
    clock = Clock()
    options: dict[str, Any] = {"user": {"delete_user": {"enabled": True}}, "clock": clock}
    async with running(**options) as (identity, client):
        user = await _signed_up(client)
        clock.advance(86400 + 1)
        response = await client.post("/delete-user", json={})
        assert response.status_code == 400
        assert response.json() == {
            "message": "Session expired. Re-authenticate to perform this action.",
            "code": "SESSION_EXPIRED",
        }
        assert await identity.store.find_user_by_id(user["id"]) is not None
        # The password stands in for freshness.
        assert (await client.post("/delete-user", json={"password": PASSWORD})).status_code == 200


async def test_delete_user_without_password_on_a_fresh_session() -> None:
    async with running(user={"delete_user": {"enabled": True}}) as (identity, client):
        user = await _signed_up(client)
        assert (await client.post("/delete-user", json={})).status_code == 200
        assert await identity.store.find_user_by_id(user["id"]) is None


async def test_delete_user_checks_its_body_and_session() -> None:
    async with running(user={"delete_user": {"enabled": True}}) as (_, client):
        assert (await client.post("/delete-user", json={}, headers=ORIGIN)).status_code == 401
        await _signed_up(client)
        response = await client.post("/delete-user", json={"password": 5})
        assert response.status_code == 400
        assert response.json() == {
            "message": "[body.password] Invalid input: expected string, received number",
            "code": "VALIDATION_ERROR",
        }


def _delete_by_mail(mailbox: SMTPMailbox, **more: Any) -> dict[str, Any]:
    sender = delete_account_sender(mailbox.mailer())
    return {
        "user": {
            "delete_user": {"enabled": True, "send_delete_account_verification": sender, **more}
        }
    }


async def test_delete_by_mailed_link(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    """The link deletes the user and every session (S17), then redirects."""
    before: list[str] = []
    after: list[str] = []

    async def before_delete(user: dict[str, Any], request: Any) -> None:
        before.append(user["email"])

    def after_delete(user: dict[str, Any], request: Any) -> None:
        after.append(user["email"])

    options = _delete_by_mail(smtp_mailbox, before_delete=before_delete, after_delete=after_delete)
    async with make_identity(**options) as (identity, client):
        user = await _signed_up(client)
        async with browser(identity) as phone:
            await sign_in(phone, "ada@example.com")
            response = await client.post("/delete-user", json={"callbackURL": "/bye"})
            assert response.status_code == 200
            assert response.json() == {"success": True, "message": "Verification email sent"}
            assert await identity.store.find_user_by_id(user["id"]) is not None

            await smtp_mailbox.wait_for("ada@example.com")
            link = smtp_mailbox.url_for("ada@example.com", containing="/delete-user/callback")
            assert link.startswith("http://localhost:3000/api/auth/delete-user/callback?token=")
            query = query_of(link)
            assert re.fullmatch(r"[0-9a-z]{32}", query["token"]) and query["callbackURL"] == "/bye"

            clicked = await client.get(link)
            assert clicked.status_code == 302
            assert clicked.headers["location"] == "/bye"
            assert (await phone.get("/get-session")).json() is None
        assert await identity.store.find_user_by_id(user["id"]) is None
        assert await _sessions_of(identity, user["id"]) == 0
        assert before == after == ["ada@example.com"]


async def test_a_delete_token_works_only_for_its_user(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    async with make_identity(**_delete_by_mail(smtp_mailbox)) as (identity, client):
        ada = await _signed_up(client)
        await client.post("/delete-user", json={})
        await smtp_mailbox.wait_for("ada@example.com")
        link = smtp_mailbox.url_for("ada@example.com", containing="/delete-user/callback")
        async with browser(identity) as mallory:
            bob = (await sign_up(mallory, "bob@example.com")).json()["user"]
            response = await mallory.get(link)
        assert response.status_code == 404
        assert response.json() == {"message": "Invalid token", "code": "INVALID_TOKEN"}
        assert await identity.store.find_user_by_id(ada["id"]) is not None
        assert await identity.store.find_user_by_id(bob["id"]) is not None


async def test_the_delete_callback_needs_a_session(smtp_mailbox: SMTPMailbox) -> None:
    """Errata 10: 404 FAILED_TO_GET_USER_INFO, and the token is left alone."""
    async with running(**_delete_by_mail(smtp_mailbox)) as (identity, client):
        user = await _signed_up(client)
        await client.post("/delete-user", json={})
        await smtp_mailbox.wait_for("ada@example.com")
        link = smtp_mailbox.url_for("ada@example.com", containing="/delete-user/callback")
        async with browser(identity) as anonymous:
            response = await anonymous.get(link)
        assert response.status_code == 404
        assert response.json() == {
            "message": "Failed to get user info",
            "code": "FAILED_TO_GET_USER_INFO",
        }
        assert (await client.get(link)).status_code == 302
        assert await identity.store.find_user_by_id(user["id"]) is None


async def test_the_mailed_token_may_be_posted_back(smtp_mailbox: SMTPMailbox) -> None:
    async with running(**_delete_by_mail(smtp_mailbox)) as (identity, client):
        user = await _signed_up(client)
        await client.post("/delete-user", json={})
        await smtp_mailbox.wait_for("ada@example.com")
        token = query_of(smtp_mailbox.url_for("ada@example.com"))["token"]
        response = await client.post("/delete-user", json={"token": token})
        assert response.json() == {"success": True, "message": "User deleted"}
        assert await identity.store.find_user_by_id(user["id"]) is None


async def test_the_delete_callback_when_deletion_is_disabled() -> None:
    async with running() as (_, client):
        await _signed_up(client)
        response = await client.get("/delete-user/callback", params={"token": "x" * 32})
        assert response.status_code == 404
        assert response.json() == {"message": "Not found", "code": "NOT_FOUND"}
