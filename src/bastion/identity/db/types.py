"""Column types that store values the way better-auth does on each dialect.

Dates go in and come out as timezone-aware UTC datetimes with millisecond precision:
SQLite keeps ISO-8601 text (`2026-11-23T02:56:39.424Z`, as better-auth's Kysely adapter writes
it), PostgreSQL `timestamptz`, MySQL `timestamp(3)` read and written in UTC.
"""

from __future__ import annotations

import functools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, Text
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

__all__ = ["Bool", "JSONValue", "UTCDateTime", "format_iso", "to_utc_ms", "utc_now"]


def to_utc_ms(value: datetime) -> datetime:
    """Aware UTC, truncated to milliseconds. A naive datetime is taken to be UTC."""
    if value.tzinfo is not UTC:  # what the drivers and our clock give is UTC already
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    micro = value.microsecond
    return value if micro % 1000 == 0 else value.replace(microsecond=micro - micro % 1000)


def utc_now() -> datetime:
    """Now, in milliseconds (as JavaScript's clock), UTC. Read several times a request, and
    under load many requests share a millisecond: the last instant made is given again
    (datetimes are immutable), a fifth of the cost of making it."""
    global _last
    ms = time.time_ns() // 1_000_000
    last = _last  # one read: a thread that replaces it meanwhile is harmless
    if last[0] == ms:
        return last[1]
    now = _EPOCH + timedelta(milliseconds=ms)
    _last = (ms, now)
    return now


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_last: tuple[int, datetime] = (0, _EPOCH)


# The same instants are written again and again (a session's dates, on every get-session):
# remember the last few thousand. A pure function of the value, so sharing it is harmless.
@functools.lru_cache(maxsize=4096)
def format_iso(value: datetime) -> str:
    """JavaScript's Date.toISOString(): `2026-11-23T02:56:39.424Z`."""
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat truncates to milliseconds (as to_utc_ms) and pads the year to four digits, as
    # toISOString does; a UTC value ends in "+00:00", which becomes "Z".
    text = value.isoformat(timespec="milliseconds")
    return (text[:-6] if value.tzinfo is not None else text) + "Z"


def _parse(value: Any) -> datetime:
    if isinstance(value, datetime):
        return to_utc_ms(value)
    if isinstance(value, int | float):  # epoch milliseconds, as some adapters store them
        return to_utc_ms(datetime.fromtimestamp(value / 1000, UTC))
    if isinstance(value, bytes):
        value = value.decode()
    return to_utc_ms(datetime.fromisoformat(str(value).strip()))


class _SQLiteDate(UserDefinedType[str]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "date"


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteDate())
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.TIMESTAMP(fsp=3))
        return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = _parse(value)
        if dialect.name == "sqlite":
            return format_iso(value)
        if dialect.name == "mysql":  # the connection's time_zone is UTC
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else _parse(value)


class Bool(TypeDecorator[bool]):
    """`boolean` where the dialect has it, `integer` 0/1 on SQLite (as better-auth creates it)."""

    impl = Boolean
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Integer())
        return dialect.type_descriptor(Boolean())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return int(bool(value)) if dialect.name == "sqlite" else bool(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> bool | None:
        return None if value is None else bool(value)


class JSONValue(TypeDecorator[Any]):
    """JSON: `text` on SQLite, `jsonb` on PostgreSQL, `json` on MySQL."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(mysql.JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and value is not None:
            return json.dumps(value, separators=(",", ":"))
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and value is not None:
            return json.loads(value)
        return value
