"""Where the rate limiter counts: this process's memory, the `rateLimit` table, or secondary
storage. Each decides atomically, so N concurrent requests never let more than `max` by."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeAlias, TypeVar, runtime_checkable

from .db import Database, DatabaseError, Field, Row, TableSpec, UniqueViolation, eq, in_, lt
from .storage import SecondaryStorage

__all__ = [
    "ALLOWED",
    "RATE_LIMIT_MODEL",
    "RATE_LIMIT_SCHEMA",
    "AccountStorage",
    "DatabaseRateLimitStorage",
    "MemoryRateLimitStorage",
    "RateLimitResult",
    "RateLimitStorage",
    "RateRule",
    "SecondaryRateLimitStorage",
]

logger = logging.getLogger("bastion.identity.ratelimit")


@dataclass(frozen=True, slots=True)
class RateRule:
    """At most `max` requests per `window` seconds."""

    window: int
    max: int

    def __post_init__(self) -> None:
        for name in ("window", "max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RateRule.{name} must be a positive whole number, not {value!r}")


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """`retry_after`: whole seconds until a refused request may be retried (0 if allowed)."""

    allowed: bool
    retry_after: int = 0


ALLOWED = RateLimitResult(True)


@runtime_checkable
class RateLimitStorage(Protocol):
    """Counts one request under `key` and decides it, atomically (better-auth's
    `customStorage.consume`). `now` is the time in milliseconds since the epoch."""

    async def consume(self, key: str, rule: RateRule, now: int) -> RateLimitResult: ...


@runtime_checkable
class AccountStorage(RateLimitStorage, Protocol):
    """What the per-account limits need beyond `consume` (all three built-in storages).

    `peek` decides as `consume` would, counting nothing; `remember` keeps `key` for
    `seconds`; `remembers` says whether it is still kept. A storage of your own without
    these keeps the per-account state in this process's memory.
    """

    async def peek(self, key: str, rule: RateRule, now: int) -> RateLimitResult: ...

    async def remember(self, key: str, seconds: int, now: int) -> None: ...

    async def remembers(self, key: str, now: int) -> bool: ...


_State: TypeAlias = tuple[int, int]  # (count, lastRequest in ms)


def _slide(
    current: _State | None, rule: RateRule, now: int
) -> tuple[RateLimitResult, _State | None]:
    """better-auth's algorithm: the decision and the new state (None: nothing to write).

    1. A window or more since the last allowed request (or none yet): start again at 1.
    2. Else at `max` already: refuse, until a window after the last allowed request.
    3. Else count it, and the window now runs from this request.
    """
    window = rule.window * 1000
    if current is None or now - current[1] >= window:
        return ALLOWED, (1, now)
    count, last = current
    if count >= rule.max:
        return RateLimitResult(False, -((now - last - window) // 1000)), None  # ceil
    return ALLOWED, (count + 1, now)


class MemoryRateLimitStorage:
    """Counters in this process, for this limiter only. A decision awaits nothing, so it is
    atomic for one event loop. Entries expire a window after their last allowed request;
    past `max_entries` the least recently counted are dropped."""

    def __init__(self, *, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: dict[str, tuple[int, int, int]] = {}  # key -> count, last, expires
        # Known clients apart from the counters: a flood of fresh counter keys (an attacker
        # can make those, a known client it cannot) must not evict them.
        self._known: dict[str, int] = {}  # key -> expires

    async def consume(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        result, state = _slide(self._current(key, now), rule, now)
        if state is not None:
            if self._entries.pop(key, None) is None and len(self._entries) >= self._max_entries:
                _make_room(self._entries, self._max_entries, lambda e: e[2] <= now)
            self._entries[key] = (*state, state[1] + rule.window * 1000)
        return result

    async def peek(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        return _slide(self._current(key, now), rule, now)[0]

    async def remember(self, key: str, seconds: int, now: int) -> None:
        if self._known.pop(key, None) is None and len(self._known) >= self._max_entries:
            _make_room(self._known, self._max_entries, lambda expires: expires <= now)
        self._known[key] = now + seconds * 1000

    async def remembers(self, key: str, now: int) -> bool:
        return now < self._known.get(key, now)

    def __len__(self) -> int:
        return len(self._entries)

    def _current(self, key: str, now: int) -> _State | None:
        entry = self._entries.get(key)
        return entry[:2] if entry is not None and now < entry[2] else None


_V = TypeVar("_V")


def _make_room(entries: dict[str, _V], max_entries: int, expired: Callable[[_V], bool]) -> None:
    """Drop the expired entries, then the least recently written, to make room for one."""
    for key in [k for k, e in entries.items() if expired(e)]:
        del entries[key]
    overflow = len(entries) - max_entries + 1
    for key in list(entries)[: max(overflow, 0)]:
        del entries[key]


RATE_LIMIT_MODEL = "rateLimit"

RATE_LIMIT_SCHEMA: Mapping[str, TableSpec] = {
    RATE_LIMIT_MODEL: TableSpec(
        fields={
            "key": Field(type="string", unique=True),
            "count": Field(type="number"),
            "lastRequest": Field(type="number", bigint=True),
        }
    )
}
"""better-auth's `rateLimit` table (§8.2): `Database(url, schema=CORE_SCHEMA.extend(this))`."""


