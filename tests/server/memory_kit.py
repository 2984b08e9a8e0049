"""Helpers shared by the memory tests: a clock the test moves, and a migrated Memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from bastion.identity.crypto import generate_id
from bastion.identity.db import Database, Schema
from bastion.identity.db.types import utc_now
from bastion.server.memory import MEMORY_SCHEMA, Memory


class Clock:
    """Stands still until told to move, so equal timestamps are the norm, not luck."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


def ids(values: Iterable[str]) -> Callable[[], str]:
    """An id factory handing out `values` in order (to force a duplicate id)."""
    pending = iter(values)
    return lambda: next(pending)


@asynccontextmanager
async def open_memory(
    url: str,
    *,
    clock: Callable[[], datetime] = utc_now,
    id_factory: Callable[[], str] | None = None,
) -> AsyncIterator[Memory]:
    """A Memory on its own migrated tables at `url`."""
    db = Database(
        url, schema=Schema(MEMORY_SCHEMA), clock=clock, id_factory=id_factory or generate_id
    )
    memory = Memory(db, clock=clock)
    try:
        await memory.migrate()
        yield memory
    finally:
        await db.close()
