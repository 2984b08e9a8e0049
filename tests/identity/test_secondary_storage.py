"""Sessions and verification values in secondary storage (spec §6.6): the core session
behaviours with MemoryStorage and with RedisStorage, sessions kept only there or also in the
database (`store_session_in_database`), on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio

from bastion.identity import Identity
from bastion.identity.db import eq
from bastion.identity.email import EmailLink
from bastion.identity.storage import MemoryStorage, RedisStorage
from tests.identity.conftest import MakeIdentity
from tests.identity.sessionkit import (
    PASSWORD,
    TOKEN_NAME,
    Browser,
    Clock,
    bearer,
    get_session,
    set_cookies,
    sign_in,
    sign_up,
)
from tests.identity.sessionkit import serve as serve_identity
from tests.services import redis_url_or_skip


@dataclass
class Setup:
    """One way of keeping sessions: the storage, and whether the database has them too."""

    storage: MemoryStorage | RedisStorage
    in_database: bool

    def options(self, **extra: Any) -> dict[str, Any]:
        return {
            "secondary_storage": self.storage,
            "session": {"store_session_in_database": self.in_database, **extra},
        }


@asynccontextmanager
async def redis_storage() -> AsyncIterator[RedisStorage]:
    """RedisStorage under a fresh key prefix on the test Redis; its keys removed after."""
    url = await redis_url_or_skip()
    prefix = f"bastion-test:{secrets.token_hex(8)}:"
    storage = RedisStorage(url, prefix=prefix)
    try:
        yield storage
    finally:
        client = redis.asyncio.from_url(url)
        try:
            async for key in client.scan_iter(match=prefix + "*"):
                await client.delete(key)
        finally:
            await client.aclose()
        await storage.aclose()


@pytest.fixture(
    params=[
        ("memory", False),
        ("memory", True),
        ("redis", False),
        ("redis", True),
    ],
    ids=["memory", "memory+db", "redis", "redis+db"],
)
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    kind, in_database = request.param
    if kind == "memory":
        yield Setup(MemoryStorage(), in_database)
        return
    async with redis_storage() as storage:
        yield Setup(storage, in_database)


@asynccontextmanager
async def serve(
    make_identity: MakeIdentity, setup: Setup, **options: Any
) -> AsyncIterator[tuple[Identity, httpx.AsyncClient]]:
    session = options.pop("session", {})
    async with serve_identity(make_identity, **setup.options(**session), **options) as served:
        yield served


async def stored(setup: Setup, key: str) -> Any:
    raw = await setup.storage.get(key)
    return None if raw is None else json.loads(raw)


async def db_sessions(identity: Identity, user_id: str) -> list[str]:
    rows = await identity.db.find_many("session", eq("userId", user_id))
    return sorted(row["token"] for row in rows)


async def test_sign_in_get_list_revoke_sign_out(make_identity: MakeIdentity, setup: Setup) -> None:
    """The session lives in secondary storage under its token, `{session, user}`, listed in
    `active-sessions-<userId>`; in the database only with store_session_in_database.
    get-session, list-sessions, revoke-session, revoke-other-sessions and sign-out work from
    there; a signed-out session replayed gets `null`/401 (S16)."""
    async with serve(make_identity, setup) as (identity, client):
        laptop, phone, tablet = Browser(), Browser(), Browser()
        signed_up = (await sign_up(client, laptop)).json()
        user_id, t1 = signed_up["user"]["id"], signed_up["token"]
        t2 = (await sign_in(client, phone)).json()["token"]
        t3 = (await sign_in(client, tablet)).json()["token"]

        value = await stored(setup, t1)
        assert value["session"]["token"] == t1
        assert value["session"]["userId"] == user_id
        assert value["user"]["email"] == "ada@example.com"
        active = await stored(setup, f"active-sessions-{user_id}")
        assert sorted(a["token"] for a in active) == sorted([t1, t2, t3])
        expected_rows = sorted([t1, t2, t3]) if setup.in_database else []
        assert await db_sessions(identity, user_id) == expected_rows

        assert (await get_session(client, laptop)).json()["session"]["token"] == t1
        via_bearer = await client.get("/get-session", headers=bearer(t2))
        assert via_bearer.json()["user"]["id"] == user_id
        listed = await client.get("/list-sessions", headers=laptop.headers())
        assert [s["token"] for s in listed.json()] == [t1, t2, t3]

        revoked = await client.post("/revoke-session", json={"token": t2}, headers=laptop.headers())
        assert revoked.json() == {"status": True}
        assert await stored(setup, t2) is None
        assert (await get_session(client, phone)).json() is None
        assert (await client.get("/list-sessions", headers=bearer(t2))).status_code == 401

        others = await client.post("/revoke-other-sessions", headers=laptop.headers())
        assert others.json() == {"status": True}
        assert await stored(setup, t3) is None
        assert (await get_session(client, tablet)).json() is None
        listed = await client.get("/list-sessions", headers=laptop.headers())
        assert [s["token"] for s in listed.json()] == [t1]
        active = await stored(setup, f"active-sessions-{user_id}")
        assert [a["token"] for a in active] == [t1]

        stolen = laptop.copy()
        out = laptop.absorb(await client.post("/sign-out", headers=laptop.headers()))
        assert out.json() == {"success": True}
        assert await stored(setup, t1) is None
        assert await stored(setup, f"active-sessions-{user_id}") is None
        assert await db_sessions(identity, user_id) == []
        assert (await get_session(client, stolen)).json() is None
        assert (await client.get("/get-session", headers=bearer(t1))).json() is None
        assert (await client.get("/list-sessions", headers=stolen.headers())).status_code == 401


async def test_revoke_sessions_and_deleting_the_user(
    make_identity: MakeIdentity, setup: Setup
) -> None:
    """S17: revoke-sessions, and `identity.store.delete_user`, end every session in secondary
    storage (and the database)."""
    async with serve(make_identity, setup) as (identity, client):
        first, second = Browser(), Browser()
        signed_up = (await sign_up(client, first)).json()
        user_id, t1 = signed_up["user"]["id"], signed_up["token"]
        t2 = (await sign_in(client, second)).json()["token"]
        everything = await client.post("/revoke-sessions", headers=first.headers())
        assert everything.json() == {"status": True}
        for token in (t1, t2):
            assert await stored(setup, token) is None
        assert await db_sessions(identity, user_id) == []
        assert (await get_session(client, second)).json() is None

        t3 = (await sign_in(client, Browser())).json()["token"]
        bob = (await sign_up(client, Browser(), email="bob@example.com")).json()["token"]
        await identity.store.delete_user(user_id)
        assert await stored(setup, t3) is None
        assert await stored(setup, f"active-sessions-{user_id}") is None
        assert (await client.get("/get-session", headers=bearer(t3))).json() is None
        assert await db_sessions(identity, user_id) == []
        assert (await client.get("/get-session", headers=bearer(bob))).json() is not None


async def test_user_update_is_visible_in_get_session(
    make_identity: MakeIdentity, setup: Setup
) -> None:
    """update-user rewrites the user cached with each of the user's sessions."""
    async with serve(make_identity, setup) as (_, client):
        first, second = Browser(), Browser()
        t1 = (await sign_up(client, first)).json()["token"]
        t2 = (await sign_in(client, second)).json()["token"]
        update = await client.post("/update-user", json={"name": "Ada L."}, headers=first.headers())
        assert update.status_code == 200, update.text
        for browser, token in ((first, t1), (second, t2)):
            assert (await get_session(client, browser)).json()["user"]["name"] == "Ada L."
            assert (await stored(setup, token))["user"]["name"] == "Ada L."


