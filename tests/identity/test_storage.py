"""secondaryStorage (spec §6.6): the same behaviour from MemoryStorage and RedisStorage."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import redis.asyncio

from bastion.identity.storage import (
    MemoryStorage,
    RedisNotInstalled,
    RedisStorage,
    SecondaryStorage,
    StorageError,
    StorageUnavailable,
)
from tests.services import redis_url_or_skip


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    storage: MemoryStorage | RedisStorage
    advance: Callable[[float], Awaitable[None]]  # let that many seconds pass


async def advance_redis(client: redis.asyncio.Redis, prefix: str, seconds: float) -> None:
    """Time passing, for the keys under `prefix`: each TTL shortened, or the key expired."""
    step = round(seconds * 1000)
    async for key in client.scan_iter(match=prefix + "*"):
        left = await client.pttl(key)
        if left < 0:
            continue  # no TTL
        if left <= step:
            await client.delete(key)
        else:
            await client.pexpire(key, left - step)


@asynccontextmanager
async def redis_scratch() -> AsyncIterator[tuple[redis.asyncio.Redis, str]]:
    """A client on the test Redis and a fresh key prefix; the prefix's keys are removed after."""
    url = await redis_url_or_skip()
    client = redis.asyncio.from_url(url, decode_responses=True)
    prefix = f"bastion-test:{secrets.token_hex(8)}:"
    try:
        yield client, prefix
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[redis.asyncio.Redis, str]]:
    async with redis_scratch() as scratch:
        yield scratch


