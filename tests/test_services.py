"""The tests' scratch databases (tests/services.py): made once, emptied for each test, and
tried again after a service came back."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services import MYSQL_URL, POSTGRES_URL, Outages, ScratchDatabases

if TYPE_CHECKING:  # imported by pytest_plugins, so that pytest rewrites its asserts
    from tests.own_services import OwnPostgres

pytest_plugins = ["tests.own_services"]  # the own_postgres fixture

# What service_missing() raises: a skip, or a failure with $BASTION_REQUIRE_SERVICES.
MISSING = (pytest.skip.Exception, pytest.fail.Exception)
ADMIN_URLS = {"postgresql": POSTGRES_URL, "mysql": MYSQL_URL}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _async_url(url: str) -> str:
    driver = "postgresql+asyncpg" if url.startswith("postgresql") else "mysql+asyncmy"
    return driver + url[url.index(":") :]


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(_async_url(url))
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _create_table(url: str, name: str) -> None:
    engine = create_async_engine(_async_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)"))
            await conn.execute(sa.text(f"INSERT INTO {name} (id) VALUES (1)"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
async def test_a_database_is_reused_empty_and_each_holder_has_its_own(kind: str) -> None:
    scratch = ScratchDatabases(kind, ADMIN_URLS[kind])
    try:
        async with scratch.database() as first:
            await _create_table(first, "left_behind")
            async with scratch.database() as second:  # held at the same time: another one
                assert second != first
                assert await _tables(second) == set()
        async with scratch.database() as again:
            assert again in (first, second)  # no new database
            assert await _tables(again) == set()
            await _create_table(again, "left_behind")  # the name is free again
    finally:
        await scratch.drop_all()


async def test_a_restarted_server_gives_scratch_databases_again(own_postgres: OwnPostgres) -> None:
    """A service that went away is taken as down for a few seconds (its tests skip at once),
    then tried again: after a restart, the next test gets a database."""
    clock = Clock()
    scratch = ScratchDatabases("postgresql", own_postgres.url(), Outages(5.0, clock))
    try:
        async with scratch.database() as url:
            await _create_table(url, "before_the_restart")
        with own_postgres.down(), pytest.raises(MISSING, match="needs PostgreSQL"):
            async with scratch.database():
                pass
        # Running again, but it failed a moment ago: still taken as down, without a try.
        clock.now += 4.0
        with pytest.raises(MISSING, match="needs PostgreSQL"):
            async with scratch.database():
                pass
        clock.now += 1.0
        async with scratch.database() as url:
            assert await _tables(url) == set()
            await _create_table(url, "after_the_restart")
    finally:
        await scratch.drop_all()


async def test_a_database_still_in_use_is_set_aside_not_waited_for() -> None:
    """A test that left a transaction open holds locks: the next test gets another database
    instead of waiting for them (or failing)."""
    import asyncpg

    scratch = ScratchDatabases("postgresql", POSTGRES_URL, lock_timeout=1)
    holder: asyncpg.Connection | None = None
    try:
        async with scratch.database() as first:
            await _create_table(first, "locked")
            parsed = sa.make_url(first)
            holder = await asyncpg.connect(
                host=parsed.host, port=parsed.port, user=parsed.username, database=parsed.database
            )
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("LOCK TABLE locked IN ACCESS SHARE MODE")
        async with scratch.database() as second:
            assert second != first
            assert await _tables(second) == set()
    finally:
        if holder is not None:
            await asyncio.wait_for(holder.close(), 10)
        await scratch.drop_all()
