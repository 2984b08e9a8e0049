"""Single-statement reads on PostgreSQL, straight through asyncpg.

On the benchmark machine a find-session through SQLAlchemy's async engine costs ~0.45 ms of
CPU (connection checkout and return through greenlets, execution context, result objects);
the same query on an asyncpg connection costs ~0.05 ms, and the difference was most of a
get-session (docs/benchmarks.md). So the adapter's reads of statements it built once (see
shapes.py) run here: each statement is compiled once by SQLAlchemy for the asyncpg dialect —
the same SQL, the same bound-parameter and result conversions SQLAlchemy applies — and executed
with `asyncpg.Connection.fetch` on a few connections the database keeps checked out of
SQLAlchemy's pool (so they were opened, authenticated and set up by SQLAlchemy itself). Outside
a transaction each statement commits on its own, as a read in autocommit does. Lookups of one
row by a text key that arrive together (the session by its token, under concurrent requests)
share one statement (`fetch_one_by`).

Writes and transactions stay on SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import importlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["BATCH_SIZES", "DirectReads", "Plan", "connection_failed"]

Processor = Callable[[Any], Any] | None


class Plan:
    """One statement compiled for asyncpg: its SQL, its parameters in order with their
    conversions, and its columns' names and conversions."""

    __slots__ = ("_binds", "_dialect", "_results", "_types", "names", "sql")

    def __init__(self, stmt: Any, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql: str = compiled.string
        self._dialect = dialect
        # (name, the statement's own value such as a LIMIT, conversion) per $n, in order.
        self._binds: list[tuple[str, Any, Processor]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self._binds.append((name, bind.effective_value, process))
        columns = list(stmt.selected_columns)
        self.names: tuple[str, ...] = tuple(stmt.selected_columns.keys())
        self._types = [column.type for column in columns]
        self._results: list[Processor] | None = None

    def arguments(self, params: dict[str, Any]) -> list[Any]:
        out = []
        for name, own, process in self._binds:
            value = params.get(name, own)
            out.append(value if process is None else process(value))
        return out

    async def prepare(self, connection: Any) -> None:
        """Learn the result columns' types from the server, once: a conversion may depend on
        them (as SQLAlchemy asks the cursor's description)."""
        if self._results is not None:
            return
        statement = await connection.prepare(self.sql)
        dialect = self._dialect
        self._results = [
            type_.dialect_impl(dialect).result_processor(dialect, attribute.type.oid)
            for type_, attribute in zip(self._types, statement.get_attributes(), strict=True)
        ]

    def row(self, record: Sequence[Any]) -> tuple[Any, ...]:
        assert self._results is not None
        return tuple(
            value if process is None else process(value)
            for value, process in zip(record, self._results, strict=True)
        )


class _Held:
    """A connection checked out of SQLAlchemy's pool for direct reads."""

    __slots__ = ("driver", "generation", "owner", "since")

    def __init__(self, owner: AsyncConnection, driver: Any, generation: int) -> None:
        self.owner = owner
        self.driver = driver
        self.generation = generation
        self.since = time.monotonic()


_ELSEWHERE: Final = object()  # a batch's answer: read through SQLAlchemy instead


# How many keys the statements of a batch look up: the keys, then None (which matches nothing)
# up to the next size. Each statement is a UNION ALL of the one-key lookup, so each key is an
# index probe, as alone, and PostgreSQL plans each statement once (a prepared statement's
# generic plan). `key = ANY($1)` with an array was planned anew at every execution (~45 µs
# more); an IN list was planned as a sequential scan on a table of a thousand sessions.
BATCH_SIZES: Final = (1, 2, 4, 8, 16, 32)


class _Batch:
    """Reads of one row by key that will run as one statement: the first read's key (it
    sends the statement) and a future for each later one."""

    __slots__ = ("column", "first", "names", "statements", "waiters")

    def __init__(
        self, statements: Sequence[Any], names: tuple[str, ...], column: int, first: str
    ) -> None:
        self.statements = statements
        self.names = names
        self.column = column
        self.first = first
        self.waiters: list[tuple[str, asyncio.Future[Any]]] = []

    def full(self) -> bool:
        return len(self.waiters) + 1 >= BATCH_SIZES[-1]

    def keys(self) -> list[str]:
        return list(dict.fromkeys([self.first, *(key for key, _ in self.waiters)]))

    def rows(self, rows: list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
        """Each key's row (the first, as LIMIT 1 would give)."""
        found: dict[str, tuple[Any, ...]] = {}
        column = self.column
        for row in rows:
            found.setdefault(row[column], row)
        return found

    def answer(self, row_of: Callable[[str], Any]) -> None:
        for key, waiter in self.waiters:
            if not waiter.done():  # a waiter whose request was cancelled is gone
                waiter.set_result(row_of(key))

    def fail(self, exc: Exception) -> None:
        for _, waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(exc)


class DirectReads:
    """Up to `size` connections held out of SQLAlchemy's pool (`checkout` lends one), one
    read at a time each.

    A connection whose read failed in any way but a statement error from the server (lost
    connection, timed-out read, driver error) is invalidated in SQLAlchemy's pool, which
    reconnects it on its next checkout, and so are the idle ones; the read is tried once more.
    A cancelled read invalidates its own connection only. `translate(error, broken)` turns
    what asyncpg raised into the adapter's errors. A connection held longer than `recycle`
    seconds goes back to the pool, which recycles it.
    The connections belong to the event loop that opened them: from another loop, `fetch`
    answers None and the caller reads through SQLAlchemy.
    """

    def __init__(
        self,
        checkout: Callable[[], Awaitable[AsyncConnection]],
        dialect: Dialect,
        *,
        size: int,
        recycle: float,
        translate: Callable[[Exception, bool], Exception],
    ) -> None:
        self._checkout = checkout
        self._dialect = dialect
        self._size = size
        self._recycle = recycle
        self._translate = translate
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: asyncio.LifoQueue[_Held] | None = None
        self._count = 0
        self._generation = 0  # close() starts a new one: older connections are not reused
        self._plans: dict[int, tuple[Any, Plan]] = {}  # by id of a statement the adapter keeps
        self._closing: set[asyncio.Task[None]] = set()
        self._batches: dict[int, _Batch] = {}  # by id of the statement, not yet sent
        self._handed: set[asyncio.Task[None]] = set()

    async def fetch(
        self, stmt: Any, params: dict[str, Any]
    ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]] | None:
        """(column names, rows) of `stmt`, which the caller keeps for the database's
        lifetime; None when this loop does not own the connections."""
        if not self._owned():
            return None
        plan = self._plan(stmt)
        return plan.names, await self._run(plan, plan.arguments(params))

    async def fetch_one_by(
        self, statements: Sequence[Any], column: int, key: str
    ) -> tuple[tuple[str, ...], tuple[Any, ...] | None] | None:
        """(column names, the row whose `column` equals `key`, or None); None when this
        loop does not own the connections.

        `statements` (kept for the database's lifetime) select the rows of as many keys as
        each size of BATCH_SIZES, bound as k0, k1, …. The reads asked in the same turn of
        the event loop, or while the connections are all busy, share one execution: each
        is answered from its own key's row, by exact string equality, as the database
        compares text. A batch is sent after every read in it was asked for, so each sees
        what was committed before it was asked.
        """
        if not self._owned():
            return None
        batch = self._batches.get(id(statements))
        if batch is not None and not batch.full():
            assert self._loop is not None
            waiter = self._loop.create_future()
            batch.waiters.append((key, waiter))
            row = await waiter
            return None if row is _ELSEWHERE else (batch.names, row)
        names = self._plan(statements[0]).names
        batch = self._batches[id(statements)] = _Batch(statements, names, column, key)
        # This read sends the batch; a cancelled one hands it to a task of its own, since
        # the others' answers must not go with it.
        try:
            await asyncio.sleep(0)  # the reads asked in this turn of the loop join it
            found = await self._send(batch, id(statements))
        except asyncio.CancelledError:
            self._unlist(batch, id(statements))
            if batch.waiters:
                task = asyncio.ensure_future(self._answer(batch, id(statements)))
                self._handed.add(task)  # kept alive; close() need not wait for it
                task.add_done_callback(self._handed.discard)
            raise
        except Exception as exc:
            batch.fail(exc)
            raise
        batch.answer(found.get)
        return names, found.get(key)

    async def _send(self, batch: _Batch, key: int) -> dict[str, tuple[Any, ...]]:
        """Each key of `batch`'s row, once a connection is free."""
        try:
            held = await self._acquire()
        finally:
            self._unlist(batch, key)  # reads from now on start the next batch
        try:
            keys = batch.keys()
            size = bisect.bisect_left(BATCH_SIZES, len(keys))
            plan = self._plan(batch.statements[size])
            bound: dict[str, str | None] = {f"k{i}": None for i in range(BATCH_SIZES[size])}
            bound.update((f"k{i}", k) for i, k in enumerate(keys))
            arguments = plan.arguments(bound)
        except BaseException:
            self._release(held)  # not this connection's fault
            raise
        return batch.rows(await self._run(plan, arguments, held))

    async def _answer(self, batch: _Batch, key: int) -> None:
        """Send `batch` for its waiters, the read that was to send it having gone."""
        if not self._owned():  # closed, and another loop's since: SQLAlchemy reads
            batch.answer(lambda _: _ELSEWHERE)
            return
        batch.first = batch.waiters[0][0]
        try:
            found = await self._send(batch, key)
        except Exception as exc:
            batch.fail(exc)
        else:
            batch.answer(found.get)

    def _unlist(self, batch: _Batch, key: int) -> None:
        if self._batches.get(key) is batch:
            del self._batches[key]

    async def _run(
        self, plan: Plan, arguments: list[Any], held: _Held | None = None
    ) -> list[tuple[Any, ...]]:
        """`plan`'s converted rows, on `held` or a connection of the idle ones; once more
        on a new connection if the first one broke."""
        for attempt in (1, 2):
            if held is None:
                held = await self._acquire()
            try:
                await plan.prepare(held.driver)
                records = await held.driver.fetch(plan.sql, *arguments)
            except BaseException as exc:
                broken = connection_failed(exc, held.driver)
                if not broken:
                    self._release(held)
                else:
                    # A read cancelled midway (a client that hung up) leaves its connection in
                    # an unknown state: that one goes, and the cancellation goes on.
                    self._discard(held)
                    if isinstance(exc, Exception):
                        # As SQLAlchemy's pool after a disconnect: the idle connections were
                        # opened before it too (a server restart ends them all).
                        while self._idle is not None and not self._idle.empty():
                            self._discard(self._idle.get_nowait())
                        if attempt == 1:
                            held = None
                            continue  # a read may be repeated: once more, on a new connection
                if isinstance(exc, Exception):
                    raise self._translate(exc, broken) from exc
                raise
            self._release(held)
            return [plan.row(record) for record in records]
        raise AssertionError("unreachable")  # the second attempt returns or raises

    def _owned(self) -> bool:
        """Whether this loop owns the connections (the first loop to read does)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                return False
            self._loop, self._idle = loop, asyncio.LifoQueue()
        return True

    async def close(self) -> None:
        """Return the idle connections to the pool (before it is disposed)."""
        idle, self._idle, self._loop = self._idle, None, None
        self._batches = {}  # a batch not yet running answers from wherever it then can
        self._count = 0
        self._generation += 1
        while idle is not None and not idle.empty():
            held = idle.get_nowait()
            # Already broken, or another loop's: the pool's dispose ends it.
            with contextlib.suppress(Exception):
                await held.owner.close()
        # Connections still being returned or invalidated in the background: done before the
        # pool is disposed, or they would outlive it (a database that cannot be dropped).
        loop = asyncio.get_running_loop()
        pending = [task for task in self._closing if task.get_loop() is loop]
        await asyncio.gather(*pending, return_exceptions=True)

    def _plan(self, stmt: Any) -> Plan:
        found = self._plans.get(id(stmt))
        if found is None or found[0] is not stmt:
            found = (stmt, Plan(stmt, self._dialect))
            self._plans[id(stmt)] = found
        return found[1]

    async def _acquire(self) -> _Held:
        assert self._idle is not None
        if not self._idle.empty():
            return self._idle.get_nowait()
        if self._count >= self._size:
            return await self._idle.get()
        self._count += 1
        try:
            owner = await self._checkout()
        except BaseException:
            self._count -= 1
            raise
        try:
            raw = await owner.get_raw_connection()
        except BaseException:
            self._count -= 1
            self._later(owner.close())
            raise
        return _Held(owner, raw.driver_connection, self._generation)

    def _release(self, held: _Held) -> None:
        if self._idle is None or held.generation != self._generation:  # closed meanwhile
            self._later(held.owner.close())
        elif time.monotonic() - held.since > self._recycle:
            self._count -= 1
            self._later(held.owner.close())
        else:
            self._idle.put_nowait(held)

    def _discard(self, held: _Held) -> None:
        if self._idle is not None and held.generation == self._generation:
            self._count -= 1
        held.driver.terminate()
        self._later(_invalidate(held.owner))

    def _later(self, work: Any) -> None:
        # Not awaited here: the failed read may be a cancelled task.
        task = asyncio.ensure_future(work)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _invalidate(owner: AsyncConnection) -> None:
    try:
        await owner.invalidate()
    finally:
        await owner.close()


# SQLSTATE classes of a server error that is about the connection or the server, not the
# statement: 08 connection exception, 53 insufficient resources (too many connections),
# 57 operator intervention (shutdown, restart, "the database system is starting up").
_SERVER_GONE = ("08", "53", "57")


def connection_failed(exc: BaseException, connection: Any) -> bool:
    """Whether `exc`, raised by asyncpg on `connection`, means that the connection (or the
    server) is gone, rather than that the server refused this one statement: anything but a
    server error, an error after which the connection is closed, or a server error of a
    class that is about the server (a shutdown announces itself with one, then closes)."""
    asyncpg: Any = importlib.import_module("asyncpg")  # untyped; PostgreSQL only
    if not isinstance(exc, asyncpg.PostgresError) or connection.is_closed():
        return True
    return str(getattr(exc, "sqlstate", "") or "").startswith(_SERVER_GONE)