@pytest.fixture(params=["memory", "redis"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":
        clock = FakeClock()

        async def advance(seconds: float) -> None:
            clock.now += seconds

        yield Harness(MemoryStorage(clock=clock), advance)
        return
    async with redis_scratch() as (client, prefix):
        storage = RedisStorage(client=client, prefix=prefix)
        yield Harness(storage, lambda seconds: advance_redis(client, prefix, seconds))


async def test_both_backends_satisfy_the_protocol(harness: Harness) -> None:
    assert isinstance(harness.storage, SecondaryStorage)


async def test_set_get_delete(harness: Harness) -> None:
    s = harness.storage
    assert await s.get("k") is None
    await s.set("k", "v1")
    assert await s.get("k") == "v1"
    await s.set("k", "v2")
    assert await s.get("k") == "v2"
    await s.delete("k")
    assert await s.get("k") is None
    await s.delete("k")  # deleting nothing is fine


async def test_ttl_expires_the_value(harness: Harness) -> None:
    s = harness.storage
    await s.set("k", '{"session": 1}', ttl=60)
    await harness.advance(59.5)
    assert await s.get("k") == '{"session": 1}'
    await harness.advance(1)
    assert await s.get("k") is None


async def test_no_ttl_keeps_the_value_and_set_replaces_a_ttl(harness: Harness) -> None:
    s = harness.storage
    await s.set("forever", "v")
    await s.set("was-timed", "v", ttl=5)
    await s.set("was-timed", "v")  # a set without ttl makes it permanent, as Redis's SET does
    await harness.advance(10_000)
    assert await s.get("forever") == "v"
    assert await s.get("was-timed") == "v"


@pytest.mark.parametrize("ttl", [0, -3])
async def test_a_ttl_in_the_past_deletes(harness: Harness, ttl: int) -> None:
    s = harness.storage
    await s.set("k", "old")
    await s.set("k", "new", ttl=ttl)
    assert await s.get("k") is None


async def test_get_and_delete(harness: Harness) -> None:
    s = harness.storage
    assert await s.get_and_delete("k") is None
    await s.set("k", "v", ttl=10)
    assert await s.get_and_delete("k") == "v"
    assert await s.get_and_delete("k") is None
    assert await s.get("k") is None
    await s.set("gone", "v", ttl=10)
    await harness.advance(11)
    assert await s.get_and_delete("gone") is None


async def test_get_and_delete_hands_the_value_to_exactly_one_caller(harness: Harness) -> None:
    s = harness.storage
    await s.set("token", "v", ttl=60)
    got = await asyncio.gather(*(s.get_and_delete("token") for _ in range(50)))
    assert got.count("v") == 1
    assert got.count(None) == 49


async def test_increment_counts_in_a_fixed_window(harness: Harness) -> None:
    s = harness.storage
    assert [await s.increment("c", ttl=10) for _ in range(3)] == [1, 2, 3]
    assert await s.get("c") == "3"
    await harness.advance(6)
    assert await s.increment("c", ttl=10) == 4  # does not push the expiry back
    await harness.advance(4.5)
    assert await s.get("c") is None
    assert await s.increment("c", ttl=10) == 1


async def test_concurrent_increments_are_not_lost(harness: Harness) -> None:
    s = harness.storage
    counts = await asyncio.gather(*(s.increment("c", ttl=10) for _ in range(50)))
    assert sorted(counts) == list(range(1, 51))


async def test_increment_gives_a_plain_counter_a_ttl(harness: Harness) -> None:
    s = harness.storage
    await s.set("c", "5")
    assert await s.increment("c", ttl=10) == 6
    await harness.advance(11)
    assert await s.get("c") is None


async def test_increment_refuses_what_is_not_a_counter(harness: Harness) -> None:
    s = harness.storage
    await s.set("c", "not a number")
    with pytest.raises(StorageError):
        await s.increment("c", ttl=10)


@pytest.mark.parametrize("ttl", [0, -1, 1.5, True])
async def test_increment_needs_a_positive_ttl(harness: Harness, ttl: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        await harness.storage.increment("c", ttl=ttl)


# -- MemoryStorage -------------------------------------------------------------------------


async def test_memory_instances_do_not_share_state() -> None:
    a, b = MemoryStorage(), MemoryStorage()
    await a.set("k", "a")
    assert await b.get("k") is None


async def test_memory_is_bounded_and_evicts_the_least_recently_written() -> None:
    s = MemoryStorage(max_entries=10)
    for i in range(10):
        await s.set(f"k{i}", str(i))
    await s.set("k0", "rewritten")  # now the most recent
    for i in range(10, 15):
        await s.set(f"k{i}", str(i))
    assert len(s) == 10
    assert await s.get("k0") == "rewritten"
    assert [await s.get(f"k{i}") for i in range(1, 6)] == [None] * 5
    assert await s.get("k14") == "14"


async def test_memory_sweeps_expired_entries_before_evicting_live_ones() -> None:
    clock = FakeClock()
    s = MemoryStorage(clock=clock, max_entries=10)
    for i in range(5):
        await s.set(f"live{i}", "v")
    for i in range(5):
        await s.set(f"temp{i}", "v", ttl=1)
    clock.now += 2
    for i in range(5):
        await s.increment(f"new{i}", ttl=60)
    assert len(s) == 10
    assert all([await s.get(f"live{i}") == "v" for i in range(5)])


def test_memory_checks_max_entries() -> None:
    with pytest.raises(ValueError):
        MemoryStorage(max_entries=0)


# -- RedisStorage --------------------------------------------------------------------------


async def test_redis_increment_sets_the_ttl_once(
    redis_prefix: tuple[redis.asyncio.Redis, str],
) -> None:
    client, prefix = redis_prefix
    s = RedisStorage(client=client, prefix=prefix)
    await s.increment("c", ttl=100)
    first = await client.pttl(prefix + "c")
    assert 99_000 < first <= 100_000
    await client.pexpire(prefix + "c", 50_000)
    await s.increment("c", ttl=100)
    assert 49_000 < await client.pttl(prefix + "c") <= 50_000
    await s.set("t", "v", ttl=30)
    assert 29 <= await client.ttl(prefix + "t") <= 30


async def test_redis_prefix_separates_applications(
    redis_prefix: tuple[redis.asyncio.Redis, str],
) -> None:
    client, prefix = redis_prefix
    a = RedisStorage(client=client, prefix=prefix + "a:")
    b = RedisStorage(client=client, prefix=prefix + "b:")
    await a.set("k", "a")
    assert await b.get("k") is None
    assert await client.get(prefix + "a:k") == "a"


async def test_redis_returns_text_from_a_bytes_client(
    redis_prefix: tuple[redis.asyncio.Redis, str],
) -> None:
    _, prefix = redis_prefix
    raw = redis.asyncio.from_url(await redis_url_or_skip())  # decode_responses=False
    try:
        s = RedisStorage(client=raw, prefix=prefix)
        await s.set("k", "välue")
        assert await s.get("k") == "välue"
        assert await s.get_and_delete("k") == "välue"
    finally:
        await raw.aclose()


async def test_redis_url_comes_from_the_environment_at_construction(
    redis_prefix: tuple[redis.asyncio.Redis, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, prefix = redis_prefix
    monkeypatch.setenv("REDIS_URL", await redis_url_or_skip())
    s = RedisStorage(prefix=prefix)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # read once, not per call
    try:
        await s.set("k", "v")
        assert await client.get(prefix + "k") == "v"
    finally:
        await s.aclose()


async def test_aclose_leaves_a_given_client_open(
    redis_prefix: tuple[redis.asyncio.Redis, str],
) -> None:
    client, prefix = redis_prefix
    async with RedisStorage(client=client, prefix=prefix) as s:
        await s.set("k", "v")
    assert await client.get(prefix + "k") == "v"


def test_redis_needs_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ValueError, match="REDIS_URL"):
        RedisStorage()
    with pytest.raises(ValueError, match="either"):
        RedisStorage("redis://x", client=redis.asyncio.Redis())


async def test_redis_down_is_storage_unavailable() -> None:
    s = RedisStorage("redis://:secret@127.0.0.1:1/0")
    try:
        with pytest.raises(StorageUnavailable) as caught:
            await s.get("k")
        assert "secret" not in str(caught.value)
    finally:
        await s.aclose()


def test_missing_redis_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(RedisNotInstalled, match=r"pip install 'bastion\[redis\]'") as caught:
        RedisStorage("redis://127.0.0.1:6379/15")
    assert isinstance(caught.value, ImportError)
    assert isinstance(caught.value, StorageError)
