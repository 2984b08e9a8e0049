"""`email_and_password.password = {"hash": fn, "verify": fn}`: better-auth's own password hash
option (`emailAndPassword.password`), with its signatures — `hash(password) -> str` and
`verify({"hash": ..., "password": ...}) -> bool`, sync or async — through sign-up, sign-in,
change-password and the unknown-user path."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest

from bastion.identity import IdentityOptions, PasswordOptions
from bastion.identity.db import eq
from tests.identity.conftest import MakeIdentity, running

from .routes.helpers import PASSWORD, sign_in, sign_up


class Recorder:
    """A user's hash functions (reversible on purpose, to see what is stored), recording each
    call and the thread it ran on."""

    def __init__(self) -> None:
        self.hashed: list[str] = []
        self.verified: list[dict[str, str]] = []
        self.threads: set[int] = set()

    def _hash(self, password: str) -> str:
        self.threads.add(threading.get_ident())
        self.hashed.append(password)
        return "sha1$" + hashlib.sha1(password.encode()).hexdigest()

    def _verify(self, data: dict[str, str]) -> bool:
        self.threads.add(threading.get_ident())
        self.verified.append(dict(data))
        return data["hash"] == "sha1$" + hashlib.sha1(data["password"].encode()).hexdigest()

    def sync(self) -> dict[str, Any]:
        return {"hash": self._hash, "verify": self._verify}

    def asynchronous(self) -> dict[str, Any]:
        async def hash(password: str) -> str:
            return self._hash(password)

        async def verify(data: dict[str, str]) -> bool:
            return self._verify(data)

        return {"hash": hash, "verify": verify}


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_sign_up_stores_the_custom_hash_and_sign_in_verifies_with_it(
    make_identity: MakeIdentity, kind: str
) -> None:
    recorder = Recorder()
    functions = recorder.sync() if kind == "sync" else recorder.asynchronous()
    options = {"enabled": True, "password": functions}
    async with make_identity(email_and_password=options) as (identity, client):
        response = await sign_up(client, "ada@example.com")
        assert response.status_code == 200
        user_id = response.json()["user"]["id"]
        account = await identity.db.find_one("account", eq("userId", user_id))
        assert account is not None
        assert account["password"] == "sha1$" + hashlib.sha1(PASSWORD.encode()).hexdigest()
        assert recorder.hashed == [PASSWORD]

        assert (await sign_in(client, "ada@example.com")).status_code == 200
        assert (await sign_in(client, "ada@example.com", "wrong-password")).status_code == 401
        assert recorder.verified == [
            {"hash": account["password"], "password": PASSWORD},
            {"hash": account["password"], "password": "wrong-password"},
        ]
    if kind == "sync":  # a sync hash is CPU work: it runs off the event loop's thread
        assert threading.get_ident() not in recorder.threads


async def test_change_password_hashes_and_verifies_with_the_custom_functions() -> None:
    recorder = Recorder()
    async with running(email_and_password={"enabled": True, "password": recorder.sync()}) as (
        _,
        client,
    ):
        token = (await sign_up(client, "cp@example.com")).json()["token"]
        response = await client.post(
            "/change-password",
            json={"currentPassword": PASSWORD, "newPassword": "a-new-password"},
            headers={"authorization": f"Bearer {token}", "origin": "http://localhost:3000"},
        )
        assert response.status_code == 200
        assert recorder.hashed == [PASSWORD, "a-new-password"]
        assert (await sign_in(client, "cp@example.com", "a-new-password")).status_code == 200
        assert (await sign_in(client, "cp@example.com")).status_code == 401


async def test_an_unknown_user_costs_one_custom_verify_like_a_known_one() -> None:
    """S7 with a custom hash: an unknown email is checked against a hash the custom function
    made (of a password nobody sends), so it takes the same path as a wrong password."""
    recorder = Recorder()
    async with running(email_and_password={"enabled": True, "password": recorder.sync()}) as (
        _,
        client,
    ):
        await sign_up(client, "known@example.com")
        wrong = await sign_in(client, "known@example.com", "wrong-password")
        verified_for_known = len(recorder.verified)
        for _ in range(2):
            unknown = await sign_in(client, "nobody@example.com", "wrong-password")
            assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())
        assert len(recorder.verified) == verified_for_known + 2
        dummy = recorder.verified[-1]
        assert dummy["password"] == "wrong-password"
        assert dummy["hash"].startswith("sha1$")  # made by the custom hash, once
        assert recorder.verified[-2]["hash"] == dummy["hash"]
        assert len(recorder.hashed) == 2  # the sign-up's, and the unknown-user hash


def test_the_option_takes_a_dict_or_password_options() -> None:
    def hash(password: str) -> str:
        return password

    def verify(data: dict[str, str]) -> bool:
        return True

    as_dict = IdentityOptions.build({"email_and_password": {"password": {"hash": hash}}})
    assert as_dict.email_and_password.password == PasswordOptions(hash=hash)
    typed = IdentityOptions.build(
        {"email_and_password": {"password": PasswordOptions(hash=hash, verify=verify)}}
    )
    assert typed.email_and_password.password.verify is verify
    with pytest.raises(TypeError, match="no option 'compare'"):
        IdentityOptions.build({"email_and_password": {"password": {"compare": verify}}})
