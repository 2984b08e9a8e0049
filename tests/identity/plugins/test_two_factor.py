"""The two-factor plugin over HTTP on the ASGI app, against better-auth 1.7.25's answers
(observed by running it: statuses, codes, messages, cookies). Security items S5, S9, S10 and
S11 are named where they are tested."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from bastion.identity import APIError, MemoryStorage, TwoFactorOTP, two_factor
from bastion.identity.crypto import URL_SAFE, sha256_base64url
from bastion.identity.symmetric import decrypt, encrypt
from tests.identity.conftest import SECRET
from tests.identity.plugins.twofactor_kit import (
    DONT_REMEMBER,
    PASSWORD,
    SESSION,
    SESSION_DATA,
    TRUST_DEVICE,
    TWO_FACTOR,
    Setup,
    browser,
    cookie_value,
    enrolled,
    set_cookie,
    setup,
)

EMAIL = "ada@example.com"


def error(response: Any) -> tuple[int, str | None]:
    body = response.json() if response.content else {}
    return response.status_code, body.get("code")


def expired(response: Any, name: str) -> bool:
    found = set_cookie(response, name)
    return found is not None and found["value"] == "" and found.get("max-age") == "0"


async def challenge(s: Setup, email: str = EMAIL, **extra: Any) -> Any:
    """A password sign-in of a two-factor user: the challenge, its cookie now in the jar."""
    response = await s.sign_in(email, **extra)
    assert response.status_code == 200, response.text
    assert response.json()["twoFactorRedirect"] is True, response.text
    return response


# -- enabling ------------------------------------------------------------------------------


async def test_enable_answers_the_uri_and_codes_and_is_off_until_a_code_is_checked() -> None:
    async with setup(issuer="Acme") as s:
        await s.post("/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD})
        response = await s.post("/two-factor/enable", {"password": PASSWORD})
        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["method", "totpURI", "backupCodes"] and body["method"] == "totp"
        assert re.fullmatch(
            r"otpauth://totp/Acme:ada%40example\.com\?secret=[A-Z2-7]{52}"
            r"&issuer=Acme&digits=6&period=30",
            body["totpURI"],
        )
        assert len(body["backupCodes"]) == 10
        assert all(re.fullmatch(r"[A-Za-z0-9]{5}-[A-Za-z0-9]{5}", c) for c in body["backupCodes"])
        assert response.headers.get_list("set-cookie") == []  # the session stays as it was
        # Nothing half-enabled: off until the authenticator is proved.
        assert not (await s.user(EMAIL))["twoFactorEnabled"]
        row = await s.row(EMAIL)
        assert row is not None and row["verified"] is False
        codes = await s.post("/two-factor/generate-backup-codes", {"password": PASSWORD})
        assert error(codes) == (400, "TWO_FACTOR_NOT_ENABLED")
        async with browser(s.identity) as other:
            signed_in = await s.sign_in(EMAIL, client=other)
            assert signed_in.json()["redirect"] is False  # a session: no challenge yet
            assert cookie_value(signed_in, SESSION)


async def test_enable_refuses_a_missing_or_wrong_password_and_bad_bodies() -> None:
    async with setup() as s:
        anonymous = await s.post("/two-factor/enable", {"password": PASSWORD})
        assert error(anonymous) == (401, "UNAUTHORIZED")
        await s.post("/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD})
        cases = [
            ({}, 400, "[body.password] Invalid input: expected string, received undefined"),
            ({"password": ""}, 400, "Invalid password"),
            ({"password": "wrong-password"}, 400, "Invalid password"),
            ({"password": "x" * 200}, 400, "Password too long"),
            (
                {"password": PASSWORD, "method": "sms"},
                400,
                '[body.method] Invalid option: expected one of "otp"|"totp"',
            ),
            (
                {"password": PASSWORD, "issuer": 5},
                400,
                "[body.issuer] Invalid input: expected string, received number",
            ),
        ]
        for body, status, message in cases:
            response = await s.post("/two-factor/enable", body)
            assert (response.status_code, response.json()["message"]) == (status, message), body
        assert await s.row(EMAIL) is None
        wrong_method = await s.client.get("/two-factor/enable")
        assert (wrong_method.status_code, wrong_method.text) == (404, "")


async def test_enable_again_before_verifying_replaces_the_secret_after_it_is_refused() -> None:
    async with setup() as s:
        await s.post("/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD})
        first = (await s.post("/two-factor/enable", {"password": PASSWORD})).json()
        second = (await s.post("/two-factor/enable", {"password": PASSWORD})).json()
        assert first["totpURI"] != second["totpURI"]
        assert await s.identity.db.count("twoFactor") == 1
        code = (await s.post("/two-factor/verify-totp", {"code": "000000"})).json()
        assert code == {"message": "Invalid code", "code": "INVALID_CODE"}
    async with setup() as s:
        await enrolled(s, sign_out=False)
        again = await s.post("/two-factor/enable", {"password": PASSWORD})
        assert error(again) == (400, "TOTP_ALREADY_ENABLED")


async def test_the_first_code_turns_it_on_and_replaces_the_session() -> None:
    async with setup() as s:
        signed_up = await s.post(
            "/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD}
        )
        old_token = signed_up.json()["token"]
        uri = (await s.post("/two-factor/enable", {"password": PASSWORD})).json()["totpURI"]
        secret = parse_qs(urlsplit(uri).query)["secret"][0]
        code = pyotp.TOTP(secret).at(s.clock.now.timestamp())
        response = await s.post("/two-factor/verify-totp", {"code": code})
        assert response.status_code == 200
        body = response.json()
        # better-auth 1.7.25 answers with the old session's token and the user as it was.
        assert body["token"] == old_token and body["user"]["twoFactorEnabled"] is False
        new_cookie = cookie_value(response, SESSION)
        assert new_cookie and not new_cookie.startswith(old_token)
        assert response.headers["set-auth-token"].split(".")[0] != old_token
        assert (await s.user(EMAIL))["twoFactorEnabled"] is True
        row = await s.row(EMAIL)
        assert row is not None and row["verified"] is True
        assert await s.identity.db.find_one("session", {"token": old_token}) is None
        session = (await s.client.get("/get-session")).json()
        assert session["user"]["twoFactorEnabled"] is True


async def test_skip_verification_on_enable_turns_it_on_at_once() -> None:
    async with setup(skip_verification_on_enable=True) as s:
        await s.post("/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD})
        response = await s.post("/two-factor/enable", {"password": PASSWORD})
        assert response.status_code == 200 and cookie_value(response, SESSION)
        assert (await s.user(EMAIL))["twoFactorEnabled"] is True
        row = await s.row(EMAIL)
        assert row is not None and row["verified"] is True
        s.client.cookies.clear()
        answer = await challenge(s)
        assert answer.json()["twoFactorMethods"] == ["totp", "otp"]


async def test_enable_by_emailed_codes_only() -> None:
    async with setup() as s:
        await s.post("/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD})
        response = await s.post("/two-factor/enable", {"password": PASSWORD, "method": "otp"})
        assert response.json() == {"method": "otp"} and cookie_value(response, SESSION)
        assert (await s.user(EMAIL))["twoFactorEnabled"] is True and await s.row(EMAIL) is None
        totp = await s.post("/two-factor/verify-totp", {"code": "123456"})
        assert error(totp) == (400, "TOTP_NOT_ENABLED")
        codes = await s.post("/two-factor/generate-backup-codes", {"password": PASSWORD})
        assert error(codes) == (400, "TWO_FACTOR_NOT_ENABLED")
        s.client.cookies.clear()
        answer = await challenge(s)
        assert answer.json()["twoFactorMethods"] == ["otp"]
    async with setup(otp={}) as s:  # no send_otp
        await s.post("/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD})
        response = await s.post("/two-factor/enable", {"password": PASSWORD, "method": "otp"})
        assert response.json() == {"message": "OTP is not available", "code": "OTP_NOT_CONFIGURED"}


async def test_totp_can_be_switched_off() -> None:
    async with setup(totp={"disable": True}) as s:
        await s.post("/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD})
        enable = await s.post("/two-factor/enable", {"password": PASSWORD})
        assert enable.json() == {"message": "TOTP is not available", "code": "TOTP_NOT_CONFIGURED"}
        for path, body in [("verify-totp", {"code": "1"}), ("get-totp-uri", {"password": "x"})]:
            response = await s.post(f"/two-factor/{path}", body)
            assert response.json() == {
                "message": "totp isn't configured",
                "code": "TOTP_NOT_CONFIGURED",
            }


# -- signing in ----------------------------------------------------------------------------


async def test_a_sign_in_is_challenged_with_the_two_factor_cookie_and_no_session() -> None:
    async with setup() as s:
        await enrolled(s)
        sessions = await s.identity.db.count("session")
        response = await s.sign_in(EMAIL, callbackURL="/dashboard")
        assert response.status_code == 200
        assert response.json() == {"twoFactorRedirect": True, "twoFactorMethods": ["totp", "otp"]}
        assert response.headers["location"] == "/dashboard"  # kept, as better-auth keeps it
        assert "set-auth-token" not in response.headers
        assert expired(response, SESSION) and expired(response, SESSION_DATA)
        cookie = set_cookie(response, TWO_FACTOR)
        assert cookie is not None and cookie["value"].startswith("2fa-")
        assert {k: cookie.get(k) for k in ("max-age", "path", "samesite")} == {
            "max-age": "600",
            "path": "/",
            "samesite": "Lax",
        }
        assert "httponly" in cookie
        assert await s.identity.db.count("session") == sessions
        assert (await s.client.get("/get-session")).json() is None


async def test_the_code_completes_the_sign_in() -> None:
    async with setup() as s:
        user = await enrolled(s)
        await challenge(s)
        response = await s.post("/two-factor/verify-totp", {"code": user.code()})
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"token", "user"} and body["user"]["email"] == EMAIL
        assert cookie_value(response, SESSION) and expired(response, TWO_FACTOR)
        assert response.headers["set-auth-token"].split(".")[0] == body["token"]
        session = (await s.client.get("/get-session")).json()
        assert session["session"]["token"] == body["token"]
        again = await s.post("/two-factor/verify-totp", {"code": user.code()})
        # With a session now, the session answers (the code is spent, S9).
        assert error(again) == (401, "INVALID_CODE")


async def test_remember_me_false_survives_the_second_factor() -> None:
    async with setup() as s:
        user = await enrolled(s)
        response = await challenge(s, rememberMe=False)
        assert cookie_value(response, DONT_REMEMBER)
        verified = await s.post("/two-factor/verify-totp", {"code": user.code()})
        cookie = set_cookie(verified, SESSION)
        assert cookie is not None and "max-age" not in cookie  # a browser-session cookie
        session = (await s.client.get("/get-session")).json()["session"]
        lifetime = session["expiresAt"][:13]
        assert lifetime == (s.clock.now + timedelta(days=1)).strftime("%Y-%m-%dT%H")


async def test_wrong_codes_then_the_challenge_is_cancelled() -> None:
    async with setup() as s:
        user = await enrolled(s)
        await challenge(s)
        for _ in range(5):
            wrong = await s.post("/two-factor/verify-totp", {"code": "000000"})
            assert wrong.json() == {"message": "Invalid code", "code": "INVALID_CODE"}
            assert wrong.status_code == 401 and wrong.headers.get_list("set-cookie") == []
        sixth = await s.post("/two-factor/verify-totp", {"code": user.code()})
        assert sixth.status_code == 400
        assert sixth.json() == {
            "message": "Too many attempts. Please request a new code.",
            "code": "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE",
        }
        assert expired(sixth, TWO_FACTOR)
        after = await s.post("/two-factor/verify-totp", {"code": user.code()})
        assert after.json() == {
            "message": "Invalid two factor cookie",
            "code": "INVALID_TWO_FACTOR_COOKIE",
        }
        assert after.status_code == 401
        assert (await s.client.get("/get-session")).json() is None


async def test_the_challenge_expires_after_ten_minutes() -> None:
    async with setup() as s:
        user = await enrolled(s)
        await challenge(s)
        s.clock.advance(601)
        response = await s.post("/two-factor/verify-totp", {"code": user.code()})
        assert error(response) == (401, "INVALID_TWO_FACTOR_COOKIE")


async def test_a_tampered_foreign_or_spent_two_factor_cookie_gets_401() -> None:
    async with setup() as s:
        user = await enrolled(s)
        answer = await challenge(s)
        value = cookie_value(answer, TWO_FACTOR)
        assert value is not None
        identifier, _, signature = value.rpartition(".")
        forged_id = identifier[:-1] + ("A" if identifier[-1] != "A" else "B")
        other_secret = encrypt("x", "y")[:8]
        cases = {
            "no cookie": None,
            "tampered id": f"{forged_id}.{signature}",
            "tampered signature": f"{identifier}.{'A' * 43}=",
            "unsigned": identifier,
            "signed by another secret": f"{identifier}.{other_secret}{'A' * 35}=",
        }
        async with browser(s.identity) as other:
            for label, cookie in cases.items():
                headers = {"cookie": f"{TWO_FACTOR}={cookie}"} if cookie else {}
                response = await s.post(
                    "/two-factor/verify-totp", {"code": user.code()}, client=other, headers=headers
                )
                assert error(response) == (401, "INVALID_TWO_FACTOR_COOKIE"), label
        # Spent: once one request finished the challenge, its cookie is worth nothing.
        done = await s.post("/two-factor/verify-totp", {"code": user.code()})
        assert done.status_code == 200
        async with browser(s.identity) as other:
            replay = await s.post(
                "/two-factor/verify-backup-code",
                {"code": user.backup_codes[0]},
                client=other,
                headers={"cookie": f"{TWO_FACTOR}={value}"},
            )
            assert error(replay) == (401, "INVALID_TWO_FACTOR_COOKIE")


async def test_another_users_challenge_proves_nothing_about_this_user() -> None:
    async with setup() as s:
        ada = await enrolled(s)
        mallory = await enrolled(s, "mallory@example.com")
        # Mallory knows her own password and has her own challenge; Ada's code is not hers.
        await challenge(s, "mallory@example.com")
        response = await s.post("/two-factor/verify-totp", {"code": ada.code()})
        assert error(response) == (401, "INVALID_CODE")
        backup = await s.post("/two-factor/verify-backup-code", {"code": ada.backup_codes[0]})
        assert error(backup) == (401, "INVALID_BACKUP_CODE")
        # Whatever her challenge proves is Mallory's: the session it makes is hers.
        done = await s.post("/two-factor/verify-totp", {"code": mallory.code()})
        assert done.json()["user"]["email"] == "mallory@example.com"


async def test_signed_values_of_other_cookies_are_not_challenges() -> None:
    async with setup() as s:
        await enrolled(s, sign_out=False)
        token = s.client.cookies[SESSION]
        s.client.cookies.clear()
        # A signed session token presented as a two_factor cookie is no challenge.
        response = await s.post(
            "/two-factor/verify-totp",
            {"code": "000000"},
            headers={"cookie": f"{TWO_FACTOR}={token}"},
        )
        assert error(response) == (401, "INVALID_TWO_FACTOR_COOKIE")
        # Nor is a challenge id a session (S11).
        answer = await challenge(s)
        value = cookie_value(answer, TWO_FACTOR)
        s.client.cookies.clear()
        forged = await s.client.get("/get-session", headers={"cookie": f"{SESSION}={value}"})
        assert forged.json() is None


# -- backup codes --------------------------------------------------------------------------


async def test_a_backup_code_signs_in_once() -> None:
    async with setup() as s:
        user = await enrolled(s)
        await challenge(s)
        wrong = await s.post("/two-factor/verify-backup-code", {"code": "nope"})
        assert wrong.json() == {"message": "Invalid backup code", "code": "INVALID_BACKUP_CODE"}
        assert wrong.status_code == 401
        response = await s.post("/two-factor/verify-backup-code", {"code": user.backup_codes[0]})
        assert response.status_code == 200 and cookie_value(response, SESSION)
        assert set(response.json()) == {"token", "user"}
        s.client.cookies.clear()
        await challenge(s)
        reused = await s.post("/two-factor/verify-backup-code", {"code": user.backup_codes[0]})
        assert error(reused) == (401, "INVALID_BACKUP_CODE")
        other = await s.post("/two-factor/verify-backup-code", {"code": user.backup_codes[1]})
        assert other.status_code == 200
        viewed = await s.identity.api.view_backup_codes(body={"userId": other.json()["user"]["id"]})
        assert viewed == {"status": True, "backupCodes": user.backup_codes[2:]}


async def test_new_backup_codes_replace_the_old_ones() -> None:
    async with setup() as s:
        user = await enrolled(s, sign_out=False)
        wrong = await s.post("/two-factor/generate-backup-codes", {"password": "wrong-password"})
        assert error(wrong) == (400, "INVALID_PASSWORD")
        missing = await s.post("/two-factor/generate-backup-codes", {})
        assert error(missing) == (400, "VALIDATION_ERROR")
        response = await s.post("/two-factor/generate-backup-codes", {"password": PASSWORD})
        body = response.json()
        assert body["status"] is True and len(body["backupCodes"]) == 10
        assert not set(body["backupCodes"]) & set(user.backup_codes)
        old = await s.post("/two-factor/verify-backup-code", {"code": user.backup_codes[0]})
        assert error(old) == (401, "INVALID_BACKUP_CODE")
        new = await s.post("/two-factor/verify-backup-code", {"code": body["backupCodes"][0]})
        assert new.status_code == 200 and new.headers.get_list("set-cookie") == []


async def test_disable_session_checks_a_backup_code_without_signing_in() -> None:
    async with setup() as s:
        user = await enrolled(s)
        await challenge(s)
        body = {"code": user.backup_codes[0], "disableSession": True}
        response = await s.post("/two-factor/verify-backup-code", body)
        assert response.status_code == 200
        assert list(response.json()) == ["user"]  # no token: no session was made
        assert cookie_value(response, SESSION) is None
        # As in better-auth 1.7.25: the challenge stands, but the try it took is not given
        # back, so TOTP and backup codes are refused; an emailed code completes it.
        totp = await s.post("/two-factor/verify-totp", {"code": user.code()})
        assert error(totp) == (401, "INVALID_TWO_FACTOR_COOKIE")
        await s.post("/two-factor/send-otp", {})
        done = await s.post("/two-factor/verify-otp", {"code": s.sent[-1].otp})
        assert done.status_code == 200 and cookie_value(done, SESSION)


async def test_view_backup_codes_is_server_only() -> None:
    async with setup() as s:
        await enrolled(s)
        user = await s.user(EMAIL)
        over_http = await s.post("/two-factor/view-backup-codes", {"userId": user["id"]})
        assert over_http.status_code == 404
        viewed = await s.identity.api.view_backup_codes(body={"userId": user["id"]})
        assert viewed["status"] is True and len(viewed["backupCodes"]) == 10
        with pytest.raises(APIError) as raised:
            await s.identity.api.view_backup_codes(body={"userId": "nobody"})
        assert raised.value.body() == {
            "message": "Backup codes aren't enabled",
            "code": "BACKUP_CODES_NOT_ENABLED",
        }


# -- emailed codes -------------------------------------------------------------------------


async def test_an_emailed_code_signs_in() -> None:
    async with setup() as s:
        await enrolled(s)
        await challenge(s)
        before = await s.post("/two-factor/verify-otp", {"code": "123456"})
        assert before.json() == {"message": "OTP has expired", "code": "OTP_HAS_EXPIRED"}
        sent = await s.post("/two-factor/send-otp")  # no body at all: fine
        assert sent.json() == {"status": True}
        message = s.sent[-1]
        assert isinstance(message, TwoFactorOTP) and re.fullmatch(r"[0-9]{6}", message.otp)
        assert message.user["email"] == EMAIL and "password" not in message.user
        response = await s.post("/two-factor/verify-otp", {"code": message.otp})
        assert response.status_code == 200 and cookie_value(response, SESSION)
        assert expired(response, TWO_FACTOR)


async def test_emailed_codes_die_after_five_wrong_tries_and_three_minutes() -> None:
    async with setup() as s:
        await enrolled(s)
        await challenge(s)
        await s.post("/two-factor/send-otp", {"trustDevice": True})
        code = s.sent[-1].otp
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(5):
            response = await s.post("/two-factor/verify-otp", {"code": wrong})
            assert error(response) == (401, "INVALID_CODE")
        dead = await s.post("/two-factor/verify-otp", {"code": code})
        assert dead.json() == {
            "message": "Too many attempts. Please request a new code.",
            "code": "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE",
        }
        gone = await s.post("/two-factor/verify-otp", {"code": code})
        assert error(gone) == (400, "OTP_HAS_EXPIRED")
        await s.post("/two-factor/send-otp", {})
        s.clock.advance(181)
        late = await s.post("/two-factor/verify-otp", {"code": s.sent[-1].otp})
        assert error(late) == (400, "OTP_HAS_EXPIRED")


async def test_a_new_code_replaces_the_one_before() -> None:
    async with setup() as s:
        await enrolled(s)
        await challenge(s)
        await s.post("/two-factor/send-otp", {})
        await s.post("/two-factor/send-otp", {})
        first, second = s.sent[-2].otp, s.sent[-1].otp
        if first != second:
            stale = await s.post("/two-factor/verify-otp", {"code": first})
            assert error(stale) == (401, "INVALID_CODE")
        response = await s.post("/two-factor/verify-otp", {"code": second})
        assert response.status_code == 200


async def test_send_otp_answers() -> None:
    async with setup(otp={}) as s:
        await enrolled(s)
        await challenge(s)
        response = await s.post("/two-factor/send-otp", {})
        assert response.json() == {"message": "otp isn't configured", "code": "OTP_NOT_CONFIGURED"}
    async with setup() as s:
        anonymous = await s.post("/two-factor/send-otp", {})
        assert error(anonymous) == (401, "INVALID_TWO_FACTOR_COOKIE")
        for raw, received in [(b"[1]", "array"), (b"null", "null"), (b'"x"', "string")]:
            response = await s.client.post(
                "/two-factor/send-otp", content=raw, headers={"content-type": "application/json"}
            )
            assert response.json() == {
                "message": f"[body] Invalid input: expected object, received {received}",
                "code": "VALIDATION_ERROR",
            }
        trust = await s.post("/two-factor/send-otp", {"trustDevice": "yes"})
        assert trust.json()["message"] == (
            "[body.trustDevice] Invalid input: expected boolean, received string"
        )


async def test_a_failing_sender_does_not_fail_the_request(caplog: pytest.LogCaptureFixture) -> None:
    def broken(message: TwoFactorOTP, request: Any) -> None:
        raise RuntimeError(f"SMTP refused {message.otp}")

    async with setup(otp={"send_otp": broken}) as s:
        await enrolled(s)
        await challenge(s)
        response = await s.post("/two-factor/send-otp", {})
        assert response.json() == {"status": True}
        assert "two-factor code for user" in caplog.text


@pytest.mark.parametrize("store", ["hashed", "encrypted"])
async def test_emailed_codes_kept_hashed_or_encrypted(store: str) -> None:
    async with setup(otp={"store_otp": store, "send_otp": _collect}) as s:
        await enrolled(s)
        await challenge(s)
        await s.post("/two-factor/send-otp", {})
        code = _SENT[-1]
        rows = await s.identity.db.find_many("verification")
        stored = next(r["value"] for r in rows if r["identifier"].startswith("2fa-otp-"))
        kept = stored.split(":")[0]
        assert code not in kept
        assert (
            (kept == sha256_base64url(code))
            if store == "hashed"
            else (decrypt(SECRET, kept) == code)
        )
        response = await s.post("/two-factor/verify-otp", {"code": code})
        assert response.status_code == 200


_SENT: list[str] = []


def _collect(message: TwoFactorOTP, request: Any) -> None:
    _SENT.append(message.otp)


async def test_verify_otp_with_a_session_turns_two_factor_on() -> None:
    async with setup() as s:
        await s.post("/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD})
        await s.post("/two-factor/send-otp", {})
        response = await s.post("/two-factor/verify-otp", {"code": s.sent[-1].otp})
        body = response.json()
        assert body["user"]["twoFactorEnabled"] is True
        assert response.headers["set-auth-token"].split(".")[0] == body["token"]
        assert (await s.user(EMAIL))["twoFactorEnabled"] is True


# -- the trusted device --------------------------------------------------------------------


async def test_a_trusted_device_skips_the_challenge_for_thirty_days() -> None:
    async with setup() as s:
        user = await enrolled(s)
        await challenge(s, rememberMe=False)
        response = await s.post(
            "/two-factor/verify-totp", {"code": user.code(), "trustDevice": True}
        )
        trust = set_cookie(response, TRUST_DEVICE)
        assert trust is not None and trust["max-age"] == "2592000" and "httponly" in trust
        assert expired(response, DONT_REMEMBER)  # better-auth drops it with a trusted device
        first_value = trust["value"]
        await s.post("/sign-out")
        signed_in = await s.sign_in(EMAIL)
        assert signed_in.json()["redirect"] is False and cookie_value(signed_in, SESSION)
        renewed = cookie_value(signed_in, TRUST_DEVICE)
        assert renewed and renewed != first_value
        rows = await s.identity.db.find_many("verification")
        assert len([r for r in rows if r["identifier"].startswith("trust-device-")]) == 1
        # The old cookie named a row that is gone: on another device it proves nothing.
        async with browser(s.identity) as other:
            other.cookies.set(TRUST_DEVICE, first_value)
            stale = await s.sign_in(EMAIL, client=other)
            assert stale.json()["twoFactorRedirect"] is True and expired(stale, TRUST_DEVICE)
        # Thirty days on, the trust has run out.
        await s.post("/sign-out")
        s.clock.advance(30 * 86400 + 1)
        late = await s.sign_in(EMAIL)
        assert late.json()["twoFactorRedirect"] is True and expired(late, TRUST_DEVICE)


async def test_one_users_trusted_device_does_not_trust_another_user() -> None:
    async with setup() as s:
        ada = await enrolled(s)
        await enrolled(s, "bob@example.com")
        await challenge(s)
        trusted = await s.post("/two-factor/verify-totp", {"code": ada.code(), "trustDevice": True})
        value = cookie_value(trusted, TRUST_DEVICE)
        await s.post("/sign-out")
        s.client.cookies.set(TRUST_DEVICE, value or "")
        bob = await s.sign_in("bob@example.com")
        assert bob.json()["twoFactorRedirect"] is True and expired(bob, TRUST_DEVICE)


# -- disabling -----------------------------------------------------------------------------


async def test_disable_needs_the_password_and_ends_trust() -> None:
    async with setup() as s:
        user = await enrolled(s)
        await challenge(s)
        trusted = await s.post(
            "/two-factor/verify-totp", {"code": user.code(), "trustDevice": True}
        )
        old_token = trusted.json()["token"]
        missing = await s.post("/two-factor/disable", {})
        assert missing.json()["message"] == (
            "[body.password] Invalid input: expected string, received undefined"
        )
        wrong = await s.post("/two-factor/disable", {"password": "wrong-password"})
        assert error(wrong) == (400, "INVALID_PASSWORD")
        assert (await s.user(EMAIL))["twoFactorEnabled"] is True
        response = await s.post("/two-factor/disable", {"password": PASSWORD})
        assert response.json() == {"status": True}
        assert cookie_value(response, SESSION) and expired(response, TRUST_DEVICE)
        assert await s.identity.db.find_one("session", {"token": old_token}) is None
        assert (await s.user(EMAIL))["twoFactorEnabled"] is False and await s.row(EMAIL) is None
        rows = await s.identity.db.find_many("verification")
        assert not [r for r in rows if r["identifier"].startswith("trust-device-")]
        await s.post("/sign-out")
        signed_in = await s.sign_in(EMAIL)
        assert signed_in.json()["redirect"] is False
        anonymous = await s.post("/two-factor/disable", {"password": PASSWORD}, client=s.client)
        assert anonymous.status_code == 200  # still signed in from the line above
        s.client.cookies.clear()
        assert error(await s.post("/two-factor/disable", {"password": PASSWORD})) == (
            401,
            "UNAUTHORIZED",
        )


async def test_deleting_the_user_deletes_the_second_factor() -> None:
    async with setup(identity={"user": {"delete_user": {"enabled": True}}}) as s:
        await enrolled(s, sign_out=False)
        assert await s.identity.db.count("twoFactor") == 1
        deleted = await s.post("/delete-user", {"password": PASSWORD})
        assert deleted.status_code == 200, deleted.text
        assert await s.identity.db.count("twoFactor") == 0


async def test_get_totp_uri_needs_the_password_and_names_the_app() -> None:
    async with setup(issuer="Acme", identity={"app_name": "My App"}) as s:
        await s.post("/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD})
        before = await s.post("/two-factor/get-totp-uri", {"password": PASSWORD})
        assert error(before) == (400, "TOTP_NOT_ENABLED")
        enabled = (await s.post("/two-factor/enable", {"password": PASSWORD})).json()
        wrong = await s.post("/two-factor/get-totp-uri", {"password": "wrong-password"})
        assert error(wrong) == (400, "INVALID_PASSWORD")
        response = await s.post("/two-factor/get-totp-uri", {"password": PASSWORD})
        uri = response.json()["totpURI"]
        # better-auth 1.7.25: enable uses the plugin's issuer, get-totp-uri the app's name.
        assert enabled["totpURI"].startswith("otpauth://totp/Acme:")
        assert uri.startswith("otpauth://totp/My%20App:ada%40example.com?")
        assert "&issuer=My+App&" in uri
        assert uri.split("secret=")[1][:52] == enabled["totpURI"].split("secret=")[1][:52]


async def test_allow_passwordless_for_users_without_a_password() -> None:
    async with setup(allow_passwordless=True) as s:
        await s.post("/sign-up/email", {"name": "Ada", "email": EMAIL, "password": PASSWORD})
        # A user with a password still gives it.
        assert error(await s.post("/two-factor/enable", {})) == (400, "INVALID_PASSWORD")
        user = await s.user(EMAIL)
        await s.identity.db.delete_many("account", {"userId": user["id"]})
        response = await s.post("/two-factor/enable", {})
        assert response.status_code == 200, response.text


# -- lockout and rate limits (S5) ----------------------------------------------------------


async def test_s5_ten_wrong_codes_lock_the_account_from_any_address() -> None:
    options = {
        "rate_limit": {"enabled": True},
        "advanced": {"trusted_proxies": ["127.0.0.1"]},
    }
    async with setup(identity=options) as s:
        user = await enrolled(s)
        addresses = iter(f"203.0.113.{n}" for n in range(1, 100))

        async def attempt(path: str, body: dict[str, Any]) -> Any:
            # Each try from another address: the per-address rule (3 per 10 s) never trips.
            return await s.post(path, body, headers={"x-forwarded-for": next(addresses)})

        for _ in range(2):  # two challenges, five wrong codes each
            s.client.cookies.clear()
            await s.post(
                "/sign-in/email",
                {"email": EMAIL, "password": PASSWORD},
                headers={"x-forwarded-for": next(addresses)},
            )
            for _ in range(5):
                wrong = await attempt("/two-factor/verify-totp", {"code": "000000"})
                assert error(wrong) == (401, "INVALID_CODE")
        s.client.cookies.clear()
        await s.post(
            "/sign-in/email",
            {"email": EMAIL, "password": PASSWORD},
            headers={"x-forwarded-for": next(addresses)},
        )
        for path, body in [
            ("/two-factor/verify-totp", {"code": user.code()}),
            ("/two-factor/verify-backup-code", {"code": user.backup_codes[0]}),
        ]:
            locked = await attempt(path, body)
            assert locked.status_code == 429
            assert locked.json() == {
                "message": "Too many failed verification attempts. Your account is "
                "temporarily locked. Please try again later.",
                "code": "ACCOUNT_TEMPORARILY_LOCKED",
            }
            assert 0 < int(locked.headers["retry-after"]) <= 900
        await attempt("/two-factor/send-otp", {})
        otp = await attempt("/two-factor/verify-otp", {"code": s.sent[-1].otp})
        assert error(otp) == (429, "ACCOUNT_TEMPORARILY_LOCKED")
        # Fifteen minutes on, the lock is lifted and a right code resets the count.
        s.clock.advance(901)
        s.client.cookies.clear()
        await attempt("/sign-in/email", {"email": EMAIL, "password": PASSWORD})
        done = await attempt("/two-factor/verify-totp", {"code": user.code()})
        assert done.status_code == 200, done.text
        row = await s.row(EMAIL)
        assert (
            row is not None and row["failedVerificationCount"] == 0 and row["lockedUntil"] is None
        )


async def test_s5_three_requests_per_ten_seconds_per_address() -> None:
    async with setup(identity={"rate_limit": {"enabled": True}}) as s:
        await enrolled(s)
        s.clock.advance(11)
        await challenge(s)
        answers = [
            (await s.post("/two-factor/verify-totp", {"code": "000000"})).status_code
            for _ in range(4)
        ]
        assert answers == [401, 401, 401, 429]
        s.clock.advance(11)
        assert (await s.post("/two-factor/verify-backup-code", {"code": "x"})).status_code == 401


async def test_lockout_can_be_configured() -> None:
    async with setup(account_lockout={"max_failed_attempts": 3, "duration_seconds": 60}) as s:
        user = await enrolled(s)
        await challenge(s)
        for _ in range(3):
            await s.post("/two-factor/verify-totp", {"code": "000000"})
        locked = await s.post("/two-factor/verify-totp", {"code": user.code()})
        assert error(locked) == (429, "ACCOUNT_TEMPORARILY_LOCKED")
        s.clock.advance(61)
        assert (await s.post("/two-factor/verify-totp", {"code": user.code()})).status_code == 200
    async with setup(account_lockout={"enabled": False}) as s:
        user = await enrolled(s)
        for _ in range(3):
            s.client.cookies.clear()
            await challenge(s)
            for _ in range(5):
                await s.post("/two-factor/verify-totp", {"code": "000000"})
        s.client.cookies.clear()
        await challenge(s)
        assert (await s.post("/two-factor/verify-totp", {"code": user.code()})).status_code == 200


# -- S9, S10, S11 --------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["database", "secondary storage"])
async def test_s9_a_totp_code_works_once_within_one_step_either_side(storage: str) -> None:
    options = {"secondary_storage": MemoryStorage()} if storage == "secondary storage" else {}
    async with setup(identity=options) as s:
        user = await enrolled(s)
        await challenge(s)
        too_old = await s.post("/two-factor/verify-totp", {"code": user.code(-2)})
        too_new = await s.post("/two-factor/verify-totp", {"code": user.code(2)})
        assert error(too_old) == error(too_new) == (401, "INVALID_CODE")
        ahead = await s.post("/two-factor/verify-totp", {"code": user.code(1)})  # clock skew
        assert ahead.status_code == 200
        # Replayed within its window (in another sign-in), or an older code after it: refused.
        for code in (user.code(1), user.code(), user.code(-1)):
            s.client.cookies.clear()
            await challenge(s)
            replay = await s.post("/two-factor/verify-totp", {"code": code})
            assert error(replay) == (401, "INVALID_CODE")
        s.clock.advance(2 * user.period)
        s.client.cookies.clear()
        await challenge(s)
        fresh = await s.post("/two-factor/verify-totp", {"code": user.code()})
        assert fresh.status_code == 200


async def test_s9_concurrent_uses_of_one_code_let_one_through() -> None:
    async with setup() as s:
        user = await enrolled(s)
        clients = []
        for _ in range(4):
            other = browser(s.identity)
            clients.append(other)
        async with clients[0] as a, clients[1] as b, clients[2] as c, clients[3] as d:
            for client in (a, b, c, d):
                await s.sign_in(EMAIL, client=client)
            answers = await asyncio.gather(
                *(
                    s.post("/two-factor/verify-totp", {"code": user.code()}, client=client)
                    for client in (a, b, c, d)
                )
            )
        assert sorted(r.status_code for r in answers) == [200, 401, 401, 401]


async def test_s10_backup_codes_random_encrypted_at_rest_and_used_once() -> None:
    async with setup() as s:
        user = await enrolled(s)
        codes = user.backup_codes
        assert len(set(codes)) == 10
        alphabet = set(URL_SAFE) - {"-", "_"}
        assert all(set(code.replace("-", "", 1)) <= alphabet and len(code) == 11 for code in codes)
        # 10 characters of 62: ~59.5 bits each (>= 20). At rest: better-auth's encryption.
        row = await s.row(EMAIL)
        assert row is not None and not any(code in row["backupCodes"] for code in codes)
        assert json.loads(decrypt(SECRET, row["backupCodes"])) == codes
        assert len(decrypt(SECRET, row["secret"])) == 32
        # Used once, even by concurrent requests.
        async with browser(s.identity) as a, browser(s.identity) as b:
            for client in (a, b):
                await s.sign_in(EMAIL, client=client)
            answers = await asyncio.gather(
                *(
                    s.post("/two-factor/verify-backup-code", {"code": codes[0]}, client=client)
                    for client in (a, b)
                )
            )
        assert sorted(r.status_code for r in answers) in ([200, 401], [200, 409])


async def test_s10_hashed_backup_codes_have_112_bits() -> None:
    with pytest.raises(ValueError, match="112 bits"):
        two_factor(backup_codes={"store": "hashed", "length": 10})
    async with setup(backup_codes={"store": "hashed"}) as s:
        user = await enrolled(s)
        assert all(len(code) == 21 for code in user.backup_codes)  # 20 of 62: ~119 bits
        row = await s.row(EMAIL)
        assert row is not None
        assert json.loads(row["backupCodes"]) == [sha256_base64url(c) for c in user.backup_codes]
        await challenge(s)
        response = await s.post("/two-factor/verify-backup-code", {"code": user.backup_codes[3]})
        assert response.status_code == 200
        s.client.cookies.clear()
        await challenge(s)
        again = await s.post("/two-factor/verify-backup-code", {"code": user.backup_codes[3]})
        assert error(again) == (401, "INVALID_BACKUP_CODE")
        with pytest.raises(APIError):
            await s.identity.api.view_backup_codes(body={"userId": row["userId"]})


async def test_s11_nothing_before_the_second_factor_is_a_session_with_the_cookie_cache() -> None:
    """GHSA-xg6x-h9c9-2m83: better-auth's sign-in wrote the session_data cookie cache before
    its two-factor hook took the session back, and that cookie alone was a session."""
    options = {"session": {"cookie_cache": {"enabled": True}}}
    async with setup(identity=options) as s:
        user = await enrolled(s)
        sessions = await s.identity.db.count("session")
        response = await s.sign_in(EMAIL)
        assert response.json()["twoFactorRedirect"] is True
        for line in response.headers.get_list("set-cookie"):
            name, _, rest = line.partition("=")
            if "session" in name or "dont_remember" in name:
                assert rest.startswith(";"), line  # only expiries, no value
        assert "set-auth-token" not in response.headers
        assert await s.identity.db.count("session") == sessions
        # Neither the challenge's cookies nor the verification rows make a session.
        assert (await s.client.get("/get-session")).json() is None
        rows = await s.identity.db.find_many("verification")
        for row in rows:
            probe = await s.client.get(
                "/get-session", headers={"authorization": f"Bearer {row['identifier']}"}
            )
            assert probe.json() is None
        # The enrolment's session, like any, carries a cache; the challenge's answer none.
        assert cookie_value(response, SESSION_DATA) in (None, "")
        done = await s.post("/two-factor/verify-totp", {"code": user.code()})
        assert cookie_value(done, SESSION_DATA)  # the cache comes with the session, after


# -- imported and other secrets ------------------------------------------------------------


async def test_an_imported_base32_secret_and_eight_digit_codes() -> None:
    async with setup(totp={"digits": 8, "period": 60}) as s:
        user = await enrolled(s)
        assert (user.digits, user.period) == (8, 60) and len(user.code()) == 8
        # A secret brought from another provider, as better-auth stores it.
        imported = "JBSWY3DPEHPK3PXP"
        row = await s.row(EMAIL)
        assert row is not None
        await s.identity.db.update(
            "twoFactor", {"id": row["id"]}, {"secret": encrypt(SECRET, f"base32:{imported}")}
        )
        await challenge(s)

        class Authenticator(pyotp.TOTP):
            min_secret_length_bits = 0  # 80 bits: older apps' secrets

        code = Authenticator(imported, digits=8, interval=60).at(s.clock.now.timestamp())
        response = await s.post("/two-factor/verify-totp", {"code": code})
        assert response.status_code == 200, response.text
        generated = await s.identity.api.generate_totp(body={"secret": f"base32:{imported}"})
        assert generated == {"code": code}


async def test_bodies_are_validated_as_zod_validates_them() -> None:
    async with setup() as s:
        cases = [
            ("verify-totp", {}, "[body.code] Invalid input: expected string, received undefined"),
            (
                "verify-totp",
                {"code": 123456},
                "[body.code] Invalid input: expected string, received number",
            ),
            (
                "verify-totp",
                {"code": "1", "trustDevice": "yes"},
                "[body.trustDevice] Invalid input: expected boolean, received string",
            ),
            (
                "verify-backup-code",
                {"code": "x", "disableSession": "no"},
                "[body.disableSession] Invalid input: expected boolean, received string",
            ),
            ("verify-otp", [1], "[body] Invalid input: expected object, received array"),
        ]
        for path, body, message in cases:
            response = await s.client.post(f"/two-factor/{path}", json=body)
            assert response.json() == {"message": message, "code": "VALIDATION_ERROR"}, path
        long = await s.post("/two-factor/verify-totp", {"code": "x" * 5000})
        assert error(long) == (401, "INVALID_TWO_FACTOR_COOKIE")
