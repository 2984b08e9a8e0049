"""TypeScript better-auth and Bastion on one database: social accounts one links, the other
uses.

As tests/e2e/test_shared_database.py, with social sign-in: for each database (PostgreSQL and
SQLite with `account.encryptOAuthTokens` on both or off on both; MariaDB with it on), the real
better-auth 1.7.25 server (`ba-peer.mjs serve`) and a Bastion Identity served by uvicorn
share the database and the secret, and the generic OAuth plugin with the OpenID Provider
stand-in's discovery (tests/e2e/social_peers.py). One browser (one cookie jar: cookies know
no ports) goes between them.

- An identity that signed in through one signs in again through the other: the same user
  and the same account row, no duplicate.
- Tokens one server stored, the other reads: get-access-token answers them in the clear
  (better-auth's symmetricEncrypt with the shared secret, or as stored), and refresh-token
  refreshes with the stored refresh token and stores new tokens the first server reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bastion.identity import Identity, bearer
from bastion.identity.db import eq
from bastion.identity.symmetric import decrypt, looks_encrypted
from tests.e2e.bastion_server import free_port, serve
from tests.e2e.node_peer import better_auth_server
from tests.e2e.social_peers import (
    OIDC_PROVIDER,
    Browser,
    Server,
    at_provider,
    bastion_social_options,
    body,
    oidc_client,
    ts_social_env,
)
from tests.e2e.wire import Answer
from tests.identity.social.standins import OIDCProvider, oidc_provider
from tests.services import scratch_database

pytestmark = pytest.mark.e2e

SECRET = "shared-social-secret-for-both-servers-0123456789"
DIRECTIONS = ["ts-then-bastion", "bastion-then-ts"]
# The provider's users: one a check and direction, so that each has rows of its own.
USERS = {
    f"{test}-{direction}": {
        "email": f"{test}-{direction}@example.com",
        "email_verified": True,
        "name": f"{test.title()} {direction}",
    }
    for test in ("again", "tokens")
    for direction in DIRECTIONS
}


@dataclass
class Shared:
    kind: str
    encrypted: bool
    idp: OIDCProvider
    identity: Identity  # Bastion's: its store reads the shared database
    ts: Server
    bastion: Server

    def pair(self, direction: str) -> tuple[Server, Server]:
        """(the first server, the other) for a direction."""
        if direction == "ts-then-bastion":
            return self.ts, self.bastion
        return self.bastion, self.ts

    def plain(self, stored: str) -> str:
        """A stored token in the clear, as both servers must store it."""
        assert looks_encrypted(stored) is self.encrypted, stored
        if not self.encrypted:
            return stored
        return decrypt(SECRET, stored)


@asynccontextmanager
async def shared_servers(kind: str, encrypted: bool) -> AsyncIterator[Shared]:
    ts_port, bastion_port = free_port(), free_port()
    ts_origin, bastion_origin = f"http://127.0.0.1:{ts_port}", f"http://127.0.0.1:{bastion_port}"
    clients = [oidc_client(ts_origin, bastion_origin)]
    with oidc_provider(clients=clients, users=USERS, refresh_tokens="always") as idp:
        async with (
            scratch_database(kind) as database_url,
            better_auth_server(
                database_url,
                ts_port,
                BETTER_AUTH_SECRET=SECRET,
                TRUSTED_ORIGINS=bastion_origin,
                **ts_social_env(idp=idp, encrypt_tokens=encrypted),
            ) as ts_server,
        ):

            def identity_for(origin: str) -> Identity:
                options = bastion_social_options(idp=idp, encrypt_tokens=encrypted)
                return Identity(
                    env={},
                    secret=SECRET,
                    base_url=origin,
                    database=database_url,
                    email_and_password={"enabled": True},
                    trusted_origins=[ts_server.origin],
                    **{**options, "plugins": [bearer(), *options["plugins"]]},
                )

            async with (
                serve(identity_for, port=bastion_port) as (identity, origin),
                httpx.AsyncClient(timeout=30) as client,
            ):
                yield Shared(
                    kind,
                    encrypted,
                    idp,
                    identity,
                    Server("better-auth", ts_server.base_url, client.send),
                    Server("bastion", f"{origin}/api/auth", client.send),
                )


# One test a database and encryption setting, which starts the servers once (a module
# fixture would be set up again in each pytest-xdist worker its tests land on).
@pytest.mark.parametrize(
    ("kind", "encrypted"),
    [
        ("postgresql", True),
        ("postgresql", False),
        ("sqlite", True),
        ("sqlite", False),
        ("mysql", True),
    ],
    ids=lambda value: {True: "encrypted", False: "plain"}.get(value, value),
)
async def test_social_accounts_are_shared(kind: str, encrypted: bool) -> None:
    async with shared_servers(kind, encrypted) as shared:
        for direction in DIRECTIONS:
            await an_identity_linked_by_one_signs_in_again_through_the_other(shared, direction)
            await tokens_one_stored_are_read_by_the_other(shared, direction)


async def sign_in(browser: Browser, login: str) -> Answer:
    """The whole flow at `browser`'s server: its answer to the callback."""
    started = await browser.call(
        "POST",
        "/sign-in/social",
        {"provider": OIDC_PROVIDER, "callbackURL": "/dash", "newUserCallbackURL": "/welcome"},
    )
    assert started.status == 200, (browser.server.name, started.text)
    answer = await browser.back_from(await at_provider(body(started)["url"], login))
    assert answer.status == 302, (browser.server.name, answer.text)
    return answer


