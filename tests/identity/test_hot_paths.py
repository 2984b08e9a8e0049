"""The shortcuts of the get-session and sign-in hot paths (docs/benchmarks.md) answer exactly
what the long way answers: statements reused per shape, direct reads on PostgreSQL, verified
cookie values remembered, dates written, hash threads' priority."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from bastion.identity import _session_cookies, crypto
from bastion.identity.crypto import PasswordHasher
from bastion.identity.db import (
    CORE_SCHEMA,
    Database,
    DatabaseUnavailable,
    Field,
    TableSpec,
    contains,
    eq,
    gt,
    in_,
    migrate,
    ne,
)
from bastion.identity.db.types import format_iso
from bastion.identity.endpoint import dump_json
from tests.identity.conftest import MakeIdentity
from tests.identity.sessionkit import DATA_NAME, Browser, Clock, get_session, serve, sign_up

SCHEMA = CORE_SCHEMA.extend(
    {
        "note": TableSpec(
            fields={
                "title": Field(type="string"),
                "count": Field(type="number", required=False),
                "data": Field(type="json", required=False),
                "flag": Field(type="boolean", required=False),
                "at": Field(type="date", required=False),
            }
        )
    }
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url, schema=SCHEMA) as database:
        await migrate(database)
        yield database


async def titles(db: Database, where: Any) -> list[str]:
    return [r["title"] for r in await db.find_many("note", where, order_by="title")]


async def test_one_shape_many_values(db: Database) -> None:
    """A statement built for one shape binds each call's values, and shapes whose SQL
    differs (IS NULL, a boolean literal, IN, LIKE) never share one."""
    at = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    await db.create("note", {"title": "a", "count": 1, "flag": True, "at": at})
    await db.create("note", {"title": "b", "count": 2, "flag": False, "data": {"k": [1]}})
    await db.create("note", {"title": "c", "count": None, "flag": None})
    for _ in range(2):  # the second round runs on the statements the first one built
        assert await titles(db, eq("title", "a")) == ["a"]
        assert await titles(db, eq("title", "b")) == ["b"]
        assert await titles(db, eq("count", None)) == ["c"]
        assert await titles(db, ne("count", None)) == ["a", "b"]
        assert await titles(db, eq("flag", True)) == ["a"]
        assert await titles(db, eq("flag", False)) == ["b"]
        assert await titles(db, gt("count", 1)) == ["b"]
        assert await titles(db, gt("count", 0)) == ["a", "b"]
        assert await titles(db, in_("title", ["a", "c"])) == ["a", "c"]
        assert await titles(db, in_("title", [])) == []
        assert await titles(db, contains("title", "b")) == ["b"]
        assert await titles(db, {"title": "a", "count": 1}) == ["a"]
        assert await titles(db, {"title": "a", "count": 2}) == []
        assert await titles(db, eq("at", at)) == ["a"]
        assert await titles(db, eq("at", at + timedelta(milliseconds=1))) == []
        assert await db.count("note", gt("count", 0)) == 2
        assert await db.count("note", gt("count", 1)) == 1
        found = await db.find_one("note", eq("title", "b"))
        assert found is not None and found["data"] == {"k": [1]} and found["flag"] is False


async def test_reads_inside_and_outside_a_transaction_agree(db: Database) -> None:
    user = await db.create("user", {"name": "Ada", "email": "ada@example.com"})
    await db.create(
        "session", {"token": "t" * 32, "userId": user["id"], "expiresAt": user["createdAt"]}
    )
    outside = await db.find_one_with_reference("session", eq("token", "t" * 32), "userId")
    async with db.transaction() as tx:
        inside = await tx.find_one_with_reference("session", eq("token", "t" * 32), "userId")
    assert outside == inside and outside is not None
    assert outside[1] == user
    assert await db.find_one_with_reference("session", eq("token", "x" * 32), "userId") is None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_read_survives_the_server_dropping_its_connections(db: Database) -> None:
    """Direct reads (PostgreSQL): connections the server ended are replaced, and the read
    that met one is tried again on a new connection instead of failing."""
    await db.create("note", {"title": "a"})
    assert await titles(db, eq("title", "a")) == ["a"]
    async with db.connect() as conn:
        ended = await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        assert any(row[0] for row in ended)  # the reads' connection was among them
        await conn.commit()
    assert await titles(db, eq("title", "a")) == ["a"]
    assert await titles(db, eq("title", "a")) == ["a"]


async def _backends(db: Database, *, waiting_on_a_lock: bool = False) -> set[int]:
    """The database's other server processes: one per open connection (or those waiting for
    a lock)."""
    waiting = " AND wait_event_type = 'Lock'" if waiting_on_a_lock else ""
    async with db.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()" + waiting
            )
        )
        return {row[0] for row in found}


async def _until(condition: Any, within: float = 10.0) -> None:
    """Wait until `condition()` (async) is true: what PostgreSQL does on its own time (a
    backend starts waiting, an ended one leaves pg_stat_activity)."""
    async with asyncio.timeout(within):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.01)  # polled: PostgreSQL has nothing to wait on


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_cancelled_read_ends_its_own_connection_only(db: Database) -> None:
    """A client that hangs up cancels its read: that connection is ended (its state is
    unknown), the others stay, and the next read works."""
    await db.create("note", {"title": "a"})
    # Two reads at once: two connections for direct reads, both idle afterwards.
    await asyncio.gather(titles(db, eq("title", "a")), titles(db, eq("title", "a")))
    before = await _backends(db)
    async with db.connect() as conn:
        await conn.execute(text("LOCK TABLE note IN ACCESS EXCLUSIVE MODE"))  # reads wait
        read = asyncio.create_task(titles(db, eq("title", "a")))

        async def read_waits() -> bool:
            return bool(await _backends(db, waiting_on_a_lock=True))

        await _until(read_waits)
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        await conn.rollback()
    assert await titles(db, eq("title", "a")) == ["a"]

    async def one_ended() -> bool:
        return len(before - await _backends(db)) >= 1

    await _until(one_ended)
    assert len(before - await _backends(db)) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_direct_read_of_a_missing_table_says_to_migrate(database_url: str) -> None:
    async with Database(database_url, schema=SCHEMA) as fresh:
        with pytest.raises(Exception, match="run `bastion migrate`") as raised:
            await fresh.find_one("note", eq("title", "a"))
        assert not isinstance(raised.value, DatabaseUnavailable)


# -- the cookie cache, remembered ------------------------------------------------------------

CACHE = {"cookie_cache": {"enabled": True, "max_age": 60}}


async def test_a_remembered_cookie_cache_still_expires(make_identity: MakeIdentity) -> None:
    """S16: a session_data value that verified once is not trusted past its own expiresAt,
    nor once its session was revoked and the request asks storage."""
    clock = Clock()
    async with serve(make_identity, clock=clock, session=CACHE) as (identity, client):
        browser = Browser()
        await sign_up(client, browser)
        first = await get_session(client, browser)
        again = await get_session(client, browser)
        assert first.json() == again.json() and first.json() is not None
        assert DATA_NAME not in again.headers.get("set-cookie", "")  # answered from the cache
        await identity.store.db.delete_many("session", {})
        # Within the cache's lifetime a read trusts it (as better-auth does) ...
        assert (await get_session(client, browser)).json() is not None
        # ... but not a moment after its expiresAt, remembered or not.
        clock.advance(seconds=61)
        late = await get_session(client, browser)
        assert late.json() is None


async def test_a_tampered_cookie_cache_is_refused_after_the_genuine_one_was_read(
    make_identity: MakeIdentity,
) -> None:
    async with serve(make_identity, session=CACHE) as (_, client):
        browser = Browser()
        await sign_up(client, browser)
        assert (await get_session(client, browser)).json() is not None
        value = browser.jar[DATA_NAME]
        browser.jar[DATA_NAME] = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
        answer = await get_session(client, browser)
        # Refused as a cache: get-session goes to storage and writes a fresh cache cookie.
        assert answer.json() is not None
        lines = answer.headers.get_list("set-cookie")
        assert any(line.startswith(f"{DATA_NAME}=") and "Max-Age=0" not in line for line in lines)
        assert not any(line.startswith(f"{DATA_NAME}={value};") for line in lines)


async def test_a_remembered_cookie_header_ends_with_its_session(
    make_identity: MakeIdentity,
) -> None:
    """A Cookie header remembered with its verified cache is trusted until the cache expires
    or its session does, whichever is sooner: here the session (an hour) ends before its
    cache (two hours)."""
    clock = Clock()
    session = {"expires_in": 3600, "cookie_cache": {"enabled": True, "max_age": 7200}}
    async with serve(make_identity, clock=clock, session=session) as (identity, client):
        browser = Browser()
        await sign_up(client, browser)
        assert (await get_session(client, browser)).json() is not None
        await identity.store.db.delete_many("session", {})
        clock.advance(minutes=59)
        assert (await get_session(client, browser)).json() is not None  # still the cache
        clock.advance(minutes=2)
        assert (await get_session(client, browser)).json() is None


async def test_more_cookie_headers_than_are_remembered_each_get_their_own_session(
    make_identity: MakeIdentity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the memo's bound the oldest header is dropped and verified afresh when it comes
    back: never answered with another client's session."""
    monkeypatch.setattr(_session_cookies, "_HEADER_MEMO_SIZE", 2)
    async with serve(make_identity, session=CACHE) as (_, client):
        browsers = {}
        for name in ("a", "b", "c", "d"):
            browsers[name] = Browser()
            await sign_up(client, browsers[name], email=f"{name}@example.com", name=name)
        for _ in range(3):
            for name, browser in browsers.items():
                answer = await get_session(client, browser)
                assert answer.json()["user"]["email"] == f"{name}@example.com"
                assert DATA_NAME not in answer.headers.get("set-cookie", "")  # the cache


