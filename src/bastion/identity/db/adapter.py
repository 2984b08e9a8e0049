"""The generic adapter: create, find, update, delete and count rows of any schema table.

Rows are plain dicts keyed by the logical (camelCase) field names. Defaults are applied
here, as better-auth's adapter applies them, because the DDL carries almost none.
"""

from __future__ import annotations

import asyncio
import operator
import os
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime
from itertools import count
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..crypto import generate_id
from .direct import BATCH_SIZES, DirectReads
from .engine import POOL_RECYCLE, create_engine
from .errors import DatabaseError, DatabaseUnavailable, UnknownField
from .schema import CORE_SCHEMA, NOW, Field, Schema
from .shapes import Shape, where_shape
from .tables import build_metadata
from .translate import TRANSLATED, reason, translate, translate_driver
from .types import to_utc_ms, utc_now
from .url import DatabaseURL, parse_database_url
from .where import AllOf, AnyOf, Condition, Where

__all__ = ["Database", "Row", "Transaction"]

Row = dict[str, Any]
OrderBy = str | Sequence[str]


class _Operations(ABC):
    """The operations, over whatever connection `_connection()` yields."""

    schema: Schema
    _tables: dict[str, Table]
    _fields: dict[str, dict[str, Field]]
    _clock: Callable[[], datetime]
    _new_id: Callable[[], str]
    _update_returning: bool
    _statements: dict[Hashable, Any]  # shared with the transactions of one Database

    @abstractmethod
    def _connection(self, *, write: bool) -> AbstractAsyncContextManager[AsyncConnection]:
        """Where this object's statements run: a fresh transaction, or the open one."""

    async def create(self, model: str, data: Mapping[str, Any]) -> Row:
        """Insert one row; fills `id`, defaults and NOW fields. Returns the whole row."""
        fields = self._model_fields(model)
        row = self._check(model, data)
        now = self._clock()
        row.setdefault("id", self._new_id())
        for name, f in fields.items():
            if name in row:
                continue
            if f.default is NOW or f.on_update is NOW:
                row[name] = now
            elif callable(f.default):
                row[name] = f.default()
            elif f.default is not None:
                row[name] = f.default
        # One INSERT per table: SQLAlchemy takes the columns from the parameters' keys.
        stmt, _ = self._statement(("insert", model), lambda: insert(self._table(model)))
        async with self._connection(write=True) as conn:
            await conn.execute(stmt, row)
        return {name: _normalize(f, row.get(name)) for name, f in fields.items()}

    async def find_one(
        self, model: str, where: Where, *, select: Sequence[str] | None = None
    ) -> Row | None:
        rows = await self.find_many(model, where, select=select, limit=1)
        return rows[0] if rows else None

    async def find_many(
        self,
        model: str,
        where: Where | None = None,
        *,
        order_by: OrderBy | None = None,
        limit: int | None = None,
        offset: int | None = None,
        select: Sequence[str] | None = None,
    ) -> list[Row]:
        """Rows matching `where`. `order_by` names fields, `-field` for descending."""
        orders = (order_by,) if isinstance(order_by, str) else tuple(order_by or ())
        names = None if select is None else tuple(select)

        def build(clause: ColumnElement[bool]) -> Any:
            table = self._table(model)
            stmt = self._select(model, names).where(clause)
            for name in orders:
                desc = name.startswith("-")
                column = table.c[self._known(model, name.lstrip("-"))]
                stmt = stmt.order_by(column.desc() if desc else column.asc())
            if limit is not None:
                stmt = stmt.limit(limit)
            if offset:
                stmt = stmt.offset(offset)
            return stmt

        key = ("many", model, orders, limit, offset, names)
        columns, rows = await self._read(*self._shaped(key, model, where, build))
        return [dict(zip(columns, row, strict=True)) for row in rows]

    async def find_one_with_reference(
        self, model: str, where: Where, reference: str
    ) -> tuple[Row, Row] | None:
        """One row and the row its `reference` field points to, in one query.

        `await db.find_one_with_reference("session", eq("token", t), "userId")` gives
        `(session, user)`, or None when either is missing.
        """
        target = self._referenced(model, reference)
        key = ("reference", model, reference)

        def build(clause: ColumnElement[bool]) -> Any:
            return self._joined(model, reference).where(clause).limit(1)

        _, rows = await self._read(*self._shaped(key, model, where, build))
        return self._pair(model, target, rows[0]) if rows else None

    def _referenced(self, model: str, reference: str) -> str:
        """The model that `model.reference` points to."""
        f = self._model_fields(model).get(reference)
        if f is None or f.references is None:
            raise UnknownField(f"{model}.{reference} is not a reference")
        return f.references.model

    def _joined(self, model: str, reference: str) -> Any:
        """SELECT the fields of `model`, then of the model `reference` points to (as
        r_<name>), from the two joined on it."""
        f = self._model_fields(model)[reference]
        assert f.references is not None
        target, field = f.references.model, f.references.field
        table, other = self._table(model), self._table(target)
        theirs = [other.c[n].label(f"r_{n}") for n in self._model_fields(target)]
        return select(*self._labelled(model), *theirs).select_from(
            table.join(other, table.c[reference] == other.c[field])
        )

    def _pair(self, model: str, target: str, found: Sequence[Any]) -> tuple[Row, Row]:
        # The columns come in the schema's order: this model's, then the referenced one's.
        mine, theirs = self._model_fields(model), self._model_fields(target)
        return (
            dict(zip(mine, found[: len(mine)], strict=True)),
            dict(zip(theirs, found[len(mine) :], strict=True)),
        )

    async def count(self, model: str, where: Where | None = None) -> int:
        def build(clause: ColumnElement[bool]) -> Any:
            return select(func.count()).select_from(self._table(model)).where(clause)

        _, rows = await self._read(*self._shaped(("count", model), model, where, build))
        return int(rows[0][0])

    async def update(self, model: str, where: Where, values: Mapping[str, Any]) -> Row | None:
        """Update the row `where` identifies; return it as updated, or None if none matched."""
        table = self._table(model)
        values = self._updates(model, values)
        if self._update_returning:
            # Kept per shape of `where` and set of columns, as update_many's and reads are.
            names = tuple(values)

            def build(clause: ColumnElement[bool]) -> Any:
                sets = {n: bindparam(f"set_{n}", type_=table.c[n].type) for n in names}
                returned = self._labelled(model)
                return update(table).where(clause).values(sets).returning(*returned)

            key = ("update-returning", model, names)
            stmt, params, _ = self._shaped(key, model, where, build)
            params.update({f"set_{n}": value for n, value in values.items()})
            async with self._connection(write=True) as conn:
                row = (await conn.execute(stmt, params)).mappings().first()
                return dict(row) if row is not None else None
        clause = self._clause(model, where)
        async with self._connection(write=True) as conn:
            # MySQL/MariaDB: no UPDATE … RETURNING. Find the ids first, since `values` may
            # change the very fields `where` matched on.
            ids = (await conn.execute(select(table.c.id).where(clause))).scalars().all()
            if not ids:
                return None
            await conn.execute(update(table).where(table.c.id.in_(ids)).values(values))
            found = await conn.execute(self._select(model, None).where(table.c.id == ids[0]))
            row = found.mappings().first()
            return dict(row) if row is not None else None

    async def update_many(self, model: str, where: Where, values: Mapping[str, Any]) -> int:
        """Update every row `where` matches; how many. The statement is kept per shape of
        `where` and set of columns, as reads are (compiling it anew cost ~1 ms a call)."""
        row = self._updates(model, values)
        names = tuple(row)

        def build(clause: ColumnElement[bool]) -> Any:
            table = self._table(model)
            sets = {n: bindparam(f"set_{n}", type_=table.c[n].type) for n in names}
            return update(table).where(clause).values(sets)

        stmt, params, _ = self._shaped(("update", model, names), model, where, build)
        params.update({f"set_{n}": value for n, value in row.items()})
        async with self._connection(write=True) as conn:
            return (await conn.execute(stmt, params)).rowcount

    async def increment(
        self,
        model: str,
        where: Where,
        increments: Mapping[str, int],
        set: Mapping[str, Any] | None = None,
    ) -> Row | None:
        """Add `increments` to numeric fields of one row `where` matches (and write `set`),
        the condition and the change in one step: concurrent callers cannot both pass a
        condition such as `lt("memberCount", 5)`. The row as changed, or None if none matched.

        As better-auth's `incrementOne`: `set` stamps `updatedAt`-like fields, a bare
        increment does not (a counter is not an edit of the row).
        """
        if not increments and not set:
            raise ValueError("increment: nothing to increment or set")
        table = self._table(model)
        values: dict[str, Any] = self._updates(model, set) if set else {}
        for name, delta in increments.items():
            column = table.c[self._known(model, name)]
            values[name] = column + int(delta)
        clause = self._clause(model, where)
        async with self._connection(write=True) as conn:
            if self._update_returning:
                # The WHERE is repeated on the UPDATE so a row changed meanwhile is
                # re-checked under its lock (PostgreSQL re-evaluates it), not trusted.
                one = select(table.c.id).where(clause).limit(1).scalar_subquery()
                stmt = update(table).where(clause, table.c.id == one).values(values)
                found = await conn.execute(stmt.returning(*self._labelled(model)))
                row = found.mappings().first()
                return dict(row) if row is not None else None
            # MySQL/MariaDB: no UPDATE … RETURNING. Lock the row, change it if it still
            # matches, read it back: all in this statement's transaction.
            locked = select(table.c.id).where(clause).limit(1).with_for_update()
            target = (await conn.execute(locked)).scalar()
            if target is None:
                return None
            changed = await conn.execute(
                update(table).where(clause, table.c.id == target).values(values)
            )
            if changed.rowcount == 0:
                return None
            again = await conn.execute(self._select(model, None).where(table.c.id == target))
            row = again.mappings().first()
            return dict(row) if row is not None else None

    async def delete(self, model: str, where: Where) -> bool:
        """Delete the row(s) `where` identifies; whether anything was deleted."""
        return await self.delete_many(model, where) > 0

    async def delete_many(self, model: str, where: Where) -> int:
        def build(clause: ColumnElement[bool]) -> Any:
            return delete(self._table(model)).where(clause)

        stmt, params, _ = self._shaped(("delete", model), model, where, build)
        async with self._connection(write=True) as conn:
            return (await conn.execute(stmt, params)).rowcount

    async def _read(
        self, stmt: Any, params: dict[str, Any], kept: bool
    ) -> tuple[Sequence[str], Sequence[Sequence[Any]]]:
        """Column names and rows of a SELECT. `kept`: the statement is one of `_statements`."""
        async with self._connection(write=False) as conn:
            result = await conn.execute(stmt, params)
            return list(result.keys()), result.all()

    # -- building statements -------------------------------------------------------------

    def _statement(self, key: Hashable, build: Callable[[], Any]) -> tuple[Any, bool]:
        """The statement for `key`, built on first use and kept (at most _MAX_STATEMENTS:
        keys hold limits and column lists, which callers choose); whether it is kept."""
        stmt = self._statements.get(key)
        if stmt is not None:
            return stmt, True
        stmt = build()
        if len(self._statements) >= _MAX_STATEMENTS:
            return stmt, False
        self._statements[key] = stmt
        return stmt, True

    def _shaped(
        self,
        key: tuple[Any, ...],
        model: str,
        where: Where | None,
        build: Callable[[ColumnElement[bool]], Any],
    ) -> tuple[Any, dict[str, Any], bool]:
        """`build(clause)` for `where`, reused for every `where` of the same shape, the
        parameters that bind this call's values to it, and whether the statement is kept."""
        shaped = where_shape(where)
        if shaped is None:
            return build(self._clause(model, where)), {}, False
        shape, values = shaped
        names = (f"w{i}" for i in count())
        stmt, kept = self._statement(
            (*key, shape), lambda: build(self._shaped_clause(model, shape, names))
        )
        return stmt, {f"w{i}": value for i, value in enumerate(values)}, kept

    def _shaped_clause(self, model: str, shape: Shape, names: Iterator[str]) -> ColumnElement[bool]:
        """The clause of a `where_shape`, with a bound parameter per value, named in order."""
        kind = shape[0]
        if kind == "all":
            return true()
        if kind in ("and", "or"):
            parts = [self._shaped_clause(model, part, names) for part in shape[1]]
            if not parts:
                return true() if kind == "and" else false()
            return and_(*parts) if kind == "and" else or_(*parts)
        if len(shape) == 4:  # a constant: None or a boolean
            return self._condition(model, Condition(shape[1], shape[2], shape[3]))
        column = self._table(model).c[self._known(model, shape[1])]
        value = bindparam(next(names), type_=column.type)
        return self._condition(model, Condition(shape[1], shape[2], value))

    def _model_fields(self, model: str) -> dict[str, Field]:
        try:
            return self._fields[model]
        except KeyError:
            raise UnknownField(f"no table {model!r} in the schema") from None

    def _table(self, model: str) -> Table:
        self._model_fields(model)
        return self._tables[model]

    def _known(self, model: str, name: str) -> str:
        if name not in self._model_fields(model):
            raise UnknownField(f"no field {name!r} in table {model!r}")
        return name

    def _check(self, model: str, data: Mapping[str, Any]) -> Row:
        fields = self._model_fields(model)
        unknown = [k for k in data if k not in fields]
        if unknown:
            raise UnknownField(f"no field {unknown[0]!r} in table {model!r}")
        return dict(data)

    def _updates(self, model: str, values: Mapping[str, Any]) -> Row:
        row = self._check(model, values)
        row.pop("id", None)
        for name, f in self._model_fields(model).items():
            if f.on_update is NOW and name not in row:
                row[name] = self._clock()
        return row

    def _labelled(self, model: str, names: Sequence[str] | None = None) -> list[Any]:
        table = self._table(model)
        names = names or list(self._model_fields(model))
        return [table.c[self._known(model, n)].label(n) for n in names]

    def _select(self, model: str, names: Sequence[str] | None) -> Any:
        return select(*self._labelled(model, names))

    def _clause(self, model: str, where: Where | None) -> ColumnElement[bool]:
        if where is None:
            return true()
        if isinstance(where, Condition):
            return self._condition(model, where)
        if isinstance(where, AllOf | AnyOf):
            parts = [self._clause(model, p) for p in where.parts]
            if not parts:
                return true() if isinstance(where, AllOf) else false()
            return and_(*parts) if isinstance(where, AllOf) else or_(*parts)
        parts = [self._condition(model, Condition(k, "eq", v)) for k, v in where.items()]
        return and_(*parts) if parts else true()

    def _condition(self, model: str, c: Condition) -> ColumnElement[bool]:
        column = self._table(model).c[self._known(model, c.field)]
        op, value = c.op, c.value
        if op == "eq":
            return column.is_(None) if value is None else column == value
        if op == "ne":
            return column.is_not(None) if value is None else column != value
        if op in _ORDERINGS:
            return _ORDERINGS[op](column, value)
        if op == "in":
            return column.in_(value) if value else false()
        if op == "not_in":
            return column.not_in(value) if value else true()
        pattern = _escape_like(str(value))
        if op == "contains":
            pattern = f"%{pattern}%"
        elif op == "starts_with":
            pattern = f"{pattern}%"
        elif op == "ends_with":
            pattern = f"%{pattern}"
        else:
            raise ValueError(f"unknown operator {op!r}")
        return column.like(pattern, escape="\\")