async def test_refresh_rewrites_the_stored_session(
    make_identity: MakeIdentity, setup: Setup
) -> None:
    """S15: the sliding refresh extends the session where it is kept."""
    clock = Clock()
    async with serve(make_identity, setup, clock=clock) as (identity, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        assert (await stored(setup, token))["session"]["expiresAt"] == "2026-03-09T09:00:00.000Z"
        clock.advance(days=1)
        refreshed = await get_session(client, browser)
        assert TOKEN_NAME in set_cookies(refreshed)
        assert refreshed.json()["session"]["expiresAt"] == "2026-03-10T09:00:00.000Z"
        assert (await stored(setup, token))["session"]["expiresAt"] == "2026-03-10T09:00:00.000Z"
        row = await identity.db.find_one("session", eq("token", token))
        if setup.in_database:
            assert row is not None
            assert row["expiresAt"] == clock.now + timedelta(days=7)
        else:
            assert row is None


async def test_sessions_with_the_cookie_cache(make_identity: MakeIdentity, setup: Setup) -> None:
    """S16: with the cookie cache on too, a revoked session cannot list sessions."""
    async with serve(make_identity, setup, session={"cookie_cache": {"enabled": True}}) as (
        _,
        client,
    ):
        laptop, phone = Browser(), Browser()
        await sign_up(client, laptop)
        await sign_in(client, phone)
        await client.post("/revoke-other-sessions", headers=laptop.headers())
        assert (await client.get("/list-sessions", headers=phone.headers())).status_code == 401
        fresh = await get_session(client, phone, disableCookieCache="true")
        assert fresh.json() is None


async def test_password_reset_token_in_secondary_storage(
    make_identity: MakeIdentity, setup: Setup
) -> None:
    """Verification values live in secondary storage (`verification:<identifier>`), not in
    the verification table; a reset token works once (S8)."""
    links: list[EmailLink] = []

    async def send(link: EmailLink, request: Any) -> None:
        links.append(link)

    options = {"email_and_password": {"enabled": True, "send_reset_password": send}}
    async with serve(make_identity, setup, **options) as (identity, client):
        await sign_up(client)
        asked = await client.post("/request-password-reset", json={"email": "ada@example.com"})
        assert asked.status_code == 200, asked.text
        token = links[-1].token
        value = await stored(setup, f"verification:reset-password:{token}")
        assert value["identifier"] == f"reset-password:{token}"
        assert await identity.db.find_many("verification") == []

        callback = await client.get(f"/reset-password/{token}", params={"callbackURL": "/reset"})
        assert callback.status_code == 302
        assert callback.headers["location"] == f"http://localhost:3000/reset?token={token}"

        new_password = "a whole new password"
        body = {"newPassword": new_password, "token": token}
        assert (await client.post("/reset-password", json=body)).json() == {"status": True}
        assert await stored(setup, f"verification:reset-password:{token}") is None
        again = await client.post("/reset-password", json=body)
        assert again.status_code == 400
        assert again.json()["code"] == "INVALID_TOKEN"

        old = await client.post(
            "/sign-in/email", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert old.status_code == 401
        new = await client.post(
            "/sign-in/email", json={"email": "ada@example.com", "password": new_password}
        )
        assert new.status_code == 200


async def test_rate_limits_count_in_secondary_storage(
    make_identity: MakeIdentity, setup: Setup
) -> None:
    """S5: with secondary storage the limiter counts there (a fixed window): the 4th sign-in
    in 10 s is refused with `X-Retry-After: 10`."""
    async with serve(make_identity, setup, rate_limit={"enabled": True}) as (_, client):
        body = {"email": "nobody@example.com", "password": PASSWORD}
        for _ in range(3):
            assert (await client.post("/sign-in/email", json=body)).status_code == 401
        limited = await client.post("/sign-in/email", json=body)
        assert limited.status_code == 429
        assert limited.headers["x-retry-after"] == "10"
        assert await setup.storage.get("127.0.0.1|/sign-in/email") == "4"
