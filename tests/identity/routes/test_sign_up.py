"""POST /sign-up/email (spec §3.2, errata 2 and 3), over HTTP and in-process.

S1: passwords are counted in UTF-16 code units and never truncated. S7: in the generic
modes a duplicate email gets the answer a new one gets, after the same scrypt work.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bastion.identity import APIError, Code
from bastion.identity.db import Field, eq
from tests.identity.conftest import MakeIdentity, running

from .helpers import ORIGIN, PASSWORD, SESSION_COOKIE, Clock, ScryptCounter, set_cookie, sign_up

USER_KEYS = ["id", "name", "email", "emailVerified", "image", "createdAt", "updatedAt"]
HASH = re.compile(r"^[0-9a-f]{32}:[0-9a-f]{128}$")


async def test_sign_up_answers_token_and_user_and_sets_the_cookie(
    make_identity: MakeIdentity,
) -> None:
    async with make_identity() as (identity, client):
        response = await client.post(
            "/sign-up/email",
            json={"name": "Ada", "email": "Ada.Lovelace@Example.COM", "password": PASSWORD},
        )
        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["token", "user"]
        assert re.fullmatch(r"[A-Za-z0-9]{32}", body["token"])
        user = body["user"]
        assert list(user) == USER_KEYS
        assert user["email"] == "ada.lovelace@example.com"
        assert user["name"] == "Ada" and user["emailVerified"] is False and user["image"] is None
        assert PASSWORD not in response.text and "password" not in response.text.lower()

        cookie = set_cookie(response, SESSION_COOKIE)
        assert cookie is not None and cookie["value"].startswith(body["token"] + ".")
        assert cookie["max-age"] == "604800" and "httponly" in cookie

        # The hash lives on the credential account, never on the user.
        account = await identity.db.find_one("account", eq("userId", user["id"]))
        assert account is not None and account["providerId"] == "credential"
        assert account["accountId"] == user["id"] and HASH.match(account["password"])
        session = (await client.get("/get-session")).json()
        assert session["user"]["email"] == "ada.lovelace@example.com"


async def test_a_form_encoded_body_is_accepted() -> None:
    async with running() as (_, client):
        response = await client.post(
            "/sign-up/email",
            data={"name": "Form", "email": "form@example.com", "password": PASSWORD},
        )
        assert response.status_code == 200
        assert response.json()["user"]["email"] == "form@example.com"


async def test_a_duplicate_email_is_refused_with_422(make_identity: MakeIdentity) -> None:
    async with make_identity() as (_, client):
        assert (await sign_up(client, "dup@example.com")).status_code == 200
        again = await sign_up(client, "DUP@example.com")
        assert again.status_code == 422
        assert again.reason_phrase == "Unprocessable Entity"
        assert again.json() == {
            "message": "User already exists. Use another email.",
            "code": "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
        }


@pytest.mark.parametrize(
    "email_and_password",
    [
        {"enabled": True, "require_email_verification": True},
        {"enabled": True, "auto_sign_in": False},
    ],
    ids=["require_email_verification", "auto_sign_in=False"],
)
async def test_generic_mode_answers_a_duplicate_as_a_new_sign_up(
    make_identity: MakeIdentity,
    monkeypatch: pytest.MonkeyPatch,
    email_and_password: dict[str, Any],
) -> None:
    """S7: same status, same keys in the same order, no cookie, one scrypt either way."""
    scrypt = ScryptCounter(monkeypatch)
    extra = {
        "plan": Field(type="string", default="free", input=False),
        "nickname": Field(type="string", required=False),
    }
    options = {"email_and_password": email_and_password, "user": {"additional_fields": extra}}
    async with make_identity(**options) as (identity, client):
        first = await sign_up(client, "taken@example.com", nickname="ada")
        assert scrypt.take() == 1
        second = await sign_up(client, "taken@example.com", name="Mallory", nickname="m")
        assert scrypt.take() == 1  # the password is hashed for a duplicate too

        assert first.status_code == second.status_code == 200
        assert set_cookie(first, SESSION_COOKIE) is None
        assert set_cookie(second, SESSION_COOKIE) is None
        new, duplicate = first.json(), second.json()
        assert new["token"] is None and duplicate["token"] is None
        assert list(new["user"]) == list(duplicate["user"]) == [*USER_KEYS, "plan", "nickname"]
        assert duplicate["user"]["id"] != new["user"]["id"]
        assert duplicate["user"]["plan"] == "free" and duplicate["user"]["nickname"] == "m"
        assert duplicate["user"]["emailVerified"] is False
        assert {type(v) for v in new["user"].values()} == {
            type(v) for v in duplicate["user"].values()
        }
        # Nothing was written for the duplicate.
        stored = await identity.store.find_user_by_email("taken@example.com")
        assert stored is not None and stored["name"] == "Ada"
        assert await identity.db.count("user") == 1


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("x" * 7, "PASSWORD_TOO_SHORT"),
        ("x" * 129, "PASSWORD_TOO_LONG"),
        ("🔐" * 65, "PASSWORD_TOO_LONG"),  # 65 characters, 130 UTF-16 code units
    ],
    ids=["7-chars", "129-chars", "65-emoji"],
)
async def test_password_length_is_counted_in_utf16_code_units(password: str, code: str) -> None:
    async with running() as (_, client):
        response = await sign_up(client, "len@example.com", password)
        assert response.status_code == 400
        assert response.json()["code"] == code


@pytest.mark.parametrize(
    "password", ["x" * 8, "x" * 128, "🔐" * 4, "🔐" * 64], ids=["8", "128", "4-emoji", "64-emoji"]
)
async def test_password_length_bounds_are_inclusive(password: str) -> None:
    """Four emoji are 8 code units (allowed); 64 emoji are 128 (allowed)."""
    async with running() as (_, client):
        assert (await sign_up(client, "ok@example.com", password)).status_code == 200


async def test_an_empty_password_is_a_validation_error() -> None:
    """Errata 3: 400 VALIDATION_ERROR at sign-up (sign-in answers 401)."""
    async with running() as (_, client):
        response = await sign_up(client, "empty@example.com", "")
        assert response.status_code == 400
        assert response.json() == {
            "message": "[body.password] Too small: expected string to have >=1 characters",
            "code": "VALIDATION_ERROR",
        }


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a..b@example.com", ""])
async def test_an_invalid_email_is_the_schema_error(email: str) -> None:
    async with running() as (_, client):
        response = await sign_up(client, email)
        assert response.status_code == 400
        assert response.json() == {
            "message": "[body.email] Invalid email address",
            "code": "VALIDATION_ERROR",
        }


async def test_missing_fields_are_named() -> None:
    async with running() as (_, client):
        response = await client.post("/sign-up/email", json={"email": "x@example.com"})
        assert response.status_code == 400
        assert response.json()["message"] == (
            "[body.name] Invalid input: expected string, received undefined; "
            "[body.password] Invalid input: expected string, received undefined"
        )


async def test_an_email_over_254_characters_is_refused(make_identity: MakeIdentity) -> None:
    """Errata 2: better-auth's schema takes a 300-character local part (and MySQL's
    varchar(255) column then refuses it). Bastion refuses any address over 254 characters,
    the most SMTP carries, on every dialect, before anything is written (issue 11, item 3)."""
    email = "a" * 300 + "@example.com"
    async with make_identity() as (identity, client):
        response = await sign_up(client, email)
        assert response.status_code == 400
        assert response.json() == {
            "message": "[body.email] Too big: expected string to have <=254 characters",
            "code": "VALIDATION_ERROR",
        }
        assert await identity.db.count("user") == 0


async def test_email_verified_cannot_be_set_at_sign_up(make_identity: MakeIdentity) -> None:
    """better-auth 1.7.25 ignores core fields in the body: `emailVerified: true` is dropped
    (200, unverified), not refused."""
    async with make_identity() as (identity, client):
        response = await sign_up(client, "ev@example.com", emailVerified=True, id="chosen-id")
        assert response.status_code == 200
        user = response.json()["user"]
        assert user["emailVerified"] is False and user["id"] != "chosen-id"
        stored = await identity.store.find_user_by_email("ev@example.com")
        assert stored is not None and stored["emailVerified"] is False


async def test_an_input_false_field_is_refused() -> None:
    """An additional field with `input=False` and no default: FIELD_NOT_ALLOWED when set."""
    extra = {"role": Field(type="string", required=False, input=False)}
    async with running(user={"additional_fields": extra}) as (identity, client):
        response = await sign_up(client, "role@example.com", role="admin")
        assert response.status_code == 400
        assert response.json() == {
            "message": "role is not allowed to be set",
            "code": "FIELD_NOT_ALLOWED",
        }
        assert await identity.store.find_user_by_email("role@example.com") is None


async def test_additional_fields_are_stored_and_returned(make_identity: MakeIdentity) -> None:
    extra = {
        "nickname": Field(type="string", required=False),
        "age": Field(type="number", required=False),
        "plan": Field(type="string", default="free", input=False),
        "newsletter": Field(type="boolean", default=False),
    }
    async with make_identity(user={"additional_fields": extra}) as (identity, client):
        response = await sign_up(
            client, "extra@example.com", nickname="ada", age=36, plan="pro", unknown="dropped"
        )
        assert response.status_code == 200
        user = response.json()["user"]
        assert user["nickname"] == "ada" and user["age"] == 36
        assert user["plan"] == "free"  # input=False with a default: the default applies
        assert user["newsletter"] is False and "unknown" not in user
        stored = await identity.store.find_user_by_email("extra@example.com")
        assert stored is not None
        assert (stored["nickname"], stored["age"], stored["plan"]) == ("ada", 36, "free")
        session = (await client.get("/get-session")).json()
        assert session["user"]["nickname"] == "ada" and session["user"]["age"] == 36


async def test_a_required_additional_field_must_be_given() -> None:
    extra = {"company": Field(type="string")}
    async with running(user={"additional_fields": extra}) as (_, client):
        missing = await sign_up(client, "co@example.com")
        assert missing.status_code == 400
        assert missing.json() == {"message": "company is required", "code": "MISSING_FIELD"}
        wrong = await sign_up(client, "co@example.com", company={"name": "Acme"})
        assert wrong.status_code == 400
        assert wrong.json()["message"] == (
            "[body.company] Invalid input: expected string, received object"
        )
        assert (await sign_up(client, "co@example.com", company="Acme")).status_code == 200


@pytest.mark.parametrize(
    "email_and_password",
    [{"enabled": False}, {"enabled": True, "disable_sign_up": True}],
    ids=["disabled", "disable_sign_up"],
)
async def test_sign_up_can_be_disabled(email_and_password: dict[str, Any]) -> None:
    async with running(email_and_password=email_and_password) as (identity, client):
        response = await sign_up(client, "off@example.com")
        assert response.status_code == 400
        assert response.json() == {
            "message": "Email and password sign up is not enabled",
            "code": "EMAIL_PASSWORD_SIGN_UP_DISABLED",
        }
        assert await identity.db.count("user") == 0


async def test_remember_me_false_makes_a_browser_session() -> None:
    """A session cookie without Max-Age, a signed dont_remember cookie, a 1-day session."""
    clock = Clock()
    async with running(clock=clock) as (identity, client):
        response = await sign_up(client, "short@example.com", rememberMe=False)
        assert response.status_code == 200
        cookie = set_cookie(response, SESSION_COOKIE)
        assert cookie is not None and "max-age" not in cookie
        remember = set_cookie(response, "better-auth.dont_remember")
        assert remember is not None and remember["value"].startswith("true.")
        found = await identity.store.find_session(response.json()["token"])
        assert found is not None
        assert (found[0]["expiresAt"] - clock.now).total_seconds() == pytest.approx(86400, abs=1)


async def test_sign_up_in_process() -> None:
    """`identity.api.sign_up_email` returns Python values and raises APIError."""
    async with running() as (identity, _):
        result = await identity.api.sign_up_email(
            body={"name": "In", "email": "In@Process.test", "password": PASSWORD}
        )
        assert result["user"]["email"] == "in@process.test"
        assert isinstance(result["token"], str) and "password" not in result["user"]
        with pytest.raises(APIError) as refused:
            await identity.api.sign_up_email(
                body={"name": "In", "email": "in@process.test", "password": PASSWORD}
            )
        assert refused.value.status == 422
        assert refused.value.code is Code.USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL


async def test_a_signed_in_browser_needs_its_origin_to_sign_up_again() -> None:
    """With the session cookie the Origin check applies (S19): none → 403, trusted → 200."""
    async with running() as (_, client):
        assert (await sign_up(client, "first@example.com")).status_code == 200
        refused = await client.post(
            "/sign-up/email",
            json={"name": "B", "email": "second@example.com", "password": PASSWORD},
        )
        assert refused.status_code == 403
        assert refused.json()["code"] == "MISSING_OR_NULL_ORIGIN"
        allowed = await client.post(
            "/sign-up/email",
            json={"name": "B", "email": "second@example.com", "password": PASSWORD},
            headers=ORIGIN,
        )
        assert allowed.status_code == 200


async def test_user_and_password_account_are_created_together() -> None:
    """A sign-up whose account insert fails leaves no user behind (nothing half-made)."""
    from tests.identity.conftest import running

    def refuse_account(data: dict, ctx: object) -> bool:
        return False

    hooks = {"account": {"create": {"before": refuse_account}}}
    async with running(database_hooks=hooks) as (identity, client):
        answer = await client.post(
            "/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": "password123"},
        )
        assert answer.status_code >= 400
        assert await identity.store.find_user_by_email("ada@example.com") is None
