"""`Memory`: per-resource conversation threads and their messages, in the database.

A thread belongs to one resource (the id the auth layer maps a user to) for life. Routes
check ownership with `get_owned_thread` before anything else; the other methods take a
thread id the caller has already checked.

Lookups compare ids exactly on every dialect. MySQL's default collations compare strings
case-insensitively and ignore trailing spaces, so a row it returns is checked again here
before it counts as a match: `ABC` never reads thread `abc`, `alice ` never lists `alice`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from ...identity.db import (
    Database,
    DatabaseURL,
    MigrationPlan,
    Schema,
    Transaction,
    UniqueViolation,
    eq,
    migrate,
)
from ...identity.db.types import to_utc_ms, utc_now
from ..models import Message
from .checks import (
    check_message,
    check_metadata,
    check_resource_id,
    check_thread_id,
    check_title,
    is_thread_id,
)
from .errors import (
    InvalidMemoryInput,
    MemoryTablesMissing,
    ThreadAccessDenied,
    ThreadExists,
    ThreadNotFound,
)
from .records import StoredMessage, Thread
from .schema import MEMORY_SCHEMA, MESSAGE_TABLE, THREAD_TABLE

__all__ = ["UNSET", "Memory"]


class _Unset(Enum):
    UNSET = "UNSET"


UNSET = _Unset.UNSET
"""`update_thread(id, title=None)` clears the title; leaving `title` out keeps it."""


class Memory:
    """Threads and messages, per resource.

    `Memory()` opens $DATABASE_URL (else the SQLite default) with only the memory tables,
    for a server without an Identity (Auth0, JWT, …); `Memory(url)` likewise. `Memory(db)`
    shares a Database that already declares them, such as `identity.db` of an
    `Identity(plugins=[memory_plugin()])`. `await memory.migrate()` creates what is missing.
    """

    def __init__(
        self,
        database: Database | DatabaseURL | str | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if isinstance(database, Database):
            _require_tables(database.schema)
            self.db = database
            self._owns_db = False
        else:
            self.db = Database(database, schema=Schema(MEMORY_SCHEMA), clock=clock)
            self._owns_db = True
        self._clock = clock

    # -- threads ----------------------------------------------------------------------

    async def create_thread(
        self,
        resource_id: str,
        *,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Thread:
        """A new thread of `resource_id`. `id` is generated unless given; a given id that
        is taken raises ThreadExists (whoever owns it)."""
        row: dict[str, Any] = {
            "resourceId": check_resource_id(resource_id),
            "title": check_title(title, self.db.dialect),
            "metadata": check_metadata({} if metadata is None else metadata),
        }
        if id is not None:
            row["id"] = check_thread_id(id)
        now = self._now()
        row["createdAt"] = row["updatedAt"] = now
        try:
            created = await self.db.create(THREAD_TABLE, row)
        except UniqueViolation:
            if id is None:
                raise
            raise ThreadExists(id) from None
        return Thread.from_row(created)

    async def get_thread(self, thread_id: str) -> Thread | None:
        if not is_thread_id(thread_id):
            return None
        row = await self.db.find_one(THREAD_TABLE, eq("id", thread_id))
        if row is None or row["id"] != thread_id:
            return None
        return Thread.from_row(row)

    async def get_owned_thread(self, thread_id: str, resource_id: str) -> Thread:
        """The thread, if `resource_id` owns it. Raises ThreadNotFound, or its subclass
        ThreadAccessDenied when another resource owns it."""
        thread = await self.get_thread(thread_id)
        if thread is None:
            raise ThreadNotFound(thread_id)
        if thread.resource_id != resource_id:
            raise ThreadAccessDenied(thread_id)
        return thread

    async def get_or_create_thread(
        self,
        thread_id: str,
        resource_id: str,
        *,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Thread:
        """The thread `thread_id` of `resource_id`, created if there is none (the agent
        loop, given a threadId). Raises ThreadAccessDenied if another resource owns it."""
        check_thread_id(thread_id)
        thread = await self.get_thread(thread_id)
        if thread is None:
            try:
                return await self.create_thread(
                    resource_id, title=title, metadata=metadata, id=thread_id
                )
            except ThreadExists:
                # Created meanwhile by a concurrent request; or, on MySQL, an id that
                # differs only in case is taken, which no lookup will match.
                thread = await self.get_thread(thread_id)
                if thread is None:
                    raise
        if thread.resource_id != resource_id:
            raise ThreadAccessDenied(thread_id)
        return thread

    async def list_threads(
        self, resource_id: str, *, limit: int | None = None, offset: int = 0
    ) -> list[Thread]:
        """The threads of `resource_id`, most recently updated first."""
        check_resource_id(resource_id)
        if (limit is not None and limit < 0) or offset < 0:
            raise InvalidMemoryInput("limit and offset cannot be negative")
        rows = await self.db.find_many(
            THREAD_TABLE,
            eq("resourceId", resource_id),
            order_by=["-updatedAt", "-createdAt", "id"],
            limit=limit,
            offset=offset,
        )
        return [Thread.from_row(r) for r in rows if r["resourceId"] == resource_id]

    async def update_thread(
        self,
        thread_id: str,
        *,
        title: str | Literal[_Unset.UNSET] | None = UNSET,
        metadata: dict[str, Any] | None = None,
    ) -> Thread:
        """Set the title (None clears it) and/or replace the metadata; bumps updatedAt.
        Raises ThreadNotFound."""
        values: dict[str, Any] = {"updatedAt": self._now()}
        if title is not UNSET:
            values["title"] = check_title(title, self.db.dialect)
        if metadata is not None:
            values["metadata"] = check_metadata(metadata)
        if not is_thread_id(thread_id):
            raise ThreadNotFound(thread_id)
        async with self.db.transaction() as tx:
            row = await tx.update(THREAD_TABLE, eq("id", thread_id), values)
            if row is None or row["id"] != thread_id:
                raise ThreadNotFound(thread_id)  # leaving the block rolls the update back
        return Thread.from_row(row)

    async def delete_thread(self, thread_id: str) -> bool:
        """Delete the thread and its messages; whether there was one."""
        if not is_thread_id(thread_id):
            return False
        async with self.db.transaction() as tx:
            if not await _exists(tx, thread_id):
                return False
            # The foreign key cascades too; deleting explicitly does not rely on it.
            await tx.delete_many(MESSAGE_TABLE, eq("threadId", thread_id))
            return await tx.delete(THREAD_TABLE, eq("id", thread_id))

    # -- messages ---------------------------------------------------------------------

    async def append_messages(
        self, thread_id: str, messages: Sequence[Message]
    ) -> list[StoredMessage]:
        """Add messages at the end of the thread, all or none, and bump its updatedAt.
        Raises ThreadNotFound, or InvalidMemoryInput (before writing anything)."""
        fields = [check_message(m, self.db.dialect) for m in messages]
        if not is_thread_id(thread_id):
            raise ThreadNotFound(thread_id)
        if not fields:
            return []
        now = self._now()
        stored: list[StoredMessage] = []
        async with self.db.transaction() as tx:
            # Updating the thread row first locks it (a row lock on PostgreSQL and MySQL,
            # the write lock on SQLite) until commit, so concurrent appends to one thread
            # queue here, and each reads the last position after the one before committed.
            # It must be the first statement: MySQL fixes a transaction's snapshot at its
            # first plain read.
            touched = await tx.update_many(THREAD_TABLE, eq("id", thread_id), {"updatedAt": now})
            if not touched or not await _exists(tx, thread_id):
                raise ThreadNotFound(thread_id)
            last = await tx.find_many(
                MESSAGE_TABLE,
                eq("threadId", thread_id),
                order_by="-seq",
                limit=1,
                select=["seq"],
            )
            seq = int(last[0]["seq"]) if last else 0
            for position, values in enumerate(fields, start=seq + 1):
                row = await tx.create(
                    MESSAGE_TABLE,
                    {**values, "threadId": thread_id, "seq": position, "createdAt": now},
                )
                stored.append(StoredMessage.from_row(row))
        return stored

    async def list_messages(
        self, thread_id: str, *, limit: int | None = None
    ) -> list[StoredMessage]:
        """The thread's messages, oldest first; with `limit`, only the last `limit` of them.
        An unknown thread has none."""
        if limit is not None and limit < 0:
            raise InvalidMemoryInput("limit cannot be negative")
        if not is_thread_id(thread_id) or limit == 0:
            return []
        where = eq("threadId", thread_id)
        if limit is None:
            rows = await self.db.find_many(MESSAGE_TABLE, where, order_by="seq")
        else:
            rows = await self.db.find_many(MESSAGE_TABLE, where, order_by="-seq", limit=limit)
            rows.reverse()
        return [StoredMessage.from_row(r) for r in rows if r["threadId"] == thread_id]

    async def history(self, thread_id: str, *, limit: int | None = None) -> list[Message]:
        """The thread as model messages, for the agent loop (see list_messages)."""
        return [m.to_message() for m in await self.list_messages(thread_id, limit=limit)]

    # -- lifecycle --------------------------------------------------------------------

    async def migrate(self) -> MigrationPlan:
        """Create the missing tables (and, on a shared Database, whatever else its schema
        declares). Never drops or alters anything; a second run does nothing."""
        return await migrate(self.db)

    async def close(self) -> None:
        """Release the connection pool, if this Memory opened it."""
        if self._owns_db:
            await self.db.close()

    async def __aenter__(self) -> Memory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Memory({self.db!r})"

    def _now(self) -> datetime:
        return to_utc_ms(self._clock())


async def _exists(tx: Transaction, thread_id: str) -> bool:
    row = await tx.find_one(THREAD_TABLE, eq("id", thread_id), select=["id"])
    return row is not None and row["id"] == thread_id


def _require_tables(schema: Schema) -> None:
    for model, spec in MEMORY_SCHEMA.items():
        if model not in schema or any(f not in schema[model].fields for f in spec.fields):
            raise MemoryTablesMissing(
                f"the database's schema has no {model!r} table: build the Identity with "
                "plugins=[memory_plugin()], or the Database with CORE_SCHEMA.extend(MEMORY_SCHEMA)"
            )
