"""Memory threads and messages on every dialect: CRUD, order, JSON, isolation, limits."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bastion.server.memory import (
    MESSAGE_TABLE,
    InvalidMemoryInput,
    Memory,
    StoredMessage,
    Thread,
    ThreadAccessDenied,
    ThreadExists,
    ThreadNotFound,
)
from bastion.server.models import Message, ToolCall
from tests.server.memory_kit import Clock, ids, open_memory


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def memory(database_url: str, clock: Clock) -> AsyncIterator[Memory]:
    async with open_memory(database_url, clock=clock) as memory:
        yield memory


def test_public_names_are_importable() -> None:
    module = importlib.import_module("bastion.server.memory")
    for name in module.__all__:
        assert hasattr(module, name), name


# -- threads -----------------------------------------------------------------------------


async def test_create_get_and_json_shape(memory: Memory, clock: Clock) -> None:
    thread = await memory.create_thread("user-1", title="Trip", metadata={"lang": "en"})
    assert isinstance(thread, Thread)
    assert len(thread.id) == 32 and thread.id.isalnum()
    assert await memory.get_thread(thread.id) == thread
    assert thread.to_json() == {
        "id": thread.id,
        "resourceId": "user-1",
        "title": "Trip",
        "metadata": {"lang": "en"},
        "createdAt": "2026-03-01T12:00:00.123Z",
        "updatedAt": "2026-03-01T12:00:00.123Z",
    }
    bare = await memory.create_thread("user-1", id="my-thread_1")
    assert bare.id == "my-thread_1"
    assert (await memory.get_thread("my-thread_1")) == bare
    assert bare.to_json()["title"] is None and bare.to_json()["metadata"] == {}
    assert await memory.get_thread("no-such-thread") is None


async def test_a_taken_id_raises_thread_exists_whoever_owns_it(memory: Memory) -> None:
    await memory.create_thread("user-1", id="shared-name")
    with pytest.raises(ThreadExists):
        await memory.create_thread("user-2", id="shared-name")
    assert (await memory.get_owned_thread("shared-name", "user-1")).resource_id == "user-1"


async def test_metadata_json_round_trip(database_url: str, clock: Clock) -> None:
    metadata: dict[str, Any] = {
        "nested": {"list": [1, 2.5, -3, True, False, None, "x"], "empty": {}},
        "unicode": "héllo → 世界 🙂",
        "big": 2**53,
        "float": 0.1,
        "quote": 'a "quoted" \\ backslash',
    }
    async with open_memory(database_url, clock=clock) as memory:
        thread = await memory.create_thread("user-1", metadata=metadata)
        metadata["nested"]["empty"]["changed"] = True  # the caller's dict is not shared
        assert thread.metadata["nested"]["empty"] == {}
    async with open_memory(database_url, clock=clock) as fresh:  # read back from the database
        found = await fresh.get_thread(thread.id)
    assert found is not None
    assert found.metadata == {**metadata, "nested": {**metadata["nested"], "empty": {}}}


async def test_update_thread(memory: Memory, clock: Clock) -> None:
    thread = await memory.create_thread("user-1", title="Old", metadata={"a": 1})
    clock.tick()
    renamed = await memory.update_thread(thread.id, title="New")
    assert (renamed.title, renamed.metadata) == ("New", {"a": 1})
    assert renamed.created_at == thread.created_at
    assert renamed.updated_at == clock.now
    clock.tick()
    replaced = await memory.update_thread(thread.id, metadata={"b": [2]})
    assert (replaced.title, replaced.metadata) == ("New", {"b": [2]})
    cleared = await memory.update_thread(thread.id, title=None)
    assert cleared.title is None
    assert await memory.get_thread(thread.id) == cleared
    with pytest.raises(ThreadNotFound):
        await memory.update_thread("no-such-thread", title="x")


async def test_list_threads_newest_updated_first_and_paged(memory: Memory, clock: Clock) -> None:
    first = await memory.create_thread("user-1", title="first")
    clock.tick()
    second = await memory.create_thread("user-1", title="second")
    clock.tick()
    third = await memory.create_thread("user-1", title="third")
    await memory.create_thread("user-2", title="someone else's")

    async def titles(**page: int) -> list[str | None]:
        return [t.title for t in await memory.list_threads("user-1", **page)]

    assert await titles() == ["third", "second", "first"]
    clock.tick()
    await memory.append_messages(first.id, [Message("user", "bump")])
    assert await titles() == ["first", "third", "second"]
    clock.tick()
    await memory.update_thread(second.id, title="second, renamed")
    assert await titles() == ["second, renamed", "first", "third"]
    assert await titles(limit=2) == ["second, renamed", "first"]
    assert await titles(limit=2, offset=2) == ["third"]
    assert await titles(offset=3) == []
    assert [t.id for t in await memory.list_threads("user-3")] == []
    assert third.id in {t.id for t in await memory.list_threads("user-1")}


async def test_list_threads_breaks_ties_the_same_way_every_time(memory: Memory) -> None:
    made = {(await memory.create_thread("user-1")).id for _ in range(5)}  # one instant
    pages = [await memory.list_threads("user-1", limit=2, offset=o) for o in (0, 2, 4)]
    listed = [t.id for page in pages for t in page]
    assert sorted(listed) == sorted(made)
    assert listed == [t.id for t in await memory.list_threads("user-1")]


async def test_delete_thread_deletes_its_messages(memory: Memory) -> None:
    thread = await memory.create_thread("user-1")
    kept = await memory.create_thread("user-1")
    await memory.append_messages(thread.id, [Message("user", "a"), Message("assistant", "b")])
    await memory.append_messages(kept.id, [Message("user", "stays")])
    assert await memory.delete_thread(thread.id) is True
    assert await memory.get_thread(thread.id) is None
    assert await memory.list_messages(thread.id) == []
    assert await memory.db.count(MESSAGE_TABLE) == 1
    assert await memory.delete_thread(thread.id) is False
    assert [m.content for m in await memory.list_messages(kept.id)] == ["stays"]


async def test_the_foreign_key_cascades(memory: Memory) -> None:
    """Deleting a thread row by any other means also takes its messages (the DDL's
    ON DELETE CASCADE, on every dialect)."""
    thread = await memory.create_thread("user-1")
    await memory.append_messages(thread.id, [Message("user", "a"), Message("user", "b")])
    assert await memory.db.delete("bastion_thread", {"id": thread.id})
    assert await memory.db.count(MESSAGE_TABLE) == 0


# -- messages ----------------------------------------------------------------------------


CALL = ToolCall(id="call_1", name="weather", arguments={"city": "Paris", "days": [1, 2]})
CONVERSATION = [
    Message("system", "Be brief."),
    Message("user", "Weather in Paris?"),
    Message("assistant", "", tool_calls=(CALL,)),
    Message("tool", '{"temp": 21}', tool_call_id="call_1", name="weather"),
    Message("assistant", "21 °C."),
]


async def test_messages_keep_their_order_with_equal_timestamps(
    memory: Memory, clock: Clock
) -> None:
    thread = await memory.create_thread("user-1")
    batches = [CONVERSATION[:2], CONVERSATION[2:4], CONVERSATION[4:]]
    for batch in batches:
        stored = await memory.append_messages(thread.id, batch)
        assert [m.to_message() for m in stored] == batch
    listed = await memory.list_messages(thread.id)
    assert {m.created_at for m in listed} == {clock.now}  # the clock never moved
    assert [m.to_message() for m in listed] == CONVERSATION
    assert await memory.history(thread.id) == CONVERSATION
    assert await memory.history(thread.id, limit=2) == CONVERSATION[-2:]
    assert await memory.history(thread.id, limit=50) == CONVERSATION
    assert await memory.history(thread.id, limit=0) == []
    assert await memory.history("no-such-thread") == []


async def test_order_does_not_follow_ids(database_url: str, clock: Clock) -> None:
    """Ids that sort backwards do not reorder a thread."""
    factory = ids(["t", "m9", "m8", "m7", "m1"])
    async with open_memory(database_url, clock=clock, id_factory=factory) as memory:
        thread = await memory.create_thread("user-1")
        await memory.append_messages(thread.id, [Message("user", str(n)) for n in range(3)])
        await memory.append_messages(thread.id, [Message("user", "3")])
        listed = await memory.list_messages(thread.id)
    assert [m.content for m in listed] == ["0", "1", "2", "3"]
    assert [m.id for m in listed] == ["m9", "m8", "m7", "m1"]


async def test_stored_message_json_shape(memory: Memory, clock: Clock) -> None:
    thread = await memory.create_thread("user-1")
    stored = await memory.append_messages(thread.id, CONVERSATION[1:4])
    assert all(isinstance(m, StoredMessage) for m in stored)
    user, call, result = (m.to_json() for m in stored)
    assert user == {
        "id": stored[0].id,
        "threadId": thread.id,
        "role": "user",
        "content": "Weather in Paris?",
        "createdAt": "2026-03-01T12:00:00.123Z",
    }
    assert call["toolCalls"] == [
        {"toolCallId": "call_1", "toolName": "weather", "args": {"city": "Paris", "days": [1, 2]}}
    ]
    assert "toolCallId" not in call
    assert result["toolCallId"] == "call_1" and "toolCalls" not in result
    assert [m.to_json() for m in await memory.list_messages(thread.id)] == [user, call, result]


async def test_append_bumps_updated_at(memory: Memory, clock: Clock) -> None:
    thread = await memory.create_thread("user-1")
    clock.tick(5)
    await memory.append_messages(thread.id, [Message("user", "hi")])
    found = await memory.get_thread(thread.id)
    assert found is not None
    assert (found.created_at, found.updated_at) == (thread.created_at, clock.now)
    assert await memory.append_messages(thread.id, []) == []


# -- isolation (Mastra #18911 / GHSA-cw45-899f-pvrr: threads read across resources) -------


async def test_get_owned_thread_tells_missing_from_foreign(memory: Memory) -> None:
    mine = await memory.create_thread("resource-alice")
    assert await memory.get_owned_thread(mine.id, "resource-alice") == mine
    with pytest.raises(ThreadAccessDenied) as denied:
        await memory.get_owned_thread(mine.id, "resource-bob")
    assert isinstance(denied.value, ThreadNotFound)  # one `except` can answer both with 404
    assert "resource-alice" not in str(denied.value)
    with pytest.raises(ThreadNotFound) as missing:
        await memory.get_owned_thread("no-such-thread", "resource-alice")
    assert not isinstance(missing.value, ThreadAccessDenied)


async def test_lookups_are_exact_where_mysql_compares_loosely(memory: Memory) -> None:
    """MySQL's default collation ignores case and trailing spaces: `Alice` and `alice `
    must still not see `alice`'s threads, nor `thread-a` read `Thread-A`."""
    alice = await memory.create_thread("alice", id="Thread-A")
    for other in ("Alice", "alice ", "ALICE"):
        await memory.create_thread(other)
        assert [t.resource_id for t in await memory.list_threads(other)] == [other]
    assert [t.id for t in await memory.list_threads("alice")] == [alice.id]
    await memory.append_messages("Thread-A", [Message("user", "private")])
    assert await memory.get_thread("thread-a") is None
    with pytest.raises(ThreadNotFound):
        await memory.get_owned_thread("thread-a", "alice")
    assert await memory.list_messages("thread-a") == []
    with pytest.raises(ThreadNotFound):
        await memory.append_messages("thread-a", [Message("user", "x")])
    with pytest.raises(ThreadNotFound):
        await memory.update_thread("thread-a", title="x")
    assert await memory.delete_thread("thread-a") is False
    assert [m.content for m in await memory.list_messages("Thread-A")] == ["private"]


