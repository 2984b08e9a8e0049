"""IdentityAuth on PostgreSQL: the session lookup is the Identity's own (`Store.find_session`
on its direct reads): no connection beside the Identity's pool, bounded, replaced when the
server drops them, closed with the Identity (docs/identity-auth.md, "performance")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import Identity
from tests.auth.providers.identity_support import Credentials, request, sign_up
from tests.identity.conftest import running
from tests.services import scratch_database


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with scratch_database("postgresql") as url:
        yield url


async def backends(identity: Identity) -> int:
    """The connections to this database other than the one asking."""
    async with identity.db.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        return int(found.scalar_one())


async def settled_backends(identity: Identity, expected: int) -> int:
    """`backends`, once it reaches `expected` (a closed connection's server process takes a
    moment to leave pg_stat_activity), or after 5 s."""
    for _ in range(100):
        found = await backends(identity)
        if found == expected:
            break
        await asyncio.sleep(0.05)
    return found


async def terminate_backends(identity: Identity) -> None:
    async with identity.db.connect() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )


async def everyone(auth: IdentityAuth, people: list[Credentials]) -> list[str | None]:
    results = await asyncio.gather(
        *(auth.authenticate_token(person.raw, request()) for person in people)
    )
    return [None if user is None else user["user"]["id"] for user in results]


async def test_concurrent_checks_use_the_identitys_own_connections(postgres_url: str) -> None:
    async with running(postgres_url) as (identity, client):
        people = [await sign_up(client, f"user{i}@example.com") for i in range(5)] * 10
        auth = IdentityAuth(identity)
        assert await everyone(auth, people) == [p.user_id for p in people]
        # 50 concurrent checks, within the Identity's pool (20 connections): no pool beside it.
        assert 1 <= await backends(identity) <= 20
        await auth.aclose()
        # The provider held nothing of its own: the connections are the Identity's, and they
        # serve it after the provider is closed.
        assert await everyone(IdentityAuth(identity), people[:5]) == [p.user_id for p in people[:5]]


async def test_connections_dropped_by_the_server_are_replaced(postgres_url: str) -> None:
    async with running(postgres_url) as (identity, client):
        people = [await sign_up(client, f"user{i}@example.com") for i in range(3)] * 4
        auth = IdentityAuth(identity)
        try:
            assert None not in await everyone(auth, people)
            await terminate_backends(identity)  # a restart, a proxy's idle timeout
            assert await settled_backends(identity, 0) == 0  # they are gone
            assert await everyone(auth, people) == [p.user_id for p in people]
        finally:
            await auth.aclose()


async def test_closing_the_identity_closes_every_connection(postgres_url: str) -> None:
    async with running(postgres_url) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        assert await auth.authenticate_token(ada.raw, request()) is not None
        await identity.close()
        assert await settled_backends(identity, 0) == 0
        # Used again, it opens new ones (as the engine does).
        assert (await auth.authenticate_token(ada.raw, request()))["user"]["id"] == ada.user_id
        await identity.close()
        assert await settled_backends(identity, 0) == 0
