"""The database services the tests run against, and scratch databases on them.

PostgreSQL and MariaDB/MySQL are found at $BASTION_TEST_POSTGRES_URL and
$BASTION_TEST_MYSQL_URL (defaults: the local services). A test that needs one skips, naming
it, when it does not answer — unless $BASTION_REQUIRE_SERVICES is set (CI sets it), where a
missing service fails the test instead.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "BASTION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("BASTION_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("BASTION_REQUIRE_SERVICES", "") not in ("", "0")

SERVICE_NAMES = {"postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL", "redis": "Redis"}
_down: dict[str, str] = {}


def service_missing(kind: str, reason: str) -> None:
    """Skip (or, in CI, fail) because a service is not there."""
    message = f"needs {SERVICE_NAMES.get(kind, kind)}: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " ($BASTION_REQUIRE_SERVICES is set)", pytrace=False)
    pytest.skip(message)


async def _admin_execute(kind: str, statement: str) -> None:
    if kind == "postgresql":
        import asyncpg

        url = make_url(POSTGRES_URL)
        conn = await asyncpg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database,
            timeout=5,
        )
        try:
            await conn.execute(statement)
        finally:
            await conn.close()
    else:
        import asyncmy

        url = make_url(MYSQL_URL)
        conn = await asyncmy.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username or "root",
            password=url.password or "",
            database=url.database,
            connect_timeout=5,
        )
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(statement)
        finally:
            conn.close()


@asynccontextmanager
async def scratch_database(kind: str) -> AsyncIterator[str]:
    """A new, empty database on the `kind` service for one test; dropped afterwards.

    For "sqlite" a file in a temporary folder, as the default deployment uses.
    """
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bastion-test-") as folder:
            yield f"sqlite:///{folder}/test.db"
        return
    if kind in _down:
        service_missing(kind, _down[kind])
    name = f"bastion_t_{secrets.token_hex(6)}"
    quote = '"' if kind == "postgresql" else "`"
    try:
        await _admin_execute(kind, f"CREATE DATABASE {quote}{name}{quote}")
    except Exception as exc:  # any driver's "cannot connect": the service is not usable
        _down[kind] = f"{exc}"
        service_missing(kind, str(exc))
    base = make_url(POSTGRES_URL if kind == "postgresql" else MYSQL_URL)
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin_execute(kind, f"DROP DATABASE IF EXISTS {quote}{name}{quote}")


async def redis_url_or_skip() -> str:
    """$BASTION_TEST_REDIS_URL (default: the local Redis, database 15) if Redis answers
    there; else skip, naming it (or, with $BASTION_REQUIRE_SERVICES, fail).

    Tests share that database: each keeps to keys under its own random prefix.
    """
    if "redis" in _down:
        service_missing("redis", _down["redis"])
    try:
        import redis.asyncio

        client = redis.asyncio.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            await client.ping()
        finally:
            await client.aclose()
    except Exception as exc:  # not installed, refused, timed out, auth: not usable
        _down["redis"] = f"{exc}"
        service_missing("redis", str(exc))
    return REDIS_URL
