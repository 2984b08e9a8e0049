"""The database services the tests run against, and scratch databases on them.

PostgreSQL and MariaDB/MySQL are found at $BASTION_TEST_POSTGRES_URL and
$BASTION_TEST_MYSQL_URL (defaults: the local services). A test that needs one skips, naming
it, when it does not answer — unless $BASTION_REQUIRE_SERVICES is set (CI sets it), where a
missing service fails the test instead.

Creating a database costs ~0.7 s on PostgreSQL (a checkpoint), so scratch databases are made
once per test session and emptied for each next test (its tables dropped) — each test still
starts on an empty database of its own. `drop_scratch_databases()` drops them at the end of
the session (tests/conftest.py). A service that did not answer is taken as down for
`DOWN_FOR` seconds — its tests skip at once instead of each waiting for a connection — and
then tried again, so a restart in the middle of the suite fails only the tests that ran
during it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "BASTION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("BASTION_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("BASTION_REQUIRE_SERVICES", "") not in ("", "0")

SERVICE_NAMES = {"postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL", "redis": "Redis"}
DOWN_FOR = 5.0
"""Seconds a service that did not answer is taken as down before it is tried again."""

# A leftover lock (a connection a test did not close, inside a transaction) must not hang the
# next test's clean-up: past this many seconds, the database is set aside and a new one made.
LOCK_TIMEOUT = 5


def service_missing(kind: str, reason: str) -> None:
    """Skip (or, in CI, fail) because a service is not there."""
    message = f"needs {SERVICE_NAMES.get(kind, kind)}: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " ($BASTION_REQUIRE_SERVICES is set)", pytrace=False)
    pytest.skip(message)


class Outages:
    """What did not answer lately: `kind` → (when, why), forgotten after `down_for` s."""

    def __init__(
        self, down_for: float = DOWN_FOR, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.down_for = down_for
        self.clock = clock
        self._down: dict[str, tuple[float, str]] = {}

    def check(self, kind: str) -> None:
        """Skip (or fail) at once when `kind` failed less than `down_for` seconds ago."""
        noted = self._down.get(kind)
        if noted is None:
            return
        when, reason = noted
        if self.clock() - when < self.down_for:
            service_missing(kind, reason)
        del self._down[kind]  # time to try again

    def failed(self, kind: str, exc: BaseException) -> None:
        """Note that `kind` did not answer, then skip (or fail)."""
        self._down[kind] = (self.clock(), str(exc))
        service_missing(kind, str(exc))


class ScratchDatabases:
    """Scratch databases on one PostgreSQL or MariaDB/MySQL server, `admin_url` naming a
    database to connect to for CREATE/DROP DATABASE. Made when first needed and reused: each
    is emptied before it is handed out again, and dropped by `drop_all()`."""

    def __init__(
        self,
        kind: str,
        admin_url: str,
        outages: Outages | None = None,
        *,
        lock_timeout: int = LOCK_TIMEOUT,
    ) -> None:
        if kind not in ("postgresql", "mysql"):
            raise ValueError(f"no scratch databases on {kind!r}")
        self.kind = kind
        self.lock_timeout = lock_timeout
        self.admin_url = admin_url
        self.outages = outages or Outages()
        self._made: set[str] = set()  # every database made: what drop_all() drops
        self._free: list[str] = []  # back from their tests; emptied when handed out again

    @asynccontextmanager
    async def database(self) -> AsyncIterator[str]:
        """An empty database of the test's own; its URL."""
        self.outages.check(self.kind)
        try:
            name = await self._acquire()
        except Exception as exc:  # any driver's "cannot connect": the service is not usable
            self.outages.failed(self.kind, exc)
            raise  # not reached: failed() skips or fails the test
        try:
            yield self._url(name)
        finally:
            self._free.append(name)

    async def drop_all(self) -> None:
        """Drop every database this made; one that cannot be dropped now is left."""
        quote = self._quote
        # PostgreSQL ends the connections a test left open (FORCE, from version 13 on).
        force = " WITH (FORCE)" if self.kind == "postgresql" else ""
        for name in sorted(self._made):
            drop = f"DROP DATABASE IF EXISTS {quote}{name}{quote}"
            with contextlib.suppress(Exception):
                try:
                    await self._execute(self.admin_url, drop + force)
                except Exception:
                    await self._execute(self.admin_url, drop)
        self._made.clear()
        self._free.clear()

    async def _acquire(self) -> str:
        while self._free:
            name = self._free.pop()
            try:
                await self._empty(name)
            except Exception:
                continue  # still held, or the server went away: making one tells which
            return name
        name = f"bastion_t_{secrets.token_hex(6)}"
        await self._execute(self.admin_url, f"CREATE DATABASE {self._quote}{name}{self._quote}")
        self._made.add(name)
        return name

    async def _empty(self, name: str) -> None:
        """Drop everything a test left in database `name`."""
        if self.kind == "postgresql":
            await self._execute(
                self._url(name),
                f"SET lock_timeout = '{self.lock_timeout}s';"
                " DROP SCHEMA public CASCADE; CREATE SCHEMA public",
            )
            return
        async with self._mysql(self.admin_url) as conn, conn.cursor() as cursor:
            await cursor.execute(f"SET SESSION lock_wait_timeout = {self.lock_timeout}")
            await cursor.execute(
                "SELECT table_name, table_type FROM information_schema.tables"
                " WHERE table_schema = %s",
                (name,),
            )
            rows = await cursor.fetchall()
            tables = [f"`{name}`.`{t}`" for t, kind in rows if kind != "VIEW"]
            views = [f"`{name}`.`{t}`" for t, kind in rows if kind == "VIEW"]
            if views:
                await cursor.execute(f"DROP VIEW IF EXISTS {', '.join(views)}")
            if tables:
                await cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
                await cursor.execute(f"DROP TABLE IF EXISTS {', '.join(tables)}")

    @property
    def _quote(self) -> str:
        return '"' if self.kind == "postgresql" else "`"

    def _url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    async def _execute(self, url: str, statement: str) -> None:
        if self.kind == "postgresql":
            import asyncpg

            parsed = make_url(url)
            conn = await asyncpg.connect(
                host=parsed.host,
                port=parsed.port or 5432,
                user=parsed.username,
                password=parsed.password,
                database=parsed.database,
                timeout=5,
            )
            try:
                await conn.execute(statement)
            finally:
                await conn.close()
            return
        async with self._mysql(url) as conn, conn.cursor() as cursor:
            await cursor.execute(statement)

    @asynccontextmanager
    async def _mysql(self, url: str) -> AsyncIterator[Any]:
        import asyncmy

        parsed = make_url(url)
        conn = await asyncmy.connect(
            host=parsed.host,
            port=parsed.port or 3306,
            user=parsed.username or "root",
            password=parsed.password or "",
            database=parsed.database,
            connect_timeout=5,
        )
        try:
            yield conn
        finally:
            conn.close()


