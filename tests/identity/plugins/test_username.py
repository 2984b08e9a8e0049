"""The username plugin (better-auth 1.7.25's `username()`), through HTTP.

Every answer below was observed on better-auth 1.7.25 with the same requests. S7: an
unknown username, a user without a password and a wrong password answer alike after the
same hashing work. S5: 3 sign-ins per 10 s per address, and failures counted per username.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bastion.identity import UsernameCode, magic_link, username
from tests.identity.conftest import ORIGIN, MakeIdentity, running
from tests.identity.db.plugin_schemas import USERNAME
from tests.identity.routes.helpers import PASSWORD, SESSION_COOKIE, ScryptCounter, set_cookie

UNKNOWN = {"message": "Invalid username or password", "code": "INVALID_USERNAME_OR_PASSWORD"}


async def _sign_up(client: httpx.AsyncClient, email: str, **extra: Any) -> httpx.Response:
    body = {"name": "Ada", "email": email, "password": PASSWORD, **extra}
    response = await client.post("/sign-up/email", json=body, headers=ORIGIN)
    client.cookies.clear()
    return response


async def _sign_in(
    client: httpx.AsyncClient, name: str, password: str = PASSWORD, **extra: Any
) -> Any:
    body = {"username": name, "password": password, **extra}
    return await client.post("/sign-in/username", json=body, headers=ORIGIN)


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


async def test_sign_up_and_sign_in_with_a_username(make_identity: MakeIdentity) -> None:
    """Stored lower-cased and unique, the typed casing kept as displayUsername; sign-in by
    username answers as /sign-in/email does, whatever the casing typed."""
    async with make_identity(plugins=[username()]) as (identity, client):
        response = await _sign_up(client, "ada@example.com", username="Ada.L")
        assert response.status_code == 200
        user = response.json()["user"]
        assert (user["username"], user["displayUsername"]) == ("ada.l", "Ada.L")
        signed_in = await _sign_in(client, "ADA.l")
        assert signed_in.status_code == 200
        body = signed_in.json()
        assert list(body) == ["redirect", "token", "user"]
        assert body["redirect"] is False and body["user"]["id"] == user["id"]
        assert set_cookie(signed_in, SESSION_COOKIE) is not None
        session = await client.get("/get-session")
        assert session.json()["user"]["username"] == "ada.l"
        # With callbackURL: redirect, url and Location, as /sign-in/email.
        again = await _sign_in(client, "ada.l", callbackURL="/home")
        assert list(again.json()) == ["redirect", "token", "url", "user"]
        assert again.json()["redirect"] is True and again.json()["url"] == "/home"
        assert again.headers["location"] == "/home"
        stored = await identity.store.find_user_by_email("ada@example.com")
        assert stored is not None and stored["username"] == "ada.l"


async def test_a_display_username_alone_becomes_the_username() -> None:
    async with running(plugins=[username()]) as (_, client):
        user = (await _sign_up(client, "c@example.com", displayUsername="Cee_Cee")).json()["user"]
        assert (user["username"], user["displayUsername"]) == ("cee_cee", "Cee_Cee")
        # One that is not a valid username is kept as the display name only.
        user = (await _sign_up(client, "d@example.com", displayUsername="x")).json()["user"]
        assert (user["username"], user["displayUsername"]) == (None, "x")
        plain = (await _sign_up(client, "e@example.com")).json()["user"]
        assert (plain["username"], plain["displayUsername"]) == (None, None)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("ab", "USERNAME_TOO_SHORT"),
        ("a" * 31, "USERNAME_TOO_LONG"),
        ("bad name", "INVALID_USERNAME"),
        ("émile", "INVALID_USERNAME"),
    ],
)
async def test_sign_up_refuses_a_bad_username(name: str, code: str) -> None:
    async with running(plugins=[username()]) as (identity, client):
        response = await _sign_up(client, "a@example.com", username=name)
        assert _error(response) == (400, code)
        assert await identity.db.count("user") == 0


async def test_a_taken_username_is_refused_at_sign_up_with_400() -> None:
    """400, not 422 (better-auth 1.7.25), whatever the casing."""
    async with running(plugins=[username()]) as (identity, client):
        await _sign_up(client, "a@example.com", username="Ada.L")
        response = await _sign_up(client, "b@example.com", username="ada.l")
        assert response.json() == {
            "message": "Username is already taken. Please try another.",
            "code": "USERNAME_IS_ALREADY_TAKEN",
        }
        assert response.status_code == 400
        assert await identity.db.count("user") == 1


async def test_sign_in_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """S7: unknown name, no password, wrong password: one answer, one password hash each."""
    scrypt = ScryptCounter(monkeypatch)
    sent: list[Any] = []
    plugins = [username(), magic_link(send_magic_link=lambda data, request: sent.append(data))]
    email_and_password = {"enabled": True, "password": {}}  # the real scrypt, counted
    async with running(plugins=plugins, email_and_password=email_and_password) as (
        identity,
        client,
    ):
        await _sign_up(client, "ada@example.com", username="ada")
        # A user with a username and no password: signed up by a magic link, then named.
        await client.post("/sign-in/magic-link", json={"email": "link@example.com"})
        verified = await client.get(f"/magic-link/verify?token={sent[-1].token}")
        assert verified.status_code == 200
        named = await client.post("/update-user", json={"username": "linked"}, headers=ORIGIN)
        assert named.status_code == 200
        client.cookies.clear()
        scrypt.take()
        for name, password in [("nobody", PASSWORD), ("linked", PASSWORD), ("ada", "wrong-one")]:
            response = await _sign_in(client, name, password)
            assert (response.status_code, response.json()) == (401, UNKNOWN)
            assert scrypt.take() == 1, name
        empty = await _sign_in(client, "", PASSWORD)
        assert (empty.status_code, empty.json()) == (401, UNKNOWN)
        short = await _sign_in(client, "ab")
        assert short.json() == {"message": "Username is too short", "code": "USERNAME_TOO_SHORT"}
        assert short.status_code == 422  # 422 here, 400 at sign-up (better-auth 1.7.25)
        too_long = await _sign_in(client, "ada", "x" * 129)
        assert _error(too_long) == (400, "PASSWORD_TOO_LONG")
        missing = await client.post("/sign-in/username", json={"username": "ada"})
        assert missing.json()["message"] == (
            "[body.password] Invalid input: expected string, received undefined"
        )
        assert await identity.db.count("session") == 2  # sign-up's and the magic link's


async def test_an_unverified_user_is_refused_when_verification_is_required() -> None:
    options = {"email_and_password": {"enabled": True, "require_email_verification": True}}
    async with running(plugins=[username()], **options) as (_, client):
        await _sign_up(client, "ada@example.com", username="ada")
        response = await _sign_in(client, "ada")
        assert response.json() == {"message": "Email not verified", "code": "EMAIL_NOT_VERIFIED"}
        assert response.status_code == 403


async def test_is_username_available() -> None:
    async with running(plugins=[username()]) as (_, client):
        await _sign_up(client, "ada@example.com", username="Ada.L")
        taken = await client.post("/is-username-available", json={"username": "ada.L"})
        assert taken.json() == {"available": False}
        free = await client.post("/is-username-available", json={"username": "grace"})
        assert free.json() == {"available": True}
        empty = await client.post("/is-username-available", json={"username": ""})
        assert (empty.status_code, empty.json()) == (
            422,
            {"message": "Username is invalid", "code": "INVALID_USERNAME"},
        )
        short = await client.post("/is-username-available", json={"username": "a"})
        assert _error(short) == (422, "USERNAME_TOO_SHORT")


async def test_update_user_sets_and_checks_the_username() -> None:
    async with running(plugins=[username()]) as (identity, client):
        await _sign_up(client, "c@example.com", username="cee_cee")
        await client.post(
            "/sign-up/email",
            json={"name": "A", "email": "a@example.com", "password": PASSWORD, "username": "Ada.L"},
            headers=ORIGIN,
        )
        taken = await client.post("/update-user", json={"username": "CEE_cee"}, headers=ORIGIN)
        assert _error(taken) == (400, "USERNAME_IS_ALREADY_TAKEN")
        same = await client.post("/update-user", json={"username": "ADA.L"}, headers=ORIGIN)
        assert same.json() == {"status": True}  # one's own name is not "taken"
        renamed = await client.post("/update-user", json={"username": "New.Name"}, headers=ORIGIN)
        assert renamed.json() == {"status": True}
        user = await identity.store.find_user_by_email("a@example.com")
        assert user is not None
        assert (user["username"], user["displayUsername"]) == ("new.name", "Ada.L")
        display = await client.post(
            "/update-user", json={"displayUsername": "NEW.name"}, headers=ORIGIN
        )
        assert display.json() == {"status": True}
        bad = await client.post("/update-user", json={"username": "no way"}, headers=ORIGIN)
        assert _error(bad) == (400, "INVALID_USERNAME")
        # Without a session: a taken name answers before the missing session (1.7.25).
        client.cookies.clear()
        anonymous = await client.post("/update-user", json={"username": "cee_cee"})
        assert _error(anonymous) == (400, "USERNAME_IS_ALREADY_TAKEN")
        anonymous = await client.post("/update-user", json={"username": "free_name"})
        assert anonymous.status_code == 401


async def test_an_immutable_username() -> None:
    async with running(plugins=[username(immutable_username=True)]) as (_, client):
        await client.post(
            "/sign-up/email",
            json={"name": "A", "email": "a@example.com", "password": PASSWORD, "username": "ada"},
            headers=ORIGIN,
        )
        refused = await client.post("/update-user", json={"username": "grace"}, headers=ORIGIN)
        assert refused.json() == {
            "message": "Username cannot be updated",
            "code": "USERNAME_IS_IMMUTABLE",
        }
        same = await client.post("/update-user", json={"username": "ADA"}, headers=ORIGIN)
        assert same.status_code == 200


async def test_options_validator_normalization_lengths_and_display_validator() -> None:
    async def only_lowercase(name: str) -> bool:
        return name.isalpha() and name.islower()

    plugin = username(
        min_username_length=5,
        max_username_length=8,
        username_validator=only_lowercase,
        username_normalization=False,
        display_username_validator=lambda name: "!" not in name,
    )
    async with running(plugins=[plugin]) as (_, client):
        assert _error(await _sign_up(client, "a@example.com", username="abcd")) == (
            400,
            "USERNAME_TOO_SHORT",
        )
        assert _error(await _sign_up(client, "a@example.com", username="abcdefghi")) == (
            400,
            "USERNAME_TOO_LONG",
        )
        assert _error(await _sign_up(client, "a@example.com", username="Abcde")) == (
            400,
            "INVALID_USERNAME",
        )
        bad_display = await _sign_up(
            client, "a@example.com", username="abcde", displayUsername="Hey!"
        )
        assert _error(bad_display) == (400, "INVALID_DISPLAY_USERNAME")
        user = (await _sign_up(client, "a@example.com", username="abcde")).json()["user"]
        assert user["username"] == "abcde"
        # No normalisation: the name is matched as typed.
        assert (await _sign_in(client, "abcde")).status_code == 200
        assert (await _sign_in(client, "ABCDE")).status_code == 422  # not valid as typed


async def test_without_display_username() -> None:
    async with running(plugins=[username(display_username=False)]) as (identity, client):
        user = (await _sign_up(client, "a@example.com", username="Ada")).json()["user"]
        assert user["username"] == "ada" and "displayUsername" not in user
        assert "displayUsername" not in identity.schema.fields("user")


def test_the_schema_is_better_auths() -> None:
    """The columns of better-auth-ddl-plugins.sql (tests/identity/db/test_reference_ddl.py
    builds and compares them on every dialect)."""
    plugin = username()
    assert plugin.schema == USERNAME
    assert plugin.error_codes is UsernameCode


async def test_the_per_ip_limit_on_sign_in() -> None:
    """S5: /sign-in/username is a /sign-in path: 3 per 10 s per address, then 429."""
    async with running(plugins=[username()], rate_limit={"enabled": True}) as (_, client):
        answers = [(await _sign_in(client, "nobody")).status_code for _ in range(4)]
        assert answers == [401, 401, 401, 429]


async def test_failures_are_counted_per_username_across_addresses() -> None:
    """S5: wrong passwords from many addresses trip the per-account limit (failures from
    clients that never signed in to it), and the owner's known address still gets in."""
    options = {
        "rate_limit": {
            "enabled": True,
            "account_rules": {
                "/sign-in/username": {
                    "per_client": {"window": 300, "max": 5},
                    "per_account": {"window": 900, "max": 4},
                }
            },
        },
        "advanced": {"trusted_proxies": ["127.0.0.1"]},
    }
    async with running(plugins=[username()], **options) as (_, client):
        await _sign_up(client, "ada@example.com", username="ada")
        owner = {**ORIGIN, "x-forwarded-for": "198.51.100.1"}
        ok = await client.post(
            "/sign-in/username", json={"username": "ada", "password": PASSWORD}, headers=owner
        )
        assert ok.status_code == 200
        client.cookies.clear()
        answers = []
        for i in range(6):
            response = await client.post(
                "/sign-in/username",
                json={"username": "ADA", "password": "wrong-password"},
                headers={**ORIGIN, "x-forwarded-for": f"203.0.113.{i + 1}"},
            )
            answers.append(response.status_code)
        assert answers == [401, 401, 401, 401, 429, 429]
        assert "retry-after" in response.headers
        again = await client.post(
            "/sign-in/username", json={"username": "ada", "password": PASSWORD}, headers=owner
        )
        assert again.status_code == 200