_MAX_STATEMENTS = 512

_ORDERINGS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}


def _escape_like(value: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", value)


def _normalize(f: Field, value: Any) -> Any:
    """What the database hands back for `value`, without asking it."""
    if value is None:
        return None
    if f.type == "date" and isinstance(value, datetime):
        return to_utc_ms(value)
    if f.type == "boolean":
        return bool(value)
    return value


class Database(_Operations):
    """The database behind an Identity: its engine, its schema and the adapter operations.

    `Database()` opens $DATABASE_URL, or the SQLite file `bastion.db`. Connections are pooled;
    nothing connects until the first operation. Use `async with Database(...)` or `await
    db.close()` to release the pool.
    """

    def __init__(
        self,
        url: str | DatabaseURL | None = None,
        *,
        schema: Schema = CORE_SCHEMA,
        pool_size: int | None = None,
        echo: bool = False,
        clock: Callable[[], datetime] = utc_now,
        id_factory: Callable[[], str] = generate_id,
    ) -> None:
        self.url = url if isinstance(url, DatabaseURL) else parse_database_url(url)
        self.dialect = self.url.dialect
        self.schema = schema
        self.metadata = build_metadata(schema, self.dialect)
        self._tables = {m: self.metadata.tables[schema.table_name(m)] for m in schema}
        self._fields = {m: schema.fields(m) for m in schema}
        self._clock = clock
        self._new_id = id_factory
        self.engine: AsyncEngine = create_engine(self.url, pool_size=pool_size, echo=echo)
        self._update_returning = bool(self.engine.dialect.update_returning)
        self._statements = {}
        # Reads are single statements: on PostgreSQL they run in autocommit, one round trip
        # instead of BEGIN, SELECT, COMMIT. (SQLite's driver begins no transaction for a
        # SELECT anyway; on MySQL switching a connection to autocommit is itself a round trip.)
        self._read_engine: AsyncEngine | None = None
        self._direct: DirectReads | None = None
        if self.dialect == "postgresql":
            self._read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            pool = self.engine.pool.size()  # type: ignore[attr-defined]
            if (
                self.engine.dialect.driver == "asyncpg" and pool >= 4
            ):  # the statements kept above, straight through asyncpg (direct.py)
                self._direct = DirectReads(
                    lambda: self._checkout(self.engine),
                    self.engine.dialect,
                    size=pool // 4,
                    recycle=POOL_RECYCLE,
                    translate=lambda exc, broken: translate_driver(exc, broken, self.url),
                )
        # SQLite takes one writer at a time; queueing writers here avoids "database is
        # locked" under load. In memory there is one shared connection, so everything queues.
        lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._write_lock = lock
        self._read_lock = lock if self.url.memory else None
        self._sqlite_folder: str | None = None
        if self.dialect == "sqlite" and not self.url.memory:
            path = os.path.expanduser(self.url.url.database or "")
            self._sqlite_folder = os.path.dirname(os.path.abspath(path))

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """`async with db.transaction() as tx:` — the same operations, committed together."""
        return self._transaction()

    async def _read(
        self, stmt: Any, params: dict[str, Any], kept: bool
    ) -> tuple[Sequence[str], Sequence[Sequence[Any]]]:
        if kept and self._direct is not None:
            found = await self._direct.fetch(stmt, params)
            if found is not None:
                return found
        return await super()._read(stmt, params, kept)

    async def find_one_with_reference(
        self, model: str, where: Where, reference: str
    ) -> tuple[Row, Row] | None:
        # On asyncpg, the lookups by one text key (the session by its token) that arrive
        # together share one statement (direct.py's BATCH_SIZES): under concurrent requests
        # the round trip, the driver's work and the server's per-statement work are paid
        # once a batch instead of once a request (direct.py, docs/benchmarks.md).
        keyed = self._text_key(model, where) if self._direct is not None else None
        if keyed is not None:
            field, value = keyed
            target = self._referenced(model, reference)

            key = ("reference-batch", model, reference, field)
            built, kept = self._statement(key, lambda: self._batched(model, reference, field))
            if kept:
                assert self._direct is not None
                statements, position = built
                found = await self._direct.fetch_one_by(statements, position, value)
                if found is not None:
                    row = found[1]
                    return None if row is None else self._pair(model, target, row)
        return await super().find_one_with_reference(model, where, reference)

    def _batched(self, model: str, reference: str, field: str) -> tuple[tuple[Any, ...], int]:
        """find_one_with_reference's statements for each of BATCH_SIZES keys of `field`, and
        where the key is in their rows."""
        column = self._table(model).c[field]
        joined = self._joined(model, reference)
        one = [joined.where(column == bindparam(f"k{i}")).limit(1) for i in range(BATCH_SIZES[-1])]
        sizes: tuple[Any, ...] = tuple(
            union_all(*one[:n]) if n > 1 else one[0] for n in BATCH_SIZES
        )
        return sizes, list(self._model_fields(model)).index(field)

    def _text_key(self, model: str, where: Where) -> tuple[str, str] | None:
        """(field, value) when `where` is one text field equal to a text value that can
        share a batch: no NUL, nothing outside ASCII (a value the server or the driver
        refuses would fail every read of its batch)."""
        if isinstance(where, Condition):
            if where.op != "eq":
                return None
            field, value = where.field, where.value
        elif isinstance(where, Mapping) and len(where) == 1:
            ((field, value),) = where.items()
        else:
            return None
        f = self._fields.get(model, {}).get(field)
        if f is None or f.type != "string" or type(value) is not str:
            return None
        if not value.isascii() or "\x00" in value:
            return None
        return field, value

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        async with self._connection(write=True) as conn:
            yield Transaction(self, conn)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A raw SQLAlchemy connection, outside any transaction (for the migrator)."""
        async with self._gate(write=True), self._open() as conn:
            yield conn

    async def ping(self) -> None:
        """Connect once; raises DatabaseUnavailable with the masked URL if that fails."""
        async with self.connect():
            pass

    def error_of(self, exc: Exception, *, broken: bool = False) -> DatabaseError:
        """The adapter's error for `exc`, raised by SQLAlchemy or the driver on a connection
        to this database, for code that runs its own statements (IdentityAuth's session
        lookup): DatabaseUnavailable when the database did not answer or the connection
        failed (`broken`: it did not survive `exc`), else DatabaseError."""
        if isinstance(exc, DatabaseError):
            return exc
        if isinstance(exc, DBAPIError):
            return translate(exc, self.url)
        if isinstance(exc, OSError | TimeoutError):
            return DatabaseUnavailable(f"cannot connect to {self.url.masked}: {reason(exc)}")
        return translate_driver(exc, broken, self.url)

    async def close(self) -> None:
        if self._direct is not None:
            await self._direct.close()
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Database({self.url.masked!r})"

    @asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        if not write and self._read_engine is not None:
            async with self._open(self._read_engine) as conn:
                try:
                    yield conn
                except TRANSLATED as exc:
                    raise translate(exc, self.url) from exc
            return
        async with self._gate(write=write), self._open() as conn:
            try:
                async with conn.begin():
                    yield conn
            except TRANSLATED as exc:  # rolled back: nothing of the transaction is kept
                raise translate(exc, self.url) from exc

    def _gate(self, *, write: bool) -> AbstractAsyncContextManager[Any]:
        lock = self._write_lock if write else self._read_lock
        return lock if lock is not None else nullcontext()

    @asynccontextmanager
    async def _open(self, engine: AsyncEngine | None = None) -> AsyncIterator[AsyncConnection]:
        if self._sqlite_folder is not None:
            # aiosqlite's worker thread outlives a failed open and reports to a closed loop,
            # so refuse the common failure, a missing folder, before trying (once).
            if not await asyncio.to_thread(os.path.isdir, self._sqlite_folder):
                raise DatabaseUnavailable(
                    f"cannot connect to {self.url.masked}: "
                    f"the folder {self._sqlite_folder} does not exist"
                )
            self._sqlite_folder = None
        conn = await self._checkout(engine or self.engine)
        try:
            yield conn
        finally:
            await conn.close()

    async def _checkout(self, engine: AsyncEngine) -> AsyncConnection:
        try:
            return await engine.connect()
        except (DBAPIError, OSError, TimeoutError) as exc:
            raise DatabaseUnavailable(
                f"cannot connect to {self.url.masked}: {reason(exc)}"
            ) from exc


class Transaction(_Operations):
    """The adapter operations inside one open transaction (see `Database.transaction`)."""

    def __init__(self, db: Database, conn: AsyncConnection) -> None:
        self.schema = db.schema
        self._db = db
        self._conn = conn
        self._tables = db._tables
        self._fields = db._fields
        self._clock = db._clock
        self._new_id = db._new_id
        self._update_returning = db._update_returning
        self._statements = db._statements

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Already inside one: what runs here joins it."""
        return nullcontext(self)

    @asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        try:
            yield self._conn
        except TRANSLATED as exc:
            raise translate(exc, self._db.url) from exc