class DatabaseRateLimitStorage:
    """Counters in the `rateLimit` table (add RATE_LIMIT_SCHEMA to the schema), shared by
    every process using the database.

    Each decision is one transaction that first locks the key's row, then reads and writes
    it, so concurrent requests queue and none is lost. A key's first request inserts the
    row; when two race, the unique key lets one win, and the loser counts against its row.
    Rows idle for `retention` seconds (or the longest window seen, if longer) are deleted,
    at most once per `prune_interval` seconds. A remembered key's row holds its expiry in
    `lastRequest` (a time to come), so the same pruning removes it only once it expired.
    """

    _ATTEMPTS = 4

    def __init__(self, db: Database, *, retention: int = 3600, prune_interval: int = 300) -> None:
        if RATE_LIMIT_MODEL not in db.schema:
            raise ValueError(
                "the database schema has no rateLimit table: "
                "use CORE_SCHEMA.extend(RATE_LIMIT_SCHEMA)"
            )
        self.db = db
        self.retention = retention
        self.prune_interval = prune_interval
        self._next_prune: int | None = None

    async def consume(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        self.retention = max(self.retention, rule.window)
        for _ in range(self._ATTEMPTS):
            result = await self._consume_once(key, rule, now)
            if result is not None:
                await self._maybe_prune(now)
                return result
        # Only reachable if the row vanished (pruned) between each of our steps, repeatedly.
        logger.warning("rate limit for %r undecided after %d attempts", key, self._ATTEMPTS)
        return RateLimitResult(False, rule.window)

    async def peek(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        row = await self.db.find_one(RATE_LIMIT_MODEL, eq("key", key), select=_COLUMNS)
        return _slide(None if row is None else _state(row), rule, now)[0]

    async def remember(self, key: str, seconds: int, now: int) -> None:
        values = {"count": 1, "lastRequest": now + seconds * 1000}
        for _ in range(self._ATTEMPTS):
            if await self.db.update_many(RATE_LIMIT_MODEL, eq("key", key), values):
                return
            try:
                await self.db.create(RATE_LIMIT_MODEL, {"key": key, **values})
                return
            except UniqueViolation:
                continue  # created meanwhile: update that row

    async def remembers(self, key: str, now: int) -> bool:
        row = await self.db.find_one(RATE_LIMIT_MODEL, eq("key", key), select=_COLUMNS)
        return row is not None and now < int(row["lastRequest"])

    async def _consume_once(self, key: str, rule: RateRule, now: int) -> RateLimitResult | None:
        where = eq("key", key)
        row = await self.db.find_one(RATE_LIMIT_MODEL, where, select=("count", "lastRequest"))
        if row is not None:
            result, state = _slide(_state(row), rule, now)
            if state is None:
                # A refusal writes nothing, so it may be decided on this plain read: the
                # count only grows until a window has passed, and a window has not.
                return result
            async with self.db.transaction() as tx:
                # Lock the row with a write that changes nothing, then read it: the read sees
                # what the lock's previous holder committed (PostgreSQL's READ COMMITTED
                # reads afresh per statement; InnoDB's REPEATABLE READ takes its snapshot at
                # the first plain read, after the lock; SQLite has one writer).
                if await tx.update_many(RATE_LIMIT_MODEL, where, {"key": key}):
                    row = await tx.find_one(
                        RATE_LIMIT_MODEL, where, select=("count", "lastRequest")
                    )
                    if row is not None:
                        result, state = _slide(_state(row), rule, now)
                        if state is not None:
                            values = {"count": state[0], "lastRequest": state[1]}
                            await tx.update_many(RATE_LIMIT_MODEL, where, values)
                        return result
        try:
            await self.db.create(RATE_LIMIT_MODEL, {"key": key, "count": 1, "lastRequest": now})
        except UniqueViolation:
            return None  # a concurrent request created it: count against that row
        return ALLOWED

    async def _maybe_prune(self, now: int) -> None:
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + self.prune_interval * 1000
        cutoff = now - self.retention * 1000
        try:
            for _ in range(20):
                # Found with a plain read, deleted by key: only those rows are locked.
                rows = await self.db.find_many(
                    RATE_LIMIT_MODEL, lt("lastRequest", cutoff), select=("key",), limit=500
                )
                keys = [r["key"] for r in rows]
                if keys:
                    stale = in_("key", keys) & lt("lastRequest", cutoff)
                    await self.db.delete_many(RATE_LIMIT_MODEL, stale)
                if len(keys) < 500:
                    break
        except DatabaseError:
            logger.exception("pruning the rateLimit table failed")


_COLUMNS = ("count", "lastRequest")


def _state(row: Row) -> _State:
    return int(row["count"]), int(row["lastRequest"])


class SecondaryRateLimitStorage:
    """Counters in a SecondaryStorage: a fixed window opened by the first request
    (`increment(key, ttl=window)`); over `max`, refused for `window` seconds."""

    def __init__(self, storage: SecondaryStorage) -> None:
        self.storage = storage

    async def consume(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        count = await self.storage.increment(key, rule.window)
        return ALLOWED if count <= rule.max else RateLimitResult(False, rule.window)

    async def peek(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        value = await self.storage.get(key)
        count = int(value) if value is not None and value.isdigit() else 0
        # The window's end is not known here: a whole window, as `consume` answers.
        return ALLOWED if count < rule.max else RateLimitResult(False, rule.window)

    async def remember(self, key: str, seconds: int, now: int) -> None:
        await self.storage.set(key, "1", ttl=seconds)

    async def remembers(self, key: str, now: int) -> bool:
        return await self.storage.get(key) is not None
