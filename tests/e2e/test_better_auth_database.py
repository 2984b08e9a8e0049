"""A database made by TypeScript better-auth 1.7 is Bastion's database too, and back."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bastion.identity.db import Database, eq, migrate, plan_migration
from tests.e2e.node_peer import better_auth

pytestmark = pytest.mark.e2e


async def test_better_auth_migrated_database_is_up_to_date_for_us(database_url: str) -> None:
    created = better_auth("migrate", database_url)
    assert created["created"] == ["user", "session", "account", "verification"]
    async with Database(database_url) as db:
        plan = await plan_migration(db)
        assert plan.statements == [] and plan.unsafe == []
        assert plan.warnings == []
        assert plan.summary() == "Nothing to do: the database is up to date."


async def test_our_migrated_database_is_up_to_date_for_better_auth(database_url: str) -> None:
    async with Database(database_url) as db:
        await migrate(db)
    assert better_auth("migrate", database_url) == {"created": [], "added": []}


async def test_rows_written_by_better_auth_read_back_exactly(database_url: str) -> None:
    better_auth("migrate", database_url)
    seeded = better_auth("seed", database_url, EMAIL="ada@example.com", NAME="Ada")
    written = seeded["user"]
    async with Database(database_url) as db:
        user = await db.find_one("user", eq("email", "ada@example.com"))
        assert user is not None
        assert user["id"] == written["id"]
        assert user["name"] == "Ada"
        assert user["emailVerified"] is False
        for key in ("createdAt", "updatedAt"):  # JS Date.toISOString() == our datetime
            assert user[key] == datetime.fromisoformat(written[key])
            assert user[key].tzinfo is UTC

        session = await db.find_one("session", eq("token", seeded["token"]))
        assert session is not None and session["userId"] == user["id"]
        assert session["expiresAt"] > datetime.now(UTC)

        account = await db.find_one("account", eq("userId", user["id"]))
        assert account is not None
        assert account["providerId"] == "credential" and account["accountId"] == user["id"]
        assert re.fullmatch(r"[0-9a-f]{32}:[0-9a-f]{128}", account["password"])

        # And what we write, better-auth finds: a second user through our adapter is counted.
        await db.create("user", {"name": "Bob", "email": "bob@example.com"})
        assert await db.count("user") == 2
