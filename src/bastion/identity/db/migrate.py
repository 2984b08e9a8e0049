"""Bring a database up to the schema: create missing tables, columns and indexes.

Never drops, alters or rewrites what exists. A required column with no default cannot be
added to a table that has rows (existing rows would have no value), so the plan refuses it,
as better-auth's migrator does. Running it again on an up-to-date database does nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, Table, inspect, text
from sqlalchemy import types as satypes
from sqlalchemy.engine import Connection, Dialect, Inspector
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable

from .adapter import Database
from .errors import MigrationError, UnsafeMigration
from .schema import NOW, Field
from .tables import index_name
from .types import format_iso, to_utc_ms, utc_now

__all__ = ["MigrationPlan", "migrate", "plan_migration"]


@dataclass
class MigrationPlan:
    """What `migrate` would do, as SQL, and what it found wrong without touching."""

    created_tables: list[str] = field(default_factory=list)
    added_columns: list[str] = field(default_factory=list)  # "table.column"
    created_indexes: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.statements and not self.unsafe

    def summary(self) -> str:
        if self.empty:
            return "Nothing to do: the database is up to date."
        parts = []
        if self.created_tables:
            parts.append("create tables " + ", ".join(self.created_tables))
        if self.added_columns:
            parts.append("add columns " + ", ".join(self.added_columns))
        if self.created_indexes:
            parts.append("create indexes " + ", ".join(self.created_indexes))
        return "; ".join(parts) if parts else "Nothing that can be done safely."


async def plan_migration(db: Database, *, now: Callable[[], datetime] = utc_now) -> MigrationPlan:
    """Inspect the database and list the statements that bring it up to `db.schema`."""
    async with db.connect() as conn:
        try:
            return await conn.run_sync(_plan, db, now())
        except DBAPIError as exc:
            raise MigrationError(f"cannot inspect {db.url.masked}: {exc.orig}") from exc


async def migrate(db: Database, *, now: Callable[[], datetime] = utc_now) -> MigrationPlan:
    """Apply the plan, in one transaction where the dialect allows DDL in one.

    Raises UnsafeMigration, with nothing applied, if any step is unsafe.
    """
    plan = await plan_migration(db, now=now)
    if plan.unsafe:
        raise UnsafeMigration("\n".join(plan.unsafe))
    if not plan.statements:
        return plan
    async with db.connect() as conn:
        try:
            async with conn.begin():
                for statement in plan.statements:
                    await conn.exec_driver_sql(statement)
        except DBAPIError as exc:
            raise MigrationError(f"migration failed on {db.url.masked}: {exc.orig}") from exc
    return plan


def _plan(conn: Connection, db: Database, now: datetime) -> MigrationPlan:
    plan = MigrationPlan()
    inspector = inspect(conn)  # one inspector: it caches what it reflects
    existing = set(inspector.get_table_names())
    dialect = conn.dialect
    for model in db.schema:
        table = db.metadata.tables[db.schema.table_name(model)]
        if table.name not in existing:
            plan.created_tables.append(table.name)
            plan.statements.append(_sql(CreateTable(table), dialect))
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                plan.statements.append(_sql(CreateIndex(index), dialect))
            continue
        _plan_columns(plan, conn, inspector, db, model, table, now)
        _plan_indexes(plan, conn, inspector, db, model, table)
    return plan


def _plan_columns(
    plan: MigrationPlan,
    conn: Connection,
    inspector: Inspector,
    db: Database,
    model: str,
    table: Table,
    now: datetime,
) -> None:
    reflected = {c["name"]: c for c in inspector.get_columns(table.name)}
    fields = db.schema.fields(model)
    has_rows: bool | None = None
    for key, f in fields.items():
        column = table.c[key]
        found = reflected.get(column.name)
        if found is not None:
            _check_existing(plan, table.name, column, f, found)
            continue
        default: Any = None  # a literal for the rows that exist
        if f.required:
            if has_rows is None:
                has_rows = _has_rows(conn, table)
            static = _static_default(f, now)
            if has_rows or conn.dialect.name == "sqlite":
                if static is None:
                    plan.unsafe.append(_unsafe_message(table.name, column.name, has_rows))
                    continue
                if column.server_default is None:  # NOW has CURRENT_TIMESTAMP, but not on SQLite
                    default = static
        plan.added_columns.append(f"{table.name}.{column.name}")
        plan.statements.extend(_add_column(table, column, f, default, conn.dialect, db))
    known = {table.c[key].name for key in fields}
    for name, found in reflected.items():
        if name not in known and not found["nullable"] and found.get("default") is None:
            plan.warnings.append(_unwritten_message(table.name, name))


def _check_existing(
    plan: MigrationPlan, table: str, column: Column[Any], f: Field, found: ReflectedColumn
) -> None:
    want, have = _family(column.type), _family(found["type"])
    if want != have and not {want, have} <= _COMPATIBLE.get(want, set()):
        plan.warnings.append(
            f"{table}.{column.name} is {found['type']}, expected {want}: left as it is"
        )
    if f.required and found.get("nullable"):
        plan.warnings.append(f"{table}.{column.name} allows NULL but is required")


def _plan_indexes(
    plan: MigrationPlan,
    conn: Connection,
    inspector: Inspector,
    db: Database,
    model: str,
    table: Table,
) -> None:
    have = _existing_indexes(conn, inspector, table.name)

    wanted: list[tuple[str, tuple[str, ...], bool]] = []
    for key, f in db.schema[model].fields.items():
        name = table.c[key].name
        if f.unique:
            wanted.append((index_name(table.name, [name], unique=True), (name,), True))
    for index in table.indexes:
        cols = tuple(c.name for c in index.columns)
        wanted.append((str(index.name), cols, bool(index.unique)))

    for name, cols, unique in wanted:
        if (cols, True) in have or (not unique and (cols, False) in have):
            continue
        if unique and (cols, False) in have:
            plan.warnings.append(
                f"{table.name}({', '.join(cols)}) has an index that is not unique: left as it is"
            )
            continue
        plan.created_indexes.append(name)
        plan.statements.append(_create_index_sql(table, name, cols, unique, conn.dialect))


def _existing_indexes(
    conn: Connection, inspector: Inspector, table: str
) -> set[tuple[tuple[str, ...], bool]]:
    """(columns, unique) of every index and unique constraint on `table`."""
    found: set[tuple[tuple[str, ...], bool]] = set()
    if conn.dialect.name != "sqlite":
        for ix in inspector.get_indexes(table):
            found.add((tuple(c for c in ix["column_names"] if c is not None), bool(ix["unique"])))
        for uc in inspector.get_unique_constraints(table):
            found.add((tuple(uc["column_names"]), True))
        return found
    # SQLite's inline UNIQUE becomes an automatic index the inspector leaves out.
    quoted = conn.dialect.identifier_preparer.quote(table)
    for row in conn.exec_driver_sql(f"PRAGMA index_list({quoted})").mappings():
        iname = conn.dialect.identifier_preparer.quote(row["name"])
        cols = tuple(
            r["name"] for r in conn.exec_driver_sql(f"PRAGMA index_info({iname})").mappings()
        )
        found.add((cols, bool(row["unique"])))
    return found


def _has_rows(conn: Connection, table: Table) -> bool:
    quoted = conn.dialect.identifier_preparer.format_table(table)
    return conn.execute(text(f"SELECT 1 FROM {quoted} LIMIT 1")).first() is not None


def _unwritten_message(table: str, column: str) -> str:
    message = (
        f"{table}.{column} is NOT NULL without a default and not in the schema: inserts into "
        f"{table} will fail until it is made nullable or given a default"
    )
    if (table, column) == ("account", "issuer"):
        message += (
            " (a better-auth 1.7.0-1.7.2 database: serve it with "
            "CORE_SCHEMA.extend(ACCOUNT_ISSUER), or relax the column as better-auth 1.7.3+ does)"
        )
    return message


def _unsafe_message(table: str, column: str, has_rows: bool | None) -> str:
    if has_rows:
        return (
            f"cannot add required column {table}.{column}: the table has rows and the column "
            "has no default. Add it yourself (nullable, fill it, then make it NOT NULL) and "
            "run the migration again."
        )
    return (
        f"cannot add required column {table}.{column}: SQLite adds a NOT NULL column only "
        "with a default, and it has none. The table is empty: drop it and run the migration "
        "again to create it whole."
    )


def _static_default(f: Field, now: datetime) -> Any:
    if f.default is NOW:
        return to_utc_ms(now)
    if f.default is None or callable(f.default):
        return None
    return f.default


def _add_column(
    table: Table, column: Column[Any], f: Field, default: Any, dialect: Dialect, db: Database
) -> list[str]:
    server_default = column.server_default
    if default is not None:
        server_default = text(_literal(default, f, dialect.name))  # type: ignore[assignment]
    copy = Column(column.name, column.type, nullable=column.nullable, server_default=server_default)
    Table(table.name, MetaData(), copy)  # CreateColumn wants the column attached to a table
    prep = dialect.identifier_preparer
    head = f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {_sql(CreateColumn(copy), dialect)}"
    statements = [head]
    ref = f.references
    if ref is not None:
        target = db.metadata.tables[db.schema.table_name(ref.model)]
        target_col = db.schema.fields(ref.model)[ref.field].column or ref.field
        clause = (
            f"REFERENCES {prep.format_table(target)} ({prep.quote(target_col)}) "
            f"ON DELETE {ref.on_delete.upper()}"
        )
        if dialect.name == "mysql":
            statements.append(
                f"ALTER TABLE {prep.format_table(table)} ADD FOREIGN KEY "
                f"({prep.quote(column.name)}) {clause}"
            )
        else:
            statements[0] = f"{head} {clause}"
    return statements


def _create_index_sql(
    table: Table, name: str, cols: Sequence[str], unique: bool, dialect: Dialect
) -> str:
    prep = dialect.identifier_preparer
    return (
        f"CREATE {'UNIQUE ' if unique else ''}INDEX {prep.quote(name)} "
        f"ON {prep.format_table(table)} ({', '.join(prep.quote(c) for c in cols)})"
    )


def _literal(value: Any, f: Field, dialect: str) -> str:
    if f.type == "boolean":
        if dialect == "postgresql":
            return "true" if value else "false"
        return "1" if value else "0"
    if f.type == "number":
        return str(int(value) if isinstance(value, bool) else value)
    if f.type == "date":
        moment = to_utc_ms(value)
        if dialect == "sqlite":
            return _quote(format_iso(moment))
        if dialect == "mysql":
            return _quote(
                moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
            )
        return _quote(moment.isoformat())
    if f.type == "string":
        return _quote(str(value))
    return _quote(json.dumps(value, separators=(",", ":")))


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql(element: Any, dialect: Dialect) -> str:
    return str(element.compile(dialect=dialect)).strip()


def _family(type_: Any) -> str:
    affinity = getattr(type_, "_type_affinity", None) or type(type_)
    if isinstance(type_, satypes.TypeDecorator):
        return _family(type_.impl)
    for family, classes in _FAMILIES:
        if isinstance(type_, classes) or (
            isinstance(affinity, type) and issubclass(affinity, classes)
        ):
            return family
    return "other"


_FAMILIES: list[tuple[str, tuple[type, ...]]] = [
    ("boolean", (satypes.Boolean,)),
    ("integer", (satypes.Integer,)),
    ("date", (satypes.DateTime, satypes.Date)),
    ("json", (satypes.JSON,)),
    ("string", (satypes.String,)),
    ("number", (satypes.Numeric, satypes.Float)),
]
# Families a database may report for what we declare (SQLite and MySQL keep booleans in
# integers; MariaDB's json is longtext; SQLite's json is text).
_COMPATIBLE: dict[str, set[str]] = {
    "boolean": {"boolean", "integer"},
    "integer": {"integer", "boolean"},
    "json": {"json", "string"},
    "number": {"number", "integer"},
}
