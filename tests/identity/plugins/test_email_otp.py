"""The email-OTP plugin (better-auth 1.7.25's `emailOTP()`), through HTTP, reading the codes
from the mails a real SMTP server received.

S8: codes are digits from a CSPRNG, single use, bound to the address and the purpose, dead
after `allowed_attempts` wrong guesses and after `expires_in`, stored hashed on request. S7:
sending answers alike for known and unknown addresses and mails only where better-auth does.
S5: 3 requests a minute per address on each path, and wrong codes counted per account
across addresses. Every status and code below was observed on better-auth 1.7.25.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from bastion.identity import EmailOTP, EmailOTPCode, email_otp, otp_sender
from bastion.identity.db import eq
from bastion.identity.storage import MemoryStorage
from tests.identity.conftest import ORIGIN, MakeIdentity, running
from tests.identity.mailbox import SMTPMailbox
from tests.identity.routes.helpers import (
    PASSWORD,
    SESSION_COOKIE,
    Clock,
    browser,
    set_cookie,
    sign_in,
    sign_up,
)

CODE = re.compile(r"Your code is: (\d+)")
INVALID = {"message": "Invalid OTP", "code": "INVALID_OTP"}
TOO_MANY = {"message": "Too many attempts", "code": "TOO_MANY_ATTEMPTS"}
EXPIRED = {"message": "OTP expired", "code": "OTP_EXPIRED"}


def _plugin(mailbox: SMTPMailbox, **options: Any) -> list[Any]:
    return [email_otp(send_verification_otp=otp_sender(mailbox.mailer()), **options)]


class Recorder:
    """A `send_verification_otp` that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[EmailOTP] = []

    async def __call__(self, data: EmailOTP, request: Any) -> None:
        self.sent.append(data)

    async def last(self, count: int = 1) -> EmailOTP:
        for _ in range(200):  # mails go in the background
            if len(self.sent) >= count:
                return self.sent[-1]
            await asyncio.sleep(0.005)
        raise AssertionError("no code sent")


async def _code(mailbox: SMTPMailbox, email: str, count: int = 1) -> str:
    received = await mailbox.wait_for(email, count=count)
    found = CODE.search(received.text)
    assert found, received.text
    return found.group(1)


async def _send(client: httpx.AsyncClient, email: str, type_: str = "sign-in") -> httpx.Response:
    return await client.post(
        "/email-otp/send-verification-otp", json={"email": email, "type": type_}, headers=ORIGIN
    )


async def _sign_in(client: httpx.AsyncClient, email: str, otp: str, **extra: Any) -> Any:
    body = {"email": email, "otp": otp, **extra}
    return await client.post("/sign-in/email-otp", json=body, headers=ORIGIN)