# -- dates, requests, hashing ------------------------------------------------------------------


def _to_iso_string(value: datetime) -> str:
    """JavaScript's Date.prototype.toISOString, written out by hand."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


def test_dates_are_written_as_javascript_writes_them() -> None:
    rng = random.Random(7)
    zones = [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    values = []
    for _ in range(5000):
        value = datetime(
            rng.randint(1, 9998),
            rng.randint(1, 12),
            rng.randint(1, 28),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            rng.randint(0, 999_999),
            rng.choice(zones),
        )
        assert format_iso(value) == _to_iso_string(value), value
        values.append(value)
    # The answers' writer remembers the text of each date it wrote: more dates than it keeps,
    # twice, and the same instant in other zones, are still each written as their own.
    expected = [_to_iso_string(value) for value in values]
    for _ in range(2):
        assert orjson.loads(dump_json(values)) == expected
    instant = datetime(2030, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    for zone in zones[1:]:
        assert dump_json(instant.astimezone(zone)) == b'"2030-05-06T07:08:09.123Z"'


async def test_a_get_declaring_a_huge_body_is_still_413(make_identity: MakeIdentity) -> None:
    """Only a request with neither Content-Length nor Transfer-Encoding skips reading the
    body (HTTP/1.x has none then)."""
    async with make_identity() as (identity, _):
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/api/auth/get-session",
            "query_string": b"",
            "headers": [(b"host", b"localhost:3000"), (b"content-length", b"99999999")],
            "client": ("127.0.0.1", 1234),
        }
        await identity.app(scope, receive, send)
        assert sent[0]["status"] == 413


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
async def test_hash_threads_run_at_a_lower_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    """So that a burst of sign-ins does not take the event loop's CPU (docs/benchmarks.md)."""
    seen: list[int] = []
    real = crypto._scrypt

    def spy(password: str, salt: str) -> bytes:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return real(password, salt)

    monkeypatch.setattr(crypto, "_scrypt", spy)
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    await PasswordHasher(max_concurrency=2).hash("correct-horse-battery")
    assert seen == [min(19, base + 10)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # not the loop's


@pytest.mark.parametrize("cookie_cache", [False, True])
async def test_answers_are_written_as_json_stringify_writes_them(
    make_identity: MakeIdentity, cookie_cache: bool
) -> None:
    """Non-ASCII as UTF-8 and dates as toISOString, from storage and from the cookie
    cache."""
    options = {"session": {"cookie_cache": {"enabled": cookie_cache}}}
    async with serve(make_identity, **options) as (_, client):
        browser = Browser()
        await sign_up(client, browser, name="Zoë 日本 😀")
        answer = await get_session(client, browser)
        assert '"name":"Zoë 日本 😀"'.encode() in answer.content
        created = answer.json()["user"]["createdAt"]
        assert created == format_iso(datetime.fromisoformat(created))
