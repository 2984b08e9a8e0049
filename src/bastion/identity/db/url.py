"""One URL selects the database: parse it, pick the async driver, mask its credentials."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..._url_masking import mask_userinfo
from .errors import InvalidDatabaseURL

__all__ = ["DEFAULT_DATABASE_URL", "DatabaseURL", "Dialect", "mask_url", "parse_database_url"]

DEFAULT_DATABASE_URL = "sqlite:///bastion.db"

Dialect = Literal["sqlite", "postgresql", "mysql"]

# scheme (before any "+driver") -> our dialect name
_SCHEMES: dict[str, Dialect] = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
_ASYNC_DRIVERS: dict[Dialect, str] = {
    "sqlite": "aiosqlite",
    "postgresql": "asyncpg",
    "mysql": "asyncmy",
}
# Async drivers SQLAlchemy can use as they are; a sync driver's name (psycopg2, pymysql, …)
# in a URL copied from elsewhere is swapped for ours rather than refused.
_KEPT_DRIVERS = {"aiosqlite", "asyncpg", "psycopg", "asyncmy", "aiomysql"}
_EXTRAS: dict[Dialect, str] = {"sqlite": "", "postgresql": "postgres", "mysql": "mysql"}


class DatabaseURL:
    """A database URL resolved to a SQLAlchemy async URL.

    `text` is what the user gave; `url` is what SQLAlchemy connects with.
    """

    __slots__ = ("dialect", "memory", "text", "url")

    def __init__(self, text: str, url: URL, dialect: Dialect, memory: bool) -> None:
        self.text = text
        self.url = url
        self.dialect: Dialect = dialect
        self.memory = memory

    @property
    def masked(self) -> str:
        return mask_url(self.text)

    def __repr__(self) -> str:
        return f"DatabaseURL({self.masked!r})"


def mask_url(text: str) -> str:
    """The URL with its whole user-info replaced by ***, for messages and logs."""
    return mask_userinfo(text)


def parse_database_url(text: str | None = None, env: Mapping[str, str] = os.environ) -> DatabaseURL:
    """Resolve `text` (or $DATABASE_URL, or the SQLite default) to an async SQLAlchemy URL."""
    if text is None:
        text = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    text = text.strip()
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise InvalidDatabaseURL(f"not a database URL: {mask_url(text)}") from exc

    scheme, _, driver = url.drivername.partition("+")
    dialect = _SCHEMES.get(scheme)
    if dialect is None:
        raise InvalidDatabaseURL(
            f"unsupported database URL scheme {scheme!r} in {mask_url(text)}: "
            "use sqlite://, postgresql:// or mysql:// (mariadb://)"
        )
    if driver not in _KEPT_DRIVERS:
        driver = _ASYNC_DRIVERS[dialect]
    _require_driver(driver, dialect, text)

    memory = False
    if dialect == "sqlite":
        memory = url.database in (None, "", ":memory:")
        url = url.set(
            drivername=f"sqlite+{driver}", database=":memory:" if memory else url.database
        )
    elif dialect == "postgresql":
        url = url.set(drivername=f"postgresql+{driver}")
        if driver == "asyncpg" and "sslmode" in url.query:
            # asyncpg calls libpq's sslmode "ssl" and accepts the same values.
            query = dict(url.query)
            query["ssl"] = query.pop("sslmode")
            url = url.set(query=query)
    else:
        url = url.set(drivername=f"mysql+{driver}")
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
    if dialect != "sqlite" and not url.database:
        raise InvalidDatabaseURL(f"the URL names no database: {mask_url(text)}")
    return DatabaseURL(text, url, dialect, memory)


def _require_driver(driver: str, dialect: Dialect, text: str) -> None:
    if importlib.util.find_spec(driver) is None:
        extra = _EXTRAS[dialect]
        hint = f": pip install 'bastion[{extra}]'" if extra else ""
        raise InvalidDatabaseURL(
            f"{mask_url(text)} needs the {driver} driver, which is not installed{hint}"
        )
