"""Appends are all or nothing, and concurrent appends to one thread never interleave."""

from __future__ import annotations

import asyncio

import pytest

from bastion.identity.db import DatabaseError, UniqueViolation
from bastion.server.memory import MESSAGE_TABLE, ThreadNotFound
from bastion.server.models import Message
from tests.server.memory_kit import Clock, ids, open_memory


async def test_a_failure_mid_append_leaves_the_thread_unchanged(database_url: str) -> None:
    clock = Clock()
    # The third message of the second batch reuses an id: its insert fails after two
    # others of the batch went in.
    factory = ids(["m1", "m2", "m3", "m2", "m4", "m5"])
    async with open_memory(database_url, clock=clock, id_factory=factory) as memory:
        thread = await memory.create_thread("user-1", id="t1")
        clock.tick()
        await memory.append_messages("t1", [Message("user", "kept")])
        before = await memory.get_thread("t1")
        assert before is not None and before.updated_at == clock.now

        clock.tick()
        batch = [Message("assistant", "one"), Message("user", "two"), Message("user", "three")]
        with pytest.raises(UniqueViolation):
            await memory.append_messages("t1", batch)
        assert [m.content for m in await memory.list_messages("t1")] == ["kept"]
        assert await memory.db.count(MESSAGE_TABLE) == 1
        assert await memory.get_thread("t1") == before  # updatedAt not bumped either

        # The connection and the positions are fine afterwards.
        clock.tick()
        stored = await memory.append_messages("t1", [Message("user", "a"), Message("user", "b")])
        assert [m.id for m in stored] == ["m4", "m5"]
        assert [m.content for m in await memory.list_messages("t1")] == ["kept", "a", "b"]
        after = await memory.get_thread("t1")
        assert after is not None and after.updated_at == clock.now
        assert thread.created_at == after.created_at


async def test_an_append_to_a_missing_thread_writes_nothing(database_url: str) -> None:
    async with open_memory(database_url) as memory:
        with pytest.raises(ThreadNotFound):
            await memory.append_messages("gone", [Message("user", "x")])
        thread = await memory.create_thread("user-1")
        assert await memory.delete_thread(thread.id)
        with pytest.raises(ThreadNotFound):
            await memory.append_messages(thread.id, [Message("user", "x")])
        assert await memory.db.count(MESSAGE_TABLE) == 0


async def test_concurrent_appends_keep_each_batch_whole(database_url: str) -> None:
    """Eight writers append three messages each to one thread at once: every batch lands
    contiguous and whole, nothing is lost, and no position is taken twice (the unique
    index would raise)."""
    async with open_memory(database_url) as memory:
        thread = await memory.create_thread("user-1")

        async def writer(n: int) -> None:
            await memory.append_messages(
                thread.id, [Message("user", f"{n}:{part}") for part in range(3)]
            )

        async with asyncio.TaskGroup() as group:  # a failure cancels the rest cleanly
            for n in range(8):
                group.create_task(writer(n))
        contents = [m.content for m in await memory.list_messages(thread.id)]
    assert len(contents) == 24
    batches = [contents[i : i + 3] for i in range(0, 24, 3)]
    for batch in batches:
        writer_id = batch[0].split(":")[0]
        assert batch == [f"{writer_id}:{part}" for part in range(3)]
    assert sorted(b[0].split(":")[0] for b in batches) == [str(n) for n in range(8)]


async def test_a_database_failure_is_a_database_error(database_url: str) -> None:
    """What the store does not translate still arrives as the database layer's type."""
    factory = ids(["t", "dup", "dup"])
    async with open_memory(database_url, id_factory=factory) as memory:
        thread = await memory.create_thread("user-1")
        with pytest.raises(DatabaseError):
            await memory.append_messages(thread.id, [Message("user", "1"), Message("user", "2")])
        assert await memory.list_messages(thread.id) == []
