"""The session and its user by token, for the auth hot path of `IdentityAuth`.

`Store.find_session` answers the same question, but builds its SELECT anew and wraps it in
BEGIN/COMMIT on every call: about 0.8 ms of CPU per lookup on PostgreSQL, most of the cost of
a protected request (docs/benchmarks.md, "the database path"). Here the statement is built
once per Identity. On PostgreSQL it runs on a few asyncpg connections of the provider's own
(one round trip, no transaction, prepared once per connection): lending a connection
through SQLAlchemy's pool alone costs more than the query. Elsewhere it runs through
SQLAlchemy. Rows come back exactly as the Store returns them: the column types' own result
processors convert each value.

Read-only, and only where the Store would read the database: with secondary storage, or on
an in-memory SQLite database (one shared connection, serialised by the Store), the Store's
own `find_session` is used. Failures come out as the Store's would: `DatabaseUnavailable`
when the database does not answer (IdentityAuth then answers 503), `DatabaseError` else.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, bindparam, event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.identity.db import Database, Row
from bastion.identity.db.direct import connection_failed

if TYPE_CHECKING:
    from bastion.identity import Identity

__all__ = ["SessionLookup", "SessionWithUser", "session_lookup"]

SessionWithUser = tuple[Row, Row]
_Processor = Callable[[Any], Any] | None


class SessionLookup:
    """`await lookup(token)` → `(session, user)` or None; `await lookup.aclose()`."""

    def __init__(self, find: Callable[[str], Awaitable[SessionWithUser | None]]) -> None:
        self._find = find

    async def __call__(self, token: str) -> SessionWithUser | None:
        return await self._find(token)

    async def aclose(self) -> None:
        return None


def session_lookup(identity: Identity, *, connections: int = 8) -> SessionLookup:
    """The fastest lookup that answers as `identity.store.find_session` does.

    `connections`: at most this many PostgreSQL connections of its own (opened on demand,
    closed by `aclose`)."""
    store = identity.store
    db = store.db
    if store.secondary is not None or not isinstance(db, Database) or db.url.memory:
        return SessionLookup(store.find_session)
    return _PrebuiltLookup(db, connections)


class _PrebuiltLookup(SessionLookup):
    def __init__(self, db: Database, connections: int) -> None:
        schema = db.schema
        reference = schema.fields("session")["userId"].references
        assert reference is not None  # the core schema declares it
        session = db.metadata.tables[schema.table_name("session")]
        user = db.metadata.tables[schema.table_name(reference.model)]
        self._session_fields = list(schema.fields("session"))
        self._user_fields = list(schema.fields(reference.model))
        columns = [session.c[n] for n in self._session_fields]
        columns += [user.c[n] for n in self._user_fields]
        # No LIMIT: the token is unique, and a LIMIT would be one more bound parameter.
        self._statement = (
            select(*(c.label(f"c{i}") for i, c in enumerate(columns)))
            .select_from(session.join(user, session.c["userId"] == user.c[reference.field]))
            .where(session.c["token"] == bindparam("token"))
        )
        self._db = db
        self._engine = db.engine
        dialect = db.engine.dialect
        self._processors: list[_Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]
        self._pg: _PgConnections | None = None
        # SQLAlchemy decodes JSON in codecs it installs on its own connections; a table with
        # a JSON field is left to it.
        has_json = any(
            isinstance(c.type, JSON) or isinstance(getattr(c.type, "impl", None), JSON)
            for c in columns
        )
        if db.dialect == "postgresql" and dialect.driver == "asyncpg" and not has_json:
            compiled = self._statement.compile(dialect=dialect)
            if list(compiled.positiontup or ()) == ["token"]:
                self._pg = _PgConnections(db, str(compiled), connections)
        super().__init__(self._lookup)

    async def _lookup(self, token: str) -> SessionWithUser | None:
        values: Sequence[Any] | None
        if self._pg is not None:
            values = await self._pg.fetchrow(token)
        else:
            try:
                async with self._engine.connect() as conn:
                    values = (await conn.execute(self._statement, {"token": token})).first()
            except (DBAPIError, OSError, TimeoutError) as exc:
                raise self._db.error_of(exc) from exc
        if values is None:
            return None
        converted = [
            value if process is None or value is None else process(value)
            for process, value in zip(self._processors, values, strict=True)
        ]
        count = len(self._session_fields)
        return (
            dict(zip(self._session_fields, converted[:count], strict=True)),
            dict(zip(self._user_fields, converted[count:], strict=True)),
        )

    async def aclose(self) -> None:
        if self._pg is not None:
            await self._pg.aclose()


class _PgConnections:
    """A handful of asyncpg connections for one prepared query, handed out in turn.

    Opened on demand with the engine's own connection arguments (host, credentials, TLS),
    closed after `_RECYCLE` seconds as the Identity's pool recycles its own, and dropped when
    they fail; a query that meets a dead connection is retried once on a new one (it only
    reads). What fails is raised as the database's own error (`Database.error_of`):
    `DatabaseUnavailable` when no connection could be had or kept.
    """

    _RECYCLE = 1800.0
    _CONNECT_TIMEOUT = 10.0

    def __init__(self, db: Database, sql: str, size: int) -> None:
        if size < 1:
            raise ValueError("connections must be >= 1")
        engine: AsyncEngine = db.engine
        self._error_of = db.error_of
        self._asyncpg: Any = importlib.import_module("asyncpg")  # untyped; PostgreSQL only
        _, kwargs = engine.dialect.create_connect_args(engine.url)
        self._connect_args: dict[str, Any] = dict(kwargs)
        self._sql = sql
        self._size = size
        self._opened = 0
        self._free: list[tuple[Any, float]] = []  # (connection, opened at)
        self._waiters: deque[asyncio.Future[tuple[Any, float] | None]] = deque()
        self._closed = False
        # `identity.close()` disposes the engine: these connections go with its pool, so an
        # application that closes only its Identity leaves none open. Like the engine, the
        # lookup opens new ones if used again.
        self._engine = engine.sync_engine
        self._disposed_at = 0.0
        event.listen(self._engine, "engine_disposed", self._on_dispose)

    async def fetchrow(self, token: str) -> Sequence[Any] | None:
        for attempt in (1, 2):
            conn, opened = await self._acquire()
            healthy = True
            try:
                row: Sequence[Any] | None = await conn.fetchrow(self._sql, token)
                return row
            except Exception as exc:
                if not connection_failed(exc, conn):
                    # The server refused the query; the connection is fine.
                    raise self._error_of(exc) from exc
                # The connection broke: so, likely, did the others opened before it (a
                # server restart). Drop them all, as SQLAlchemy invalidates its pool, and
                # retry once on a new connection.
                healthy = False
                self._drop_idle()
                if attempt == 2:
                    raise self._error_of(exc, broken=True) from exc
            except BaseException:
                healthy = False  # cancelled mid-query: the connection's state is unknown
                raise
            finally:
                self._release(conn, opened, healthy)
        raise AssertionError("unreachable")

    async def _acquire(self) -> tuple[Any, float]:
        if self._closed:
            raise RuntimeError("the session lookup is closed")
        if self._free:
            return self._free.pop()
        if self._opened < self._size:
            return await self._open()
        waiter: asyncio.Future[tuple[Any, float] | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            handed = await waiter
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()  # handed over just as we were cancelled: pass it on
                if handed is not None:
                    self._give(handed)
                else:
                    self._wake(None)
            raise
        return handed if handed is not None else await self._open()

    async def _open(self) -> tuple[Any, float]:
        self._opened += 1
        try:
            conn = await self._asyncpg.connect(**self._connect_args, timeout=self._CONNECT_TIMEOUT)
        except BaseException as exc:
            self._opened -= 1
            self._wake(None)
            if isinstance(exc, Exception):  # refused, timed out, "starting up", ...
                raise self._error_of(exc, broken=True) from exc
            raise
        return conn, time.monotonic()

    def _release(self, conn: Any, opened: float, healthy: bool) -> None:
        expired = time.monotonic() - opened > self._RECYCLE or opened <= self._disposed_at
        if healthy and not expired and not self._closed and not conn.is_closed():
            self._give((conn, opened))
            return
        self._opened -= 1
        conn.terminate()  # no round trip; a broken or retired connection needs none
        self._wake(None)  # a slot is free: the next waiter opens a connection

    def _give(self, entry: tuple[Any, float]) -> None:
        if not self._wake(entry):
            self._free.append(entry)

    def _wake(self, entry: tuple[Any, float] | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(entry)
                return True
        return False

    def _on_dispose(self, _engine: Any) -> None:
        self._drop_idle()

    def _drop_idle(self) -> None:
        """Terminate the idle connections (synchronously: no goodbye round trip), and the
        busy ones when they come back."""
        self._disposed_at = time.monotonic()
        free, self._free = self._free, []
        for conn, _ in free:
            self._opened -= 1
            conn.terminate()
        self._wake(None)

    async def aclose(self) -> None:
        if event.contains(self._engine, "engine_disposed", self._on_dispose):
            event.remove(self._engine, "engine_disposed", self._on_dispose)
        self._closed = True
        free, self._free = self._free, []
        for conn, _ in free:
            self._opened -= 1
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("the session lookup is closed"))