def _answer(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


async def test_sign_in_with_a_mailed_code(
    make_identity: MakeIdentity, smtp_mailbox: SMTPMailbox
) -> None:
    """A new address becomes a verified user with the name given (or ""); the code is
    6 digits (S8) and works once."""
    async with make_identity(plugins=_plugin(smtp_mailbox)) as (identity, client):
        assert _answer(await _send(client, "Ada@Example.com")) == (200, {"success": True})
        code = await _code(smtp_mailbox, "ada@example.com")
        assert re.fullmatch(r"\d{6}", code)
        assert smtp_mailbox.last_to("ada@example.com").subject == "Your Bastion sign-in code"
        response = await _sign_in(client, "ADA@example.com", code, name="Ada")
        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["token", "user"]
        assert body["user"]["email"] == "ada@example.com"
        assert (body["user"]["name"], body["user"]["emailVerified"]) == ("Ada", True)
        assert set_cookie(response, SESSION_COOKIE) is not None
        session = (await client.get("/get-session")).json()
        assert session["session"]["token"] == body["token"]
        client.cookies.clear()
        assert _answer(await _sign_in(client, "ada@example.com", code)) == (400, INVALID)
        assert await identity.db.count("user") == 1


async def test_three_wrong_codes_kill_the_code() -> None:
    """S8: after `allowed_attempts` (3) wrong guesses even the right code answers 403
    TOO_MANY_ATTEMPTS, once; then the code is gone (INVALID_OTP)."""
    recorder = Recorder()
    async with running(plugins=[email_otp(send_verification_otp=recorder)]) as (identity, client):
        await _send(client, "ada@example.com")
        code = (await recorder.last()).otp
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(3):
            assert _answer(await _sign_in(client, "ada@example.com", wrong)) == (400, INVALID)
        assert _answer(await _sign_in(client, "ada@example.com", code)) == (403, TOO_MANY)
        assert _answer(await _sign_in(client, "ada@example.com", code)) == (400, INVALID)
        assert await identity.db.count("user") == 0


async def test_allowed_attempts_and_otp_length_are_options() -> None:
    recorder = Recorder()
    plugin = email_otp(send_verification_otp=recorder, allowed_attempts=1, otp_length=8)
    async with running(plugins=[plugin]) as (_, client):
        await _send(client, "ada@example.com")
        code = (await recorder.last()).otp
        assert re.fullmatch(r"\d{8}", code)
        assert _answer(await _sign_in(client, "ada@example.com", "x")) == (400, INVALID)
        assert _answer(await _sign_in(client, "ada@example.com", code)) == (403, TOO_MANY)


async def test_an_expired_code() -> None:
    """S8: 300 s; then 400 OTP_EXPIRED, once, and the code is gone."""
    recorder, clock = Recorder(), Clock()
    async with running(plugins=[email_otp(send_verification_otp=recorder)], clock=clock) as (
        _,
        client,
    ):
        await _send(client, "ada@example.com")
        code = (await recorder.last()).otp
        clock.advance(301)
        assert _answer(await _sign_in(client, "ada@example.com", code)) == (400, EXPIRED)
        assert _answer(await _sign_in(client, "ada@example.com", code)) == (400, INVALID)


async def test_a_new_code_replaces_the_earlier_one() -> None:
    recorder = Recorder()
    async with running(plugins=[email_otp(send_verification_otp=recorder)]) as (_, client):
        await _send(client, "ada@example.com")
        first = (await recorder.last()).otp
        await _send(client, "ada@example.com")
        second = (await recorder.last(2)).otp
        if first != second:
            assert _answer(await _sign_in(client, "ada@example.com", first)) == (400, INVALID)
        assert (await _sign_in(client, "ada@example.com", second)).status_code == 200
        client.cookies.clear()
        # Neither code works again once one has signed in.
        assert _answer(await _sign_in(client, "ada@example.com", first)) == (400, INVALID)


async def test_codes_are_bound_to_their_purpose_and_address() -> None:
    """S8: a sign-in code does not verify the address, reset the password, or sign in
    another address."""
    recorder = Recorder()
    async with running(plugins=[email_otp(send_verification_otp=recorder)]) as (_, client):
        await sign_up(client, "ada@example.com")
        client.cookies.clear()
        await _send(client, "ada@example.com")
        code = (await recorder.last()).otp
        verify = await client.post(
            "/email-otp/verify-email", json={"email": "ada@example.com", "otp": code}
        )
        assert _answer(verify) == (400, INVALID)
        reset = await client.post(
            "/email-otp/reset-password",
            json={"email": "ada@example.com", "otp": code, "password": "new-password"},
        )
        assert _answer(reset) == (400, INVALID)
        assert _answer(await _sign_in(client, "bob@example.com", code)) == (400, INVALID)
        assert (await _sign_in(client, "ada@example.com", code)).status_code == 200


async def test_sending_tells_nothing_about_accounts(smtp_mailbox: SMTPMailbox) -> None:
    """S7: the same answer for every address and type; codes are mailed only to existing
    accounts, and for sign-in to any address while sign-up is allowed."""
    async with running(plugins=_plugin(smtp_mailbox)) as (identity, client):
        await sign_up(client, "known@example.com")
        client.cookies.clear()
        answers = set()
        for email in ("known@example.com", "unknown@example.com"):
            for kind in ("email-verification", "forget-password", "sign-in"):
                response = await _send(client, email, kind)
                answers.add((response.status_code, response.text))
            reset = await client.post("/email-otp/request-password-reset", json={"email": email})
            answers.add((reset.status_code, reset.text))
        assert answers == {(200, '{"success":true}')}
        await smtp_mailbox.wait_for("known@example.com", count=4)
        await smtp_mailbox.wait_for("unknown@example.com", count=1)  # sign-in only
        await asyncio.sleep(0.2)
        assert [m.subject for m in smtp_mailbox.messages_to("unknown@example.com")] == [
            "Your Bastion sign-in code"
        ]
        # No code is left behind for an address that was not mailed.
        rows = await identity.db.find_many(
            "verification", eq("identifier", "forget-password-otp-unknown@example.com")
        )
        assert rows == []


async def test_with_sign_up_disabled_an_unknown_address_gets_no_code() -> None:
    recorder = Recorder()
    plugin = email_otp(send_verification_otp=recorder, disable_sign_up=True)
    async with running(plugins=[plugin]) as (identity, client):
        assert _answer(await _send(client, "new@example.com")) == (200, {"success": True})
        await asyncio.sleep(0.05)
        assert recorder.sent == []
        # Even with a code (made on the server), no user is created.
        code = await identity.api.create_verification_otp(
            body={"email": "new@example.com", "type": "sign-in"}
        )
        assert _answer(await _sign_in(client, "new@example.com", code)) == (400, INVALID)
        assert await identity.db.count("user") == 0


async def test_an_unverified_account_loses_what_was_attached_before_the_proof() -> None:
    recorder = Recorder()
    async with running(plugins=[email_otp(send_verification_otp=recorder)]) as (identity, client):
        await sign_up(client, "ada@example.com", "squatters-password")
        client.cookies.clear()
        await _send(client, "ada@example.com")
        response = await _sign_in(client, "ada@example.com", (await recorder.last()).otp)
        assert response.status_code == 200 and response.json()["user"]["emailVerified"] is True
        user = await identity.store.find_user_by_email("ada@example.com")
        assert user is not None
        assert await identity.store.list_accounts(user["id"]) == []
        assert await identity.db.count("session") == 1
        client.cookies.clear()
        assert (await sign_in(client, "ada@example.com", "squatters-password")).status_code == 401


async def test_check_verification_otp_leaves_the_code_usable() -> None:
    recorder = Recorder()
    async with running(plugins=[email_otp(send_verification_otp=recorder)]) as (_, client):
        await _send(client, "new@example.com")
        code = (await recorder.last()).otp
        body = {"email": "new@example.com", "type": "sign-in", "otp": code}
        check = await client.post("/email-otp/check-verification-otp", json=body)
        # Right code, no account: better-auth says so (the caller holds the code already).
        assert _answer(check) == (400, {"message": "User not found", "code": "USER_NOT_FOUND"})
        assert (await _sign_in(client, "new@example.com", code)).status_code == 200
        await _send(client, "new@example.com")
        code = (await recorder.last(2)).otp
        body["otp"] = code
        check = await client.post("/email-otp/check-verification-otp", json=body, headers=ORIGIN)
        assert _answer(check) == (200, {"success": True})
        client.cookies.clear()
        assert (await _sign_in(client, "new@example.com", code)).status_code == 200
        wrong = {**body, "type": "email-verification"}
        check = await client.post("/email-otp/check-verification-otp", json=wrong, headers=ORIGIN)
        assert _answer(check) == (400, INVALID)


async def test_verify_email(smtp_mailbox: SMTPMailbox) -> None:
    async with running(plugins=_plugin(smtp_mailbox)) as (identity, client):
        await sign_up(client, "ada@example.com")
        await _send(client, "ada@example.com", "email-verification")
        code = await _code(smtp_mailbox, "ada@example.com")
        response = await client.post(
            "/email-otp/verify-email",
            json={"email": "ada@example.com", "otp": code},
            headers=ORIGIN,
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["token"]) == (True, None)
        assert body["user"]["emailVerified"] is True
        user = await identity.store.find_user_by_email("ada@example.com")
        assert user is not None and user["emailVerified"] is True
        again = await client.post(
            "/email-otp/verify-email",
            json={"email": "ada@example.com", "otp": code},
            headers=ORIGIN,
        )
        assert _answer(again) == (400, INVALID)


async def test_verify_email_signs_in_when_asked() -> None:
    recorder = Recorder()
    options = {"email_verification": {"auto_sign_in_after_verification": True}}
    async with running(plugins=[email_otp(send_verification_otp=recorder)], **options) as (
        _,
        client,
    ):
        await sign_up(client, "ada@example.com")
        client.cookies.clear()
        await _send(client, "ada@example.com", "email-verification")
        response = await client.post(
            "/email-otp/verify-email",
            json={"email": "ada@example.com", "otp": (await recorder.last()).otp},
        )
        assert response.status_code == 200
        assert response.json()["token"] is not None
        assert set_cookie(response, SESSION_COOKIE) is not None


async def test_reset_the_password_with_a_code(smtp_mailbox: SMTPMailbox) -> None:
    options = {"email_and_password": {"enabled": True, "revoke_sessions_on_password_reset": True}}
    async with running(plugins=_plugin(smtp_mailbox), **options) as (identity, client):
        await sign_up(client, "ada@example.com")
        client.cookies.clear()
        for path in ("/email-otp/request-password-reset", "/forget-password/email-otp"):
            response = await client.post(path, json={"email": "ada@example.com"})
            assert _answer(response) == (200, {"success": True})
        code = await _code(smtp_mailbox, "ada@example.com", count=2)
        body = {"email": "ada@example.com", "otp": code, "password": "short"}
        short = await client.post("/email-otp/reset-password", json=body)
        assert _answer(short) == (
            400,
            {"message": "Password too short", "code": "PASSWORD_TOO_SHORT"},
        )
        body["password"] = "a-new-password"
        reset = await client.post("/email-otp/reset-password", json=body)
        assert _answer(reset) == (200, {"success": True})  # the short one did not use it
        assert await identity.db.count("session") == 0  # revoked (S17)
        assert (await sign_in(client, "ada@example.com", PASSWORD)).status_code == 401
        assert (await sign_in(client, "ada@example.com", "a-new-password")).status_code == 200
        user = await identity.store.find_user_by_email("ada@example.com")
        assert user is not None and user["emailVerified"] is True  # the code proved it
        client.cookies.clear()
        reused = await client.post("/email-otp/reset-password", json=body)
        assert _answer(reused) == (400, INVALID)


async def test_reset_makes_a_password_for_an_account_without_one() -> None:
    recorder = Recorder()
    async with running(plugins=[email_otp(send_verification_otp=recorder)]) as (identity, client):
        await _send(client, "ada@example.com")
        await _sign_in(client, "ada@example.com", (await recorder.last()).otp)
        client.cookies.clear()
        await client.post("/email-otp/request-password-reset", json={"email": "ada@example.com"})
        code = (await recorder.last(2)).otp
        body = {"email": "ada@example.com", "otp": code, "password": "a-new-password"}
        assert (await client.post("/email-otp/reset-password", json=body)).status_code == 200
        assert (await sign_in(client, "ada@example.com", "a-new-password")).status_code == 200
        user = await identity.store.find_user_by_email("ada@example.com")
        assert user is not None and await identity.store.find_credential_account(user["id"])


async def test_change_email_with_codes(smtp_mailbox: SMTPMailbox) -> None:
    plugins = _plugin(smtp_mailbox, change_email={"enabled": True})
    async with running(plugins=plugins) as (identity, client):
        await sign_up(client, "ada@example.com")
        await sign_up(client, "taken@example.com", name="Other")
        client.cookies.clear()
        await sign_in(client, "ada@example.com")
        request = await client.post(
            "/email-otp/request-email-change", json={"newEmail": "New@Example.com"}, headers=ORIGIN
        )
        assert _answer(request) == (200, {"success": True})
        code = await _code(smtp_mailbox, "new@example.com")
        assert smtp_mailbox.last_to("new@example.com").subject.startswith("Confirm your new email")
        # A taken address: the same answer, no mail (S7).
        taken = await client.post(
            "/email-otp/request-email-change",
            json={"newEmail": "taken@example.com"},
            headers=ORIGIN,
        )
        assert _answer(taken) == (200, {"success": True})
        changed = await client.post(
            "/email-otp/change-email",
            json={"newEmail": "new@example.com", "otp": code},
            headers=ORIGIN,
        )
        assert _answer(changed) == (200, {"success": True})
        assert set_cookie(changed, SESSION_COOKIE) is not None
        session = (await client.get("/get-session")).json()
        assert (session["user"]["email"], session["user"]["emailVerified"]) == (
            "new@example.com",
            True,
        )
        assert await identity.store.find_user_by_email("ada@example.com") is None
        await asyncio.sleep(0.1)
        assert smtp_mailbox.messages_to("taken@example.com") == []
        same = await client.post(
            "/email-otp/request-email-change", json={"newEmail": "NEW@example.com"}, headers=ORIGIN
        )
        assert _answer(same) == (400, {"message": "Email is the same"})
        bad = await client.post(
            "/email-otp/change-email",
            json={"newEmail": "x@example.com", "otp": "1"},
            headers=ORIGIN,
        )
        assert _answer(bad) == (400, INVALID)
        async with browser(identity) as anonymous:
            response = await anonymous.post(
                "/email-otp/request-email-change", json={"newEmail": "z@example.com"}
            )
            assert _answer(response) == (401, {"message": "Unauthorized", "code": "UNAUTHORIZED"})


async def test_change_email_is_off_by_default_and_may_need_the_current_address() -> None:
    recorder = Recorder()
    async with running(plugins=[email_otp(send_verification_otp=recorder)]) as (_, client):
        await sign_up(client, "ada@example.com")
        response = await client.post(
            "/email-otp/request-email-change", json={"newEmail": "n@example.com"}, headers=ORIGIN
        )
        assert _answer(response) == (400, {"message": "Change email with OTP is disabled"})
    plugin = email_otp(
        send_verification_otp=recorder,
        change_email={"enabled": True, "verify_current_email": True},
    )
    async with running(plugins=[plugin]) as (_, client):
        await sign_up(client, "ada@example.com")
        response = await client.post(
            "/email-otp/request-email-change", json={"newEmail": "n@example.com"}, headers=ORIGIN
        )
        assert _answer(response) == (400, {"message": "OTP is required to verify current email"})
        await _send(client, "ada@example.com", "email-verification")
        code = (await recorder.last(1)).otp
        wrong = await client.post(
            "/email-otp/request-email-change",
            json={"newEmail": "n@example.com", "otp": "x"},
            headers=ORIGIN,
        )
        assert _answer(wrong) == (400, INVALID)
        right = await client.post(
            "/email-otp/request-email-change",
            json={"newEmail": "n@example.com", "otp": code},
            headers=ORIGIN,
        )
        assert _answer(right) == (200, {"success": True})
        assert (await recorder.last(2)).email == "n@example.com"


async def test_bad_requests() -> None:
    async with running(plugins=[email_otp(send_verification_otp=Recorder())]) as (_, client):
        expected = (
            '[body.type] Invalid option: expected one of "email-verification"|"sign-in"|'
            '"forget-password"|"change-email"'
        )
        for body in ({"email": "a@example.com", "type": "bogus"}, {"email": "a@example.com"}):
            response = await client.post("/email-otp/send-verification-otp", json=body)
            assert _answer(response) == (400, {"message": expected, "code": "VALIDATION_ERROR"})
        change = await _send(client, "a@example.com", "change-email")
        assert _answer(change) == (400, {"message": "Invalid OTP type"})
        bad = await _send(client, "not-an-email")
        assert _answer(bad) == (400, {"message": "Invalid email", "code": "INVALID_EMAIL"})
        for path, body in [
            ("/email-otp/verify-email", {"email": "nope", "otp": "1"}),
            ("/email-otp/request-password-reset", {"email": "nope"}),
            ("/email-otp/reset-password", {"email": "nope", "otp": "1", "password": "x" * 10}),
            ("/email-otp/check-verification-otp", {"email": "nope", "type": "sign-in", "otp": "1"}),
        ]:
            response = await client.post(path, json=body)
            assert response.json()["code"] == "INVALID_EMAIL", path
        not_an_object = await client.post("/sign-in/email-otp", json=[])
        assert not_an_object.json()["message"] == (
            "[body] Invalid input: expected object, received array; "
            "[body] Invalid input: expected record, received array"
        )
        server_only = await client.post(
            "/email-otp/create-verification-otp", json={"email": "a@example.com", "type": "sign-in"}
        )
        assert server_only.status_code == 404


async def test_the_stored_codes_are_better_auths() -> None:
    """A database shared with better-auth: `<type>-otp-<email>` holding `"<otp>:<attempts>"`,
    so each server checks the other's codes; hashed or encrypted on request (S8)."""
    recorder = Recorder()
    async with running(plugins=[email_otp(send_verification_otp=recorder)]) as (identity, client):
        await _send(client, "ada@example.com")
        code = (await recorder.last()).otp
        rows = await identity.db.find_many(
            "verification", eq("identifier", "sign-in-otp-ada@example.com")
        )
        assert [r["value"] for r in rows] == [f"{code}:0"]
        await _sign_in(client, "ada@example.com", "x")
        rows = await identity.db.find_many(
            "verification", eq("identifier", "sign-in-otp-ada@example.com")
        )
        assert [r["value"] for r in rows] == [f"{code}:1"]
        # A row better-auth wrote (change of address: the user's id, then the new address).
        client.cookies.clear()
        await identity.store.create_verification("sign-in-otp-bob@example.com", "774795:0", 300)
        assert (await _sign_in(client, "bob@example.com", "774795")).status_code == 200
    for store_otp in ("hashed", "encrypted"):
        recorder = Recorder()
        plugin = email_otp(send_verification_otp=recorder, store_otp=store_otp)  # type: ignore[arg-type]
        async with running(plugins=[plugin]) as (identity, client):
            await _send(client, "ada@example.com")
            code = (await recorder.last()).otp
            row = await identity.store.find_verification("sign-in-otp-ada@example.com")
            assert row is not None and code not in row["value"]
            if store_otp == "hashed":
                with pytest.raises(Exception, match="hashed"):
                    await identity.api.get_verification_otp(
                        query={"email": "ada@example.com", "type": "sign-in"}
                    )
            else:
                got = await identity.api.get_verification_otp(
                    query={"email": "ada@example.com", "type": "sign-in"}
                )
                assert got == {"otp": code}
            assert (await _sign_in(client, "ada@example.com", code)).status_code == 200


async def test_reuse_sends_the_same_code_again() -> None:
    recorder = Recorder()
    plugin = email_otp(send_verification_otp=recorder, resend_strategy="reuse")
    async with running(plugins=[plugin]) as (_, client):
        await _send(client, "ada@example.com")
        await _send(client, "ada@example.com")
        assert (await recorder.last(1)).otp == recorder.sent[0].otp
        await recorder.last(2)
        assert recorder.sent[1].otp == recorder.sent[0].otp


async def test_a_code_on_sign_up_when_asked() -> None:
    recorder = Recorder()
    plugin = email_otp(send_verification_otp=recorder, send_verification_on_sign_up=True)
    async with running(plugins=[plugin]) as (_, client):
        await sign_up(client, "ada@example.com")
        sent = await recorder.last()
        assert (sent.email, sent.type) == ("ada@example.com", "email-verification")
        verify = await client.post(
            "/email-otp/verify-email",
            json={"email": "ada@example.com", "otp": sent.otp},
            headers=ORIGIN,
        )
        assert verify.status_code == 200


async def test_codes_in_secondary_storage() -> None:
    """With a secondary storage (Redis in production) the codes live there, as better-auth
    keeps them: the attempts, the lockout and single use behave the same."""
    recorder = Recorder()
    plugins = [email_otp(send_verification_otp=recorder)]
    async with running(plugins=plugins, secondary_storage=MemoryStorage()) as (identity, client):
        await _send(client, "ada@example.com")
        code = (await recorder.last()).otp
        assert await identity.db.count("verification") == 0
        for _ in range(3):
            assert _answer(await _sign_in(client, "ada@example.com", "x")) == (400, INVALID)
        assert _answer(await _sign_in(client, "ada@example.com", code)) == (403, TOO_MANY)
        await _send(client, "ada@example.com")
        code = (await recorder.last(2)).otp
        assert (await _sign_in(client, "ada@example.com", code)).status_code == 200
        client.cookies.clear()
        assert _answer(await _sign_in(client, "ada@example.com", code)) == (400, INVALID)


def test_the_error_codes() -> None:
    assert {c.name: c.message for c in EmailOTPCode} == {
        "OTP_EXPIRED": "OTP expired",
        "INVALID_OTP": "Invalid OTP",
        "TOO_MANY_ATTEMPTS": "Too many attempts",
    }


async def test_the_per_ip_limit_on_every_path() -> None:
    """S5: 3 a minute per address on each email-OTP path (better-auth's rule)."""
    async with running(
        plugins=[email_otp(send_verification_otp=Recorder())], rate_limit={"enabled": True}
    ) as (_, client):
        for path, body in [
            ("/email-otp/send-verification-otp", {"email": "a@example.com", "type": "sign-in"}),
            ("/sign-in/email-otp", {"email": "b@example.com", "otp": "1"}),
            (
                "/email-otp/check-verification-otp",
                {"email": "c@x.com", "type": "sign-in", "otp": "1"},
            ),
            ("/email-otp/verify-email", {"email": "d@example.com", "otp": "1"}),
            (
                "/email-otp/reset-password",
                {"email": "e@example.com", "otp": "1", "password": "p" * 9},
            ),
            ("/email-otp/request-password-reset", {"email": "f@example.com"}),
            ("/forget-password/email-otp", {"email": "g@example.com"}),
        ]:
            answers = [(await client.post(path, json=body)).status_code for _ in range(4)]
            assert answers[3] == 429 and 429 not in answers[:3], (path, answers)


async def test_wrong_codes_from_many_addresses_trip_the_per_account_limit() -> None:
    """S5: a guesser spreading wrong codes over addresses is stopped per account (30 an hour
    from unknown clients) however many new codes it asks for; the per-IP limit alone would
    let every address guess 3 a minute."""
    options = {"rate_limit": {"enabled": True}, "advanced": {"trusted_proxies": ["127.0.0.1"]}}
    recorder = Recorder()
    async with running(plugins=[email_otp(send_verification_otp=recorder)], **options) as (
        _,
        client,
    ):
        answers = []
        for i in range(32):
            response = await client.post(
                "/sign-in/email-otp",
                json={"email": "ada@example.com", "otp": "000000"},
                headers={"x-forwarded-for": f"203.0.{i // 200}.{i % 200 + 1}"},
            )
            answers.append(response.status_code)
        assert answers[:30] == [400] * 30
        assert answers[30:] == [429, 429]
        assert int(response.headers["retry-after"]) > 0
        # Another account is not affected.
        other = await client.post(
            "/sign-in/email-otp",
            json={"email": "bob@example.com", "otp": "000000"},
            headers={"x-forwarded-for": "198.51.100.9"},
        )
        assert other.status_code == 400


async def test_override_default_email_verification_mails_codes_not_links() -> None:
    """better-auth's overrideDefaultEmailVerification: the Identity's verification mails
    (on sign-up, from /send-verification-email) are codes, and no link is made."""
    recorder = Recorder()
    plugin = email_otp(send_verification_otp=recorder, override_default_email_verification=True)
    options = {
        "email_and_password": {"enabled": True, "require_email_verification": True},
        "email_verification": {"send_on_sign_up": True},
    }
    async with running(plugins=[plugin], **options) as (identity, client):
        await client.post(
            "/sign-up/email",
            json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"},
            headers=ORIGIN,
        )
        sent = await recorder.last()
        assert (sent.email, sent.type) == ("ada@example.com", "email-verification")
        again = await client.post(
            "/send-verification-email", json={"email": "ada@example.com"}, headers=ORIGIN
        )
        assert again.status_code == 200, again.text
        code = (await recorder.last(2)).otp
        verify = await client.post(
            "/email-otp/verify-email",
            json={"email": "ada@example.com", "otp": code},
            headers=ORIGIN,
        )
        assert verify.status_code == 200, verify.text
        (user,) = await identity.db.find_many("user")
        assert user["emailVerified"] is True
