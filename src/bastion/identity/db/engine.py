"""The SQLAlchemy engine for a database URL: pool sizing and health, and what every new
connection is set up with (SQLite pragmas, MySQL's session time zone)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from .url import DatabaseURL

__all__ = ["POOL_RECYCLE", "create_engine"]

POOL_RECYCLE: Final = 1800  # seconds


def create_engine(url: DatabaseURL, *, pool_size: int | None, echo: bool) -> AsyncEngine:
    options: dict[str, Any] = {"echo": echo}
    if url.dialect == "sqlite":
        if url.memory:
            options["poolclass"] = StaticPool
        options["connect_args"] = {"timeout": 30}
    else:
        # A steady pool: overflow connections are closed on return, and under steady
        # concurrency that meant a new connection every few requests (bench/get_session.py).
        options["pool_size"] = pool_size or 20
        options["max_overflow"] = 0
        options["pool_recycle"] = POOL_RECYCLE
        # A pooled connection that died with a server restart (or a proxy's idle timeout) is
        # found by a ping at checkout and replaced, instead of failing the first request to
        # use it. One round trip per checkout; the hot reads hold their connections out of
        # the pool (direct.py, IdentityAuth's lookup) and do not pay it.
        options["pool_pre_ping"] = True
        timeout_arg = "timeout" if url.dialect == "postgresql" else "connect_timeout"
        options["connect_args"] = {timeout_arg: 10}
    engine = create_async_engine(url.url, **options)
    if url.dialect == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect(url.memory))
    elif url.dialect == "mysql":
        event.listen(engine.sync_engine, "connect", _mysql_on_connect)
    return engine


def _sqlite_on_connect(memory: bool) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")  # off by default; ON DELETE CASCADE needs it
        cursor.execute("PRAGMA busy_timeout=30000")
        if not memory:
            # WAL lets readers go on while one writer writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def _mysql_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # timestamp(3) columns are converted through the session time zone: keep it UTC.
    cursor.execute("SET time_zone = '+00:00'")
    cursor.close()
