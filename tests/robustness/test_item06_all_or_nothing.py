"""Issue 11, item 6: all or nothing across the database and the secondary storage.

Every operation that writes both either completes or leaves nothing behind, so a client that
got a 503 can simply try again: sign-up, sign-in, verify-email with auto sign-in,
reset-password, change-password, update-user, delete-user, sign-out and the revocations.
Redis is the tests' own (tests/own_services.py): stopped for a whole outage, or, for a
failure in the middle of an operation, reached through `Flaky`, a secondary storage that
passes each call to it and fails the ones a test picks exactly as Redis being down fails
them. Where an order had to be chosen, revocation wins: sessions deleted before a later
step failed stay deleted.

The agent server's memory writes on a read-only or full SQLite file answer 503, not 500.

Security check S41: "no half-written state across storages" — an operation that
writes the database and the secondary storage leaves either both written or neither (a
secondary write undone if the transaction fails), except revocations, which stay done.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import event

from bastion.auth import SimpleAuth
from bastion.identity import Identity, bearer
from bastion.identity.db import eq
from bastion.identity.storage import RedisStorage, StorageUnavailable
from bastion.server import Agent, Bastion, Memory
from tests.auth.doubles import ScriptedModel

if TYPE_CHECKING:
    from tests.own_services import OwnRedis

pytest_plugins = ["tests.own_services"]  # the own_redis fixture

BASE = "http://localhost:3000"
SECRET = "item06-secret-0123456789abcdef0123456789abcdef"
ORIGIN = {"origin": BASE}
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a new horse, a new battery"
ADA = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
LOGIN = {"email": "ada@example.com", "password": PASSWORD}


class Flaky:
    """A secondary storage that passes every call to `inner`, except those `fails(operation,
    key)` picks: they raise StorageUnavailable before reaching it, as a Redis that went down
    does (RedisStorage raises the same)."""

    def __init__(self, inner: RedisStorage) -> None:
        self.inner = inner
        self.fails: Callable[[str, str], bool] = lambda operation, key: False

    def _check(self, operation: str, key: str) -> None:
        if self.fails(operation, key):
            raise StorageUnavailable(f"{operation} {key}: connection refused")

    async def get(self, key: str) -> str | None:
        self._check("get", key)
        return await self.inner.get(key)

    async def set(self, key: str, value: str, ttl: int | None = None) -> None:
        self._check("set", key)
        await self.inner.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        self._check("delete", key)
        await self.inner.delete(key)

    async def get_and_delete(self, key: str) -> str | None:
        self._check("get_and_delete", key)
        return await self.inner.get_and_delete(key)

    async def increment(self, key: str, ttl: int) -> int:
        self._check("increment", key)
        return await self.inner.increment(key, ttl)


def is_session_key(key: str) -> bool:
    return not key.startswith(("active-sessions-", "verification:"))


@asynccontextmanager
async def running(
    tmp_path: Path, own_redis: OwnRedis, **options: Any
) -> AsyncIterator[tuple[Identity, httpx.AsyncClient, Flaky]]:
    """An Identity on a SQLite file with sessions in our Redis (through `Flaky`)."""
    redis = RedisStorage(own_redis.url, prefix=f"item06-{secrets.token_hex(4)}:")
    storage = Flaky(redis)
    options.setdefault("email_and_password", {"enabled": True})
    identity = Identity(
        secret=SECRET,
        base_url=BASE,
        database=f"sqlite:///{tmp_path}/identity.db",
        secondary_storage=storage,
        plugins=[bearer()],
        env={},
        **options,
    )
    await identity.migrate()
    transport = httpx.ASGITransport(app=identity.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=f"{BASE}/api/auth") as http:
            yield identity, http, storage
    finally:
        await identity.close()
        await redis.aclose()


async def rows(identity: Identity) -> dict[str, int]:
    return {model: await identity.db.count(model) for model in ("user", "account", "session")}


async def redis_keys(storage: Flaky) -> set[str]:
    prefix = storage.inner.prefix
    found = await storage.inner.client.keys(prefix + "*")
    return {key.removeprefix(prefix) for key in found}


async def sign_up(http: httpx.AsyncClient) -> str:
    """Sign Ada up; her bearer token."""
    answer = await http.post("/sign-up/email", json=ADA, headers=ORIGIN)
    assert answer.status_code == 200, answer.text
    http.cookies.clear()
    return bearer_of(answer)


async def sign_in(http: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    answer = await http.post("/sign-in/email", json={**LOGIN, "password": password}, headers=ORIGIN)
    http.cookies.clear()
    return answer


def bearer_of(answer: httpx.Response) -> str:
    return answer.headers["set-auth-token"]


async def session_of(http: httpx.AsyncClient, token: str) -> Any:
    answer = await http.get("/get-session", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_503(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "SERVICE_UNAVAILABLE"
    assert answer.headers["retry-after"].isdigit()


def on_call(number: int, picks: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    """Fail the `number`th call (1-based) that `picks` selects, and only that one."""
    seen = 0

    def fails(operation: str, key: str) -> bool:
        nonlocal seen
        if not picks(operation, key):
            return False
        seen += 1
        return seen == number

    return fails


# -- sign-up and sign-in ---------------------------------------------------------------------


@pytest.mark.parametrize("in_database", [False, True], ids=["redis", "redis+database"])
async def test_item06_sign_up_with_redis_down_leaves_no_user(
    tmp_path: Path, own_redis: OwnRedis, in_database: bool
) -> None:
    session = {"store_session_in_database": in_database}
    async with running(tmp_path, own_redis, session=session) as (identity, http, _):
        with own_redis.down():
            assert_503(await http.post("/sign-up/email", json=ADA, headers=ORIGIN))
            assert await rows(identity) == {"user": 0, "account": 0, "session": 0}
        again = await http.post("/sign-up/email", json=ADA, headers=ORIGIN)
        assert again.status_code == 200, again.text  # not 422 "user already exists"
        assert await rows(identity) == {"user": 1, "account": 1, "session": int(in_database)}


async def test_item06_sign_up_undoes_the_redis_writes_of_a_failed_step(
    tmp_path: Path, own_redis: OwnRedis
) -> None:
    """The session entry is written, the user's active-session list is not: the entry goes
    too (a session missing from that list would escape "revoke all sessions")."""
    async with running(tmp_path, own_redis) as (identity, http, storage):
        storage.fails = lambda op, key: op == "set" and key.startswith("active-sessions-")
        assert_503(await http.post("/sign-up/email", json=ADA, headers=ORIGIN))
        assert await rows(identity) == {"user": 0, "account": 0, "session": 0}
        assert await redis_keys(storage) == set()
        storage.fails = lambda op, key: False
        await sign_up(http)


async def test_item06_sign_in_with_redis_down_leaves_no_session_row(
    tmp_path: Path, own_redis: OwnRedis
) -> None:
    session = {"store_session_in_database": True}
    async with running(tmp_path, own_redis, session=session) as (identity, http, _):
        await sign_up(http)
        with own_redis.down():
            assert_503(await sign_in(http))
            assert (await rows(identity))["session"] == 1  # the sign-up's only
        assert (await sign_in(http)).status_code == 200
        assert (await rows(identity))["session"] == 2


# -- verify-email with auto sign-in ----------------------------------------------------------


async def test_item06_verify_email_verifies_and_signs_in_together(
    tmp_path: Path, own_redis: OwnRedis
) -> None:
    verification = {"auto_sign_in_after_verification": True}
    async with running(tmp_path, own_redis, email_verification=verification) as (
        identity,
        http,
        storage,
    ):
        token = await sign_up(http)
        user_id = (await session_of(http, token))["user"]["id"]
        link = identity.context.sign_jwt({"email": ADA["email"], "userId": user_id}, 3600)
        known = await redis_keys(storage)
        # The user's copy in the existing session is rewritten, then the new session fails.
        storage.fails = lambda op, key: op == "set" and is_session_key(key) and key not in known
        assert_503(await http.get("/verify-email", params={"token": link}))
        user = await identity.db.find_one("user", eq("id", user_id))
        assert user is not None and user["emailVerified"] is False
        assert (await session_of(http, token))["user"]["emailVerified"] is False

        storage.fails = lambda op, key: False
        verified = await http.get("/verify-email", params={"token": link})
        assert verified.status_code == 200, verified.text
        assert "better-auth.session_token=" in verified.headers["set-cookie"]  # signed in
        assert (await session_of(http, token))["user"]["emailVerified"] is True


# -- passwords -------------------------------------------------------------------------------


async def test_item06_reset_password_gives_the_token_back_when_it_fails(
    tmp_path: Path, own_redis: OwnRedis
) -> None:
    mailed: list[str] = []

    async def send_reset_password(link: Any, request: Any) -> None:
        mailed.append(link.token)

    options = {
        "enabled": True,
        "send_reset_password": send_reset_password,
        "revoke_sessions_on_password_reset": True,
    }
    async with running(tmp_path, own_redis, email_and_password=options) as (_, http, storage):
        await sign_up(http)
        asked = await http.post("/request-password-reset", json={"email": ADA["email"]})
        assert asked.status_code == 200, asked.text
        reset = {"token": mailed[0], "newPassword": NEW_PASSWORD}
        # The token is consumed, then revoking the sessions fails.
        storage.fails = lambda op, key: op == "delete" and is_session_key(key)
        assert_503(await http.post("/reset-password", json=reset))
        storage.fails = lambda op, key: False
        assert (await sign_in(http)).status_code == 200  # the old password still works
        done = await http.post("/reset-password", json=reset)  # the same token, again
        assert done.status_code == 200, done.text
        assert (await sign_in(http, NEW_PASSWORD)).status_code == 200


async def test_item06_change_password_keeps_the_old_one_when_the_new_session_fails(
    tmp_path: Path, own_redis: OwnRedis
) -> None:
    async with running(tmp_path, own_redis) as (_, http, storage):
        token = await sign_up(http)
        known = await redis_keys(storage)
        storage.fails = lambda op, key: op == "set" and is_session_key(key) and key not in known
        change = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
        answer = await http.post(
            "/change-password",
            json={**change, "revokeOtherSessions": True},
            headers={"authorization": f"Bearer {token}"},
        )
        assert_503(answer)
        storage.fails = lambda op, key: False
        assert (await sign_in(http)).status_code == 200
        assert (await sign_in(http, NEW_PASSWORD)).status_code == 401
        # Revocation wins: the sessions it ended before the failure stay ended.
        gone = await http.get("/get-session", headers={"authorization": f"Bearer {token}"})
        assert gone.json() is None


# -- the user --------------------------------------------------------------------------------


async def test_item06_update_user_puts_back_the_cached_copies(
    tmp_path: Path, own_redis: OwnRedis
) -> None:
    async with running(tmp_path, own_redis) as (identity, http, storage):
        first = await sign_up(http)
        second = bearer_of(await sign_in(http))
        sessions = await redis_keys(storage)
        # Both sessions hold a copy of the user: the first copy is rewritten, the second fails.
        storage.fails = on_call(
            2, lambda op, key: op == "set" and key in sessions and is_session_key(key)
        )
        answer = await http.post(
            "/update-user", json={"name": "Bea"}, headers={"authorization": f"Bearer {first}"}
        )
        assert_503(answer)
        storage.fails = lambda op, key: False
        user = await identity.db.find_one("user", eq("email", ADA["email"]))
        assert user is not None and user["name"] == "Ada"
        for token in (first, second):
            assert (await session_of(http, token))["user"]["name"] == "Ada"


async def test_item06_delete_user_deletes_everything_or_nothing(
    tmp_path: Path, own_redis: OwnRedis
) -> None:
    """A step after the deletes fails (here the application's own database hook): the
    user and the account are still there, and the deletion can be done again."""
    refuse = {"after": True}

    def after_delete(user: Any, context: Any) -> None:
        if refuse["after"]:
            raise RuntimeError("the audit log is down")

    hooks = {"user": {"delete": {"after": after_delete}}}
    options = {"delete_user": {"enabled": True}}
    async with running(tmp_path, own_redis, user=options, database_hooks=hooks) as (
        identity,
        http,
        _,
    ):
        token = await sign_up(http)
        auth = {"authorization": f"Bearer {token}"}
        failed = await http.post("/delete-user", json={"password": PASSWORD}, headers=auth)
        assert failed.status_code == 500
        assert (await rows(identity))["user"] == 1 and (await rows(identity))["account"] == 1
        refuse["after"] = False
        token = bearer_of(await sign_in(http))  # revocation won: a new session
        auth = {"authorization": f"Bearer {token}"}
        deleted = await http.post("/delete-user", json={"password": PASSWORD}, headers=auth)
        assert deleted.status_code == 200, deleted.text
        assert await rows(identity) == {"user": 0, "account": 0, "session": 0}


# -- sign-out and revocation ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/sign-out", "/revoke-sessions", "/revoke-other-sessions"])
async def test_item06_revocation_with_redis_down_is_503_and_can_be_retried(
    tmp_path: Path, own_redis: OwnRedis, path: str
) -> None:
    async with running(tmp_path, own_redis) as (_, http, _storage):
        signed_up = await http.post("/sign-up/email", json=ADA, headers=ORIGIN)
        cookie = {"cookie": signed_up.headers.get_list("set-cookie")[0].split(";")[0], **ORIGIN}
        http.cookies.clear()
        other = bearer_of(await sign_in(http))
        with own_redis.down():
            assert_503(await http.post(path, headers=cookie))
        assert await session_of(http, other) is not None  # nothing was half done
        done = await http.post(path, headers=cookie)
        assert done.status_code == 200, done.text
        if path != "/sign-out":
            assert await session_of(http, other) is None


# -- the agent server's memory on a read-only or full SQLite file ----------------------------


def pragma_on_connect(memory: Memory, statement: str) -> None:
    """Every new connection of `memory`'s database runs `statement` (a read-only or a full
    file, as SQLite reports them: "attempt to write a readonly database", "database or disk
    is full")."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()

    event.listen(memory.db.engine.sync_engine, "connect", on_connect)


USERS = {"token-ana": {"id": "ana"}}
AUTH = {"Authorization": "Bearer token-ana"}


@asynccontextmanager
async def memory_server(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Memory]]:
    memory = Memory(f"sqlite:///{tmp_path}/memory.db")
    await memory.migrate()
    helper = Agent(id="helper", name="Helper", instructions="Be brief.", model=ScriptedModel())
    app = Bastion(agents=[helper], memory=memory, auth=SimpleAuth(USERS))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            yield http, memory
    finally:
        await memory.close()


