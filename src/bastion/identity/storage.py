"""better-auth's `secondaryStorage` (1.7 interface, spec §6.6): a key-value store with TTLs.

Sessions, verification values and rate-limit counters can live here instead of the
database. Two backends: `MemoryStorage` (one process) and `RedisStorage` (shared).

    storage = RedisStorage()                  # $REDIS_URL, read here, once
    await storage.set("k", "v", ttl=60)
    await storage.get_and_delete("k")         # "v", atomically; None the second time
    await storage.increment("ip|/sign-in", ttl=10)   # 1, then 2, …; expires 10 s after the 1st

Errors:

StorageError
 ├── StorageUnavailable    the backend did not answer (Redis down, timed out)
 └── RedisNotInstalled     RedisStorage without the `redis` package (also an ImportError)

A `ttl` is in whole seconds. `ttl=None` keeps the value until it is deleted; a `ttl` of zero
or less stores nothing and deletes the key (the value has already expired).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._url_masking import mask_userinfo

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "MemoryStorage",
    "RedisNotInstalled",
    "RedisStorage",
    "SecondaryStorage",
    "StorageError",
    "StorageUnavailable",
]


class StorageError(Exception):
    """Base of every error the secondary storage raises on purpose."""


class StorageUnavailable(StorageError):
    """The storage backend did not answer or failed."""


class RedisNotInstalled(StorageError, ImportError):
    """RedisStorage needs the `redis` package."""


@runtime_checkable
class SecondaryStorage(Protocol):
    """better-auth 1.7's `secondaryStorage`: string values with optional TTLs (seconds)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: int | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def get_and_delete(self, key: str) -> str | None:
        """The value, removed in the same atomic step: two callers never both get it."""
        ...

    async def increment(self, key: str, ttl: int) -> int:
        """Add one and return the new count, atomically. A missing key starts at 1 and expires
        `ttl` seconds later; later increments keep that expiry (a fixed window)."""
        ...


def _check_increment_ttl(ttl: int) -> None:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ValueError(f"increment needs a positive whole number of seconds, not {ttl!r}")


class MemoryStorage:
    """A dict with expiry, for one process. Each instance has its own contents.

    Expired entries are dropped when read, and swept when the store is full; past
    `max_entries` the least recently written keys are evicted. Every operation runs without
    awaiting anything in between, so it is atomic for the tasks of one event loop (not
    across threads). `clock` returns seconds and only needs to be monotonic.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max_entries = max_entries
        # key -> (value, expiry on `clock` or None); insertion order = write order.
        self._data: dict[str, tuple[str, float | None]] = {}

    async def get(self, key: str) -> str | None:
        entry = self._live(key, self._clock())
        return entry[0] if entry is not None else None

    async def set(self, key: str, value: str, ttl: int | None = None) -> None:
        if ttl is not None and ttl <= 0:
            self._data.pop(key, None)
            return
        now = self._clock()
        self._write(key, value, None if ttl is None else now + ttl, now)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def get_and_delete(self, key: str) -> str | None:
        entry = self._live(key, self._clock())
        if entry is None:
            return None
        del self._data[key]
        return entry[0]

    async def increment(self, key: str, ttl: int) -> int:
        _check_increment_ttl(ttl)
        now = self._clock()
        entry = self._live(key, now)
        expires: float | None
        if entry is None:
            count, expires = 1, now + ttl
        else:
            value, expires = entry
            try:
                count = int(value) + 1
            except ValueError:
                raise StorageError(f"{key!r} does not hold a counter") from None
            if expires is None:  # a plain value turned counter: give it the window now
                expires = now + ttl
        self._write(key, str(count), expires, now)
        return count

    async def aclose(self) -> None:
        """Nothing to release; here so both backends close the same way."""

    def __len__(self) -> int:
        """Entries held, expired ones not yet swept included."""
        return len(self._data)

    def _live(self, key: str, now: float) -> tuple[str, float | None] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= now:
            del self._data[key]
            return None
        return entry

    def _write(self, key: str, value: str, expires: float | None, now: float) -> None:
        if self._data.pop(key, None) is None and len(self._data) >= self._max_entries:
            self._make_room(now)
        self._data[key] = (value, expires)

    def _make_room(self, now: float) -> None:
        expired = [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]
        for k in expired:
            del self._data[k]
        # Still full: evict the least recently written (the dict's first keys).
        overflow = len(self._data) - self._max_entries + 1
        for k in list(self._data)[: max(overflow, 0)]:
            del self._data[k]


def _import_redis() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:
        raise RedisNotInstalled(
            "RedisStorage needs the redis package: pip install 'bastion[redis]'"
        ) from exc
    return redis.asyncio


@contextmanager
def _redis_errors(where: str) -> Iterator[None]:
    from redis.exceptions import ConnectionError, RedisError, TimeoutError

    try:
        yield
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise StorageUnavailable(f"Redis at {where} failed: {exc}") from exc
    except RedisError as exc:
        raise StorageError(f"Redis at {where}: {exc}") from exc


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStorage:
    """secondaryStorage on Redis ≥ 7.0 (GETDEL, EXPIRE NX), through `redis.asyncio`.

    `RedisStorage()` opens $REDIS_URL (read here, once); `RedisStorage(url)` opens `url`;
    `RedisStorage(client=...)` uses a client you made and still own (`aclose` leaves it
    open). `prefix` is put before every key, to share a database between applications.
    """

    def __init__(
        self, url: str | None = None, *, client: Redis | None = None, prefix: str = ""
    ) -> None:
        if client is not None and url is not None:
            raise ValueError("pass either url or client, not both")
        self.prefix = prefix
        if client is None:
            redis_asyncio = _import_redis()
            url = url or os.environ.get("REDIS_URL")
            if not url:
                raise ValueError("RedisStorage needs a URL: pass url= or set REDIS_URL")
            client = redis_asyncio.from_url(url, decode_responses=True)
            self._owns_client = True
        else:
            self._owns_client = False
        self.client: Redis = client
        self._where = mask_userinfo(url) if url else _describe(client)

    async def get(self, key: str) -> str | None:
        with _redis_errors(self._where):
            return _text(await self.client.get(self.prefix + key))

    async def set(self, key: str, value: str, ttl: int | None = None) -> None:
        with _redis_errors(self._where):
            if ttl is None:
                await self.client.set(self.prefix + key, value)
            elif ttl <= 0:
                await self.client.delete(self.prefix + key)
            else:
                await self.client.set(self.prefix + key, value, ex=ttl)

    async def delete(self, key: str) -> None:
        with _redis_errors(self._where):
            await self.client.delete(self.prefix + key)

    async def get_and_delete(self, key: str) -> str | None:
        with _redis_errors(self._where):
            return _text(await self.client.getdel(self.prefix + key))

    async def increment(self, key: str, ttl: int) -> int:
        _check_increment_ttl(ttl)
        name = self.prefix + key
        with _redis_errors(self._where):
            # MULTI/EXEC: both run together. EXPIRE NX sets the TTL only on a key that has
            # none, i.e. the one INCR just created: the window is fixed at creation.
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, ttl, nx=True)
                count, _ = await pipe.execute()
        return int(count)

    async def aclose(self) -> None:
        """Close the connection pool, if this object opened it."""
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> RedisStorage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"RedisStorage({self._where!r}, prefix={self.prefix!r})"


def _describe(client: Any) -> str:
    """`redis://host:port/db` of a client, for messages."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if "host" not in kwargs:
        return type(client).__name__
    return f"redis://{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