async def test_get_or_create_thread(memory: Memory) -> None:
    created = await memory.get_or_create_thread("chat-1", "alice", title="Hello")
    assert (created.id, created.resource_id, created.title) == ("chat-1", "alice", "Hello")
    assert await memory.get_or_create_thread("chat-1", "alice") == created
    with pytest.raises(ThreadAccessDenied):
        await memory.get_or_create_thread("chat-1", "bob")
    # Two first requests at once: one creates, the other finds it.
    both = await asyncio.gather(*(memory.get_or_create_thread("chat-2", "alice") for _ in "ab"))
    assert both[0] == both[1]
    assert len(await memory.list_threads("alice")) == 2


# -- input the databases would refuse, refused the same way everywhere -------------------


@pytest.mark.parametrize("bad_id", ["", "a" * 37, "../etc", "a/b", "a b", "é", "a\x00b", "a%2Fb"])
async def test_bad_thread_ids(memory: Memory, bad_id: str) -> None:
    with pytest.raises(InvalidMemoryInput):
        await memory.create_thread("user-1", id=bad_id)
    assert await memory.get_thread(bad_id) is None
    with pytest.raises(ThreadNotFound):
        await memory.get_owned_thread(bad_id, "user-1")
    with pytest.raises(ThreadNotFound):
        await memory.append_messages(bad_id, [Message("user", "x")])
    assert await memory.list_messages(bad_id) == []
    assert await memory.delete_thread(bad_id) is False