async def test_item06_memory_on_a_read_only_sqlite_file_is_503(tmp_path: Path) -> None:
    async with memory_server(tmp_path) as (http, memory):
        created = await http.post("/api/memory/threads", json={"threadId": "t1"}, headers=AUTH)
        assert created.status_code == 201, created.text
        pragma_on_connect(memory, "PRAGMA query_only = ON")
        await memory.db.engine.dispose()  # the next connection is a read-only one
        for answer in (
            await http.post("/api/memory/threads", json={"title": "x"}, headers=AUTH),
            await http.patch("/api/memory/threads/t1", json={"title": "x"}, headers=AUTH),
            await http.post(
                "/api/agents/helper/generate",
                json={"messages": "hi", "threadId": "t1"},
                headers=AUTH,
            ),
        ):
            assert answer.status_code == 503, answer.text
            assert answer.json() == {"error": "The database is unavailable"}
            assert answer.headers["retry-after"].isdigit()
        threads = await http.get("/api/memory/threads", headers=AUTH)  # reads still work
        assert [t["id"] for t in threads.json()] == ["t1"]
        messages = await http.get("/api/memory/threads/t1/messages", headers=AUTH)
        assert messages.json() == {"messages": []}


async def test_item06_memory_on_a_full_sqlite_file_is_503(tmp_path: Path) -> None:
    async with memory_server(tmp_path) as (http, memory):
        pragma_on_connect(memory, "PRAGMA max_page_count = 1")  # no page beyond those it has
        await memory.db.engine.dispose()
        answers = []
        for number in range(200):  # until the free room in the last page runs out
            answer = await http.post(
                "/api/memory/threads", json={"title": f"thread {number} " * 20}, headers=AUTH
            )
            answers.append(answer.status_code)
            if answer.status_code != 201:
                assert answer.status_code == 503, answer.text
                assert answer.json() == {"error": "The database is unavailable"}
                break
        assert answers[-1] == 503, answers