_outages = Outages()
_scratch = {
    "postgresql": ScratchDatabases("postgresql", POSTGRES_URL, _outages),
    "mysql": ScratchDatabases("mysql", MYSQL_URL, _outages),
}


@asynccontextmanager
async def scratch_database(kind: str) -> AsyncIterator[str]:
    """An empty database on the `kind` service for one test, of its own while it runs.

    For "sqlite" a file in a temporary folder, as the default deployment uses.
    """
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bastion-test-") as folder:
            yield f"sqlite:///{folder}/test.db"
        return
    async with _scratch[kind].database() as url:
        yield url


async def drop_scratch_databases() -> None:
    """Drop the scratch databases of this session (at its end)."""
    for databases in _scratch.values():
        await databases.drop_all()


async def redis_url_or_skip() -> str:
    """$BASTION_TEST_REDIS_URL (default: the local Redis, database 15) if Redis answers
    there; else skip, naming it (or, with $BASTION_REQUIRE_SERVICES, fail).

    Tests share that database: each keeps to keys under its own random prefix.
    """
    _outages.check("redis")
    try:
        import redis.asyncio

        client = redis.asyncio.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            await client.ping()
        finally:
            await client.aclose()
    except Exception as exc:  # not installed, refused, timed out, auth: not usable
        _outages.failed("redis", exc)
    return REDIS_URL