async def test_bad_values_are_refused_before_writing(memory: Memory) -> None:
    thread = await memory.create_thread("user-1")
    bad_messages = [
        Message("user", "nul \x00 byte"),
        Message("robot", "hi"),  # type: ignore[arg-type]
        Message("assistant", "", tool_calls=(ToolCall("c", "t", {"x": {1, 2}}),)),
        Message("assistant", "", tool_calls=(ToolCall("c", "t", {"x": float("nan")}),)),
        Message("assistant", "", tool_calls=(ToolCall("c", "t", {"x": "\x00"}),)),
        Message("tool", "r", tool_call_id="c\x00"),
    ]
    for bad in bad_messages:
        with pytest.raises(InvalidMemoryInput):
            await memory.append_messages(thread.id, [Message("user", "fine"), bad])
    for metadata in ({"k": "\x00"}, {"\x00": 1}, {"n": float("inf")}, ["not", "an", "object"]):
        with pytest.raises(InvalidMemoryInput):
            await memory.create_thread("user-1", metadata=metadata)  # type: ignore[arg-type]
        with pytest.raises(InvalidMemoryInput):
            await memory.update_thread(thread.id, metadata=metadata)  # type: ignore[arg-type]
    for resource in ("", "x" * 256, "a\x00"):
        with pytest.raises(InvalidMemoryInput):
            await memory.create_thread(resource)
        with pytest.raises(InvalidMemoryInput):
            await memory.list_threads(resource)
    with pytest.raises(InvalidMemoryInput):
        await memory.create_thread("user-1", title="\x00")
    with pytest.raises(InvalidMemoryInput):
        await memory.list_threads("user-1", limit=-1)
    assert await memory.list_messages(thread.id) == []
    assert await memory.get_thread(thread.id) == thread
    assert len(await memory.list_threads("user-1")) == 1


async def test_long_content(memory: Memory) -> None:
    """A 255-character resource id and message content past MySQL's 64 KB `text` fit
    everywhere (content is longtext on MySQL); a title that long is refused there."""
    thread = await memory.create_thread("r" * 255)
    fits = "é" * 30_000  # 60,000 bytes
    big = "x" * 70_000
    await memory.append_messages(thread.id, [Message("assistant", fits), Message("tool", big)])
    expected = [fits, big]
    if memory.db.dialect == "mysql":
        with pytest.raises(InvalidMemoryInput):
            await memory.update_thread(thread.id, title=big)
    assert [m.content for m in await memory.list_messages(thread.id)] == expected
