"""Turn a Schema into SQLAlchemy tables for one dialect, with better-auth's column types."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy import Index as SAIndex
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

from .schema import NOW, Field, Schema
from .types import Bool, JSONValue, UTCDateTime
from .url import Dialect

__all__ = ["build_metadata", "column_type", "index_name", "now_default"]


def build_metadata(schema: Schema, dialect: Dialect) -> MetaData:
    """One `Table` per model, keyed by table name; columns keyed by logical field name."""
    metadata = MetaData()
    for model, spec in schema.items():
        table_name = schema.table_name(model)
        composite = {f for index in spec.indexes if len(index.fields) > 1 for f in index.fields}
        columns: list[Any] = []
        for name, f in schema.fields(model).items():
            columns.append(_column(schema, name, f, dialect, in_composite=name in composite))
        table = Table(table_name, metadata, *columns)
        for name, f in spec.fields.items():
            if f.index and not f.unique:
                SAIndex(index_name(table_name, [f.column or name]), table.c[name])
        for index in spec.indexes:
            cols = [spec.fields[f].column or f for f in index.fields]
            SAIndex(
                index_name(table_name, cols, unique=index.unique),
                *(table.c[f] for f in index.fields),
                unique=index.unique,
            )
    return metadata


def index_name(table: str, columns: list[str], *, unique: bool = False) -> str:
    """better-auth's names: `session_userId_idx`, `account_issuer_accountId_uidx`."""
    return f"{table}_{'_'.join(columns)}_{'uidx' if unique else 'idx'}"


def now_default(dialect: Dialect) -> Any:
    """The DDL default of a NOW field; SQLite gets none, as better-auth creates it."""
    if dialect == "postgresql":
        return text("CURRENT_TIMESTAMP")
    if dialect == "mysql":
        return text("CURRENT_TIMESTAMP(3)")
    return None


def column_type(f: Field, dialect: Dialect, *, key: bool = False) -> TypeEngine[Any]:
    """The column type better-auth's migrator gives a field on `dialect` (spec §8.1).

    `key` marks the primary key, a foreign key or a member of a multi-column index: on
    MySQL those become varchar(36) (ids) or varchar(191) (index members), as text cannot be
    indexed whole.
    """
    if f.type == "string":
        if dialect != "mysql":
            return Text()
        if key:
            return String(36) if f.references is not None else String(191)
        if f.unique or f.sortable or f.index:
            return String(255)
        return mysql.LONGTEXT() if f.long else Text()
    if f.type == "boolean":
        return Bool()
    if f.type == "number":
        return BigInteger() if f.bigint else Integer()
    if f.type == "date":
        return UTCDateTime()
    return JSONValue()


def _column(
    schema: Schema, name: str, f: Field, dialect: Dialect, *, in_composite: bool
) -> Column[Any]:
    db_name = f.column or name
    if name == "id":
        type_: TypeEngine[Any] = String(36) if dialect == "mysql" else Text()
        return Column(db_name, type_, key=name, primary_key=True)
    args: list[Any] = []
    if f.references is not None:
        ref = f.references
        ref_table = schema.table_name(ref.model)
        ref_column = schema.fields(ref.model)[ref.field].column or ref.field
        args.append(ForeignKey(f"{ref_table}.{ref_column}", ondelete=ref.on_delete.upper()))
    key = f.references is not None or in_composite
    return Column(
        db_name,
        column_type(f, dialect, key=key),
        *args,
        key=name,
        nullable=not f.required,
        unique=f.unique or None,
        server_default=now_default(dialect) if f.default is NOW else None,
    )