def location(answer: Answer) -> str | None:
    return (answer.headers or {}).get("location")


async def session_user(browser: Browser) -> dict[str, Any]:
    answer = await browser.call("GET", "/get-session")
    assert answer.status == 200 and body(answer) is not None, (browser.server.name, answer.text)
    user: dict[str, Any] = body(answer)["user"]
    return user


async def an_identity_linked_by_one_signs_in_again_through_the_other(
    shared: Shared, direction: str
) -> None:
    first, other = shared.pair(direction)
    login = f"again-{direction}"
    browser = Browser(first)
    assert location(await sign_in(browser, login)) == "/welcome"  # a new user, on `first`
    user = await session_user(browser)

    again = Browser(other)  # another browser, at the other server
    assert location(await sign_in(again, login)) == "/dash", "not the existing user"
    assert (await session_user(again))["id"] == user["id"]

    store, db = shared.identity.store, shared.identity.db
    assert await db.count("user", eq("email", USERS[login]["email"])) == 1
    account = await store.find_account(OIDC_PROVIDER, login)
    assert account is not None and account["userId"] == user["id"]
    assert [a["id"] for a in await store.list_accounts(user["id"])] == [account["id"]]
    # Both list that one account alike, to either browser.
    listed = []
    for browser_at in (browser.at(other), again.at(first)):
        answer = await browser_at.call("GET", "/list-accounts")
        assert answer.status == 200, (browser_at.server.name, answer.text)
        listed.append(body(answer))
    assert listed[0] == listed[1]
    assert [(a["id"], a["accountId"], a["scopes"]) for a in listed[0]] == [
        (account["id"], login, ["openid", "email", "profile"])
    ]


async def tokens_one_stored_are_read_by_the_other(shared: Shared, direction: str) -> None:
    writer, reader = shared.pair(direction)
    login = f"tokens-{direction}"
    browser = Browser(writer)
    await sign_in(browser, login)
    row = await shared.identity.store.find_account(OIDC_PROVIDER, login)
    assert row is not None
    access = shared.plain(row["accessToken"])
    assert shared.plain(row["refreshToken"])
    assert row["idToken"].count(".") == 2  # an ID token is never encrypted
    selection = {"accountId": row["id"]}

    # The reader answers the writer's tokens in the clear …
    read = await browser.at(reader).call("POST", "/get-access-token", selection)
    assert read.status == 200, (reader.name, read.text)
    assert body(read)["accessToken"] == access
    assert body(read)["idToken"] == row["idToken"]
    # … the provider's own: its userinfo knows the user by it.
    async with httpx.AsyncClient() as client:
        info = await client.get(
            shared.idp.userinfo_endpoint, headers={"authorization": f"Bearer {access}"}
        )
    assert info.status_code == 200 and info.json()["sub"] == login

    # The reader refreshes with the writer's refresh token and stores the new tokens as the
    # writer would: the writer answers them.
    refreshed = await browser.at(reader).call("POST", "/refresh-token", selection)
    assert refreshed.status == 200, (reader.name, refreshed.text)
    new_access = body(refreshed)["accessToken"]
    assert new_access != access
    after = await shared.identity.store.find_account(OIDC_PROVIDER, login)
    assert after is not None
    assert shared.plain(after["accessToken"]) == new_access
    assert shared.plain(after["refreshToken"]) == body(refreshed)["refreshToken"]
    read = await browser.at(writer).call("POST", "/get-access-token", selection)
    assert read.status == 200, (writer.name, read.text)
    assert body(read)["accessToken"] == new_access
