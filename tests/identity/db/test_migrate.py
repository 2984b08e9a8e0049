"""The migrator: creates what is missing, never drops or rewrites, refuses what is unsafe."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bastion.identity.db import (
    ACCOUNT_ISSUER,
    CORE_SCHEMA,
    NOW,
    Database,
    Field,
    TableSpec,
    UnsafeMigration,
    migrate,
    plan_migration,
)
from tests.identity.db.plugin_schemas import ADMIN, TWO_FACTOR, USERNAME


async def tables(db: Database) -> set[str]:
    async with db.connect() as conn:
        return set(await conn.run_sync(lambda c: c.dialect.get_table_names(c)))


async def test_creates_the_core_tables_then_has_nothing_to_do(database_url: str) -> None:
    async with Database(database_url) as db:
        plan = await migrate(db)
        assert plan.created_tables == ["user", "session", "account", "verification"]
        assert {"user", "session", "account", "verification"} <= await tables(db)
        again = await plan_migration(db)
        assert again.empty and again.statements == [] and again.warnings == []
        assert again.summary() == "Nothing to do: the database is up to date."


async def test_plan_runs_nothing(database_url: str) -> None:
    async with Database(database_url) as db:
        plan = await plan_migration(db)
        assert any(s.upper().startswith("CREATE TABLE") for s in plan.statements)
        assert await tables(db) == set()


async def test_plugin_columns_and_tables_are_added_to_a_populated_database(
    database_url: str,
) -> None:
    async with Database(database_url) as db:
        await migrate(db)
        user = await db.create("user", {"name": "Ada", "email": "ada@example.com"})
    schema = CORE_SCHEMA.extend(TWO_FACTOR).extend(USERNAME).extend(ADMIN)
    async with Database(database_url, schema=schema) as db:
        plan = await migrate(db)
        assert plan.created_tables == ["twoFactor"]
        assert plan.added_columns == [
            "user.twoFactorEnabled",
            "user.username",
            "user.displayUsername",
            "user.role",
            "user.banned",
            "user.banReason",
            "user.banExpires",
            "session.impersonatedBy",
        ]
        assert "user_username_uidx" in plan.created_indexes  # unique, added after the column
        assert (await plan_migration(db)).empty
        row = await db.find_one("user", {"id": user["id"]})
        assert row is not None and row["email"] == "ada@example.com" and row["username"] is None
        await db.update("user", {"id": user["id"]}, {"username": "ada"})
        other = await db.create("user", {"name": "B", "email": "b@example.com"})
        from bastion.identity.db import UniqueViolation

        with pytest.raises(UniqueViolation):
            await db.update("user", {"id": other["id"]}, {"username": "ada"})


async def test_required_column_with_a_default_fills_existing_rows(database_url: str) -> None:
    async with Database(database_url) as db:
        await migrate(db)
        user = await db.create("user", {"name": "Ada", "email": "ada@example.com"})
    schema = CORE_SCHEMA.extend(
        {
            "user": TableSpec(
                fields={
                    "plan": Field(type="string", default="free"),
                    "seats": Field(type="number", default=3),
                    "active": Field(type="boolean", default=True),
                    "joinedAt": Field(type="date", default=NOW),
                }
            )
        }
    )
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    async with Database(database_url, schema=schema) as db:
        await migrate(db, now=lambda: moment)
        row = await db.find_one("user", {"id": user["id"]})
        assert row is not None
        assert (row["plan"], row["seats"], row["active"]) == ("free", 3, True)
        assert row["joinedAt"] is not None
        if db.dialect == "sqlite":  # a literal: SQLite cannot default to CURRENT_TIMESTAMP here
            assert row["joinedAt"] == moment
        assert (await plan_migration(db)).empty


async def test_required_column_without_default_on_a_table_with_rows_is_refused(
    database_url: str,
) -> None:
    async with Database(database_url) as db:
        await migrate(db)
        await db.create("user", {"name": "Ada", "email": "ada@example.com"})
    schema = CORE_SCHEMA.extend(
        {
            "user": TableSpec(fields={"tenant": Field(type="string")}),
            "audit": TableSpec(fields={"what": Field(type="string")}),
        }
    )
    async with Database(database_url, schema=schema) as db:
        plan = await plan_migration(db)
        assert plan.unsafe and "user.tenant" in plan.unsafe[0] and "has rows" in plan.unsafe[0]
        with pytest.raises(UnsafeMigration, match=r"user\.tenant"):
            await migrate(db)
        assert "audit" not in await tables(db)  # nothing at all was applied


async def test_required_column_without_default_on_an_empty_table(database_url: str) -> None:
    async with Database(database_url) as db:
        await migrate(db)
    schema = CORE_SCHEMA.extend({"user": TableSpec(fields={"tenant": Field(type="string")})})
    async with Database(database_url, schema=schema) as db:
        if db.dialect == "sqlite":
            with pytest.raises(UnsafeMigration, match="SQLite"):
                await migrate(db)
        else:
            await migrate(db)
            assert (await plan_migration(db)).empty


async def test_never_drops_or_rewrites(database_url: str) -> None:
    async with Database(database_url) as db:
        await migrate(db)
        async with db.connect() as conn:
            quote = "`" if db.dialect == "mysql" else '"'
            await conn.exec_driver_sql(f"CREATE TABLE {quote}mine{quote} (x integer)")
            await conn.exec_driver_sql(f"ALTER TABLE {quote}user{quote} ADD COLUMN extra text")
            await conn.commit()
        plan = await migrate(db)
        assert plan.empty
        assert "mine" in await tables(db)
        user = await db.create("user", {"name": "Ada", "email": "ada@example.com"})
        assert "extra" not in user  # unknown to the schema, left alone


async def test_issuer_cannot_be_added_to_accounts_that_exist(database_url: str) -> None:
    """better-auth 1.7.0-1.7.2's required account.issuer, on a database with accounts."""
    async with Database(database_url) as db:
        await migrate(db)
        user = await db.create("user", {"name": "Ada", "email": "ada@example.com"})
        await db.create(
            "account", {"accountId": user["id"], "providerId": "credential", "userId": user["id"]}
        )
    async with Database(database_url, schema=CORE_SCHEMA.extend(ACCOUNT_ISSUER)) as db:
        with pytest.raises(UnsafeMigration, match=r"account\.issuer: the table has rows"):
            await migrate(db)


async def test_a_better_auth_1_7_2_database_is_flagged(database_url: str) -> None:
    """Its NOT NULL issuer would refuse our inserts: the plan says so and what to do."""
    async with Database(database_url, schema=CORE_SCHEMA.extend(ACCOUNT_ISSUER)) as db:
        await migrate(db)
        assert (await plan_migration(db)).warnings == []
    async with Database(database_url) as db:
        plan = await plan_migration(db)
        assert plan.statements == []
        assert len(plan.warnings) == 1
        assert "account.issuer is NOT NULL without a default" in plan.warnings[0]
        assert "ACCOUNT_ISSUER" in plan.warnings[0]
