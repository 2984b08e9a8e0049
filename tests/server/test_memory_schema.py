"""The memory tables: migrated on their own or beside the identity's, idempotently."""

from __future__ import annotations

import pytest

from bastion.identity import Identity, bearer
from bastion.identity.db import CORE_SCHEMA, Database, Schema, migrate, plan_migration
from bastion.server.memory import (
    MEMORY_SCHEMA,
    Memory,
    MemoryTablesMissing,
    memory_plugin,
)
from bastion.server.models import Message
from tests.identity.conftest import running

CORE_TABLES = ["user", "session", "account", "verification"]
MEMORY_TABLES = ["bastion_thread", "bastion_message"]


async def tables(db: Database) -> set[str]:
    async with db.connect() as conn:
        return set(await conn.run_sync(lambda c: c.dialect.get_table_names(c)))


async def test_standalone_memory_migrates_only_its_tables(database_url: str) -> None:
    async with Memory(database_url) as memory:
        plan = await memory.migrate()
        assert plan.created_tables == MEMORY_TABLES
        statements = "\n".join(plan.statements)
        assert "bastion_thread_resourceId_idx" in statements
        assert "bastion_message_threadId_seq_uidx" in statements
        assert await tables(memory.db) == set(MEMORY_TABLES)
        again = await memory.migrate()
        assert again.empty and again.statements == [] and again.warnings == []
        thread = await memory.create_thread("auth0|abc123")
        await memory.append_messages(thread.id, [Message("user", "hi")])
    async with Memory(database_url) as reopened:
        assert (await reopened.migrate()).empty
        assert await reopened.history(thread.id) == [Message("user", "hi")]


async def test_memory_plugin_migrates_beside_the_identity_tables(database_url: str) -> None:
    async with running(database_url, plugins=[bearer(), memory_plugin()]) as (identity, client):
        assert await tables(identity.db) == {*CORE_TABLES, *MEMORY_TABLES}
        again = await plan_migration(identity.db)
        assert again.empty and again.warnings == []
        response = await client.post(
            "/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": "correct horse 1"},
        )
        assert response.status_code == 200, response.text
        user_id = response.json()["user"]["id"]
        memory = Memory(identity.db)  # shares the Identity's pool; closing it keeps it open
        thread = await memory.create_thread(user_id, title="first")
        await memory.append_messages(thread.id, [Message("user", "hello")])
        await memory.close()
        assert [t.title for t in await memory.list_threads(user_id)] == ["first"]


async def test_either_order_on_one_database(database_url: str) -> None:
    """Identity tables first and memory later (or the reverse): each migration adds only
    its own tables, and the combined schema then has nothing to do."""
    async with Database(database_url) as db:
        assert (await migrate(db)).created_tables == CORE_TABLES
    async with Memory(database_url) as memory:
        assert (await memory.migrate()).created_tables == MEMORY_TABLES
    combined = CORE_SCHEMA.extend(MEMORY_SCHEMA)  # what `bastion migrate` would use
    async with Database(database_url, schema=combined) as db:
        plan = await plan_migration(db)
        assert plan.empty and plan.warnings == []
        assert await tables(db) == {*CORE_TABLES, *MEMORY_TABLES}


async def test_combined_schema_creates_everything_at_once(database_url: str) -> None:
    combined = CORE_SCHEMA.extend(MEMORY_SCHEMA)
    async with Database(database_url, schema=combined) as db:
        plan = await migrate(db)
        assert plan.created_tables == [*CORE_TABLES, *MEMORY_TABLES]
        assert (await migrate(db)).empty
        async with Memory(database_url) as memory:  # the standalone view agrees
            assert (await memory.migrate()).empty


def test_a_database_without_the_tables_is_refused() -> None:
    db = Database("sqlite://")  # CORE_SCHEMA only
    with pytest.raises(MemoryTablesMissing, match="memory_plugin"):
        Memory(db)
    identity = Identity(database="sqlite://", env={}, secret="x" * 32, plugins=[bearer()])
    with pytest.raises(MemoryTablesMissing):
        Memory(identity.db)
    half = Schema({"bastion_thread": MEMORY_SCHEMA["bastion_thread"]})
    with pytest.raises(MemoryTablesMissing):
        Memory(Database("sqlite://", schema=half))


def test_no_url_means_database_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/memory.db")
    assert Memory().db.url.text == f"sqlite:///{tmp_path}/memory.db"
