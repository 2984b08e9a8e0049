"""What the drivers raise, as the adapter's error types (errors.py).

Recognised by the drivers' own codes, never by the wording of a message, which changes with
the server's version and language:

    unique violation   sqlite3 SQLITE_CONSTRAINT_UNIQUE (2067) / _PRIMARYKEY (1555),
                       PostgreSQL SQLSTATE 23505 (asyncpg's UniqueViolationError),
                       MySQL/MariaDB errno 1062 ER_DUP_ENTRY (also 1169, 1586)
    missing table      PostgreSQL 42P01 / 42703 (undefined table or column), MySQL 1146;
                       SQLite reports it only as SQLITE_ERROR, so there the message is read
    required column    MySQL/MariaDB errno 1364 ER_NO_DEFAULT_FOR_FIELD, which the driver
                       raises as an OperationalError, as it does a lost connection
    bad value          PostgreSQL SQLSTATE class 22, data exception (out of range, too long,
                       a NUL in text, JSON it refuses; asyncpg also gives 22000 to a value it
                       cannot encode); MySQL/MariaDB 1264, 1265, 1292, 1366, 1406 (out of
                       range, truncated, bad date or string, too long), MySQL's 3140 (invalid
                       JSON) and MariaDB's 4025 (a CHECK failed: the schema declares none, so
                       it is a JSON column's json_valid): OperationalErrors too; and what the
                       drivers refuse to send, outside the DB-API's errors (`_UNSENDABLE`)

A bad value is InvalidValue; other integrity errors are ConstraintViolation; a connection
that failed is DatabaseUnavailable; anything else is DatabaseError.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from .errors import (
    ConstraintViolation,
    DatabaseError,
    DatabaseUnavailable,
    InvalidValue,
    UniqueViolation,
)
from .url import DatabaseURL, Dialect

__all__ = ["TRANSLATED", "driver_code", "reason", "translate", "translate_driver"]

_UNIQUE: Final[dict[Dialect, frozenset[int | str]]] = {
    "sqlite": frozenset({2067, 1555}),
    "postgresql": frozenset({"23505"}),
    "mysql": frozenset({1062, 1169, 1586}),
}
# MySQL errors raised as OperationalError that are the statement's fault, not the connection's.
_REQUIRED_COLUMN: Final = 1364
_BAD_VALUE: Final = frozenset({1264, 1265, 1292, 1366, 1406, 3140, 4025})
_DATA_EXCEPTION: Final = "22"  # PostgreSQL's SQLSTATE class
# What sqlite3 and asyncmy raise, outside the DB-API's errors, for a value they cannot send:
# text is sent as UTF-8 (a lone surrogate fails), sqlite3 holds integers in 64 bits.
_UNSENDABLE: Final = (UnicodeEncodeError, OverflowError)
# What `translate` takes: the errors a statement's execution raises that are the database's.
TRANSLATED: Final = (DBAPIError, *_UNSENDABLE)
_MISSING_TABLE: Final[dict[Dialect, frozenset[int | str]]] = {
    "sqlite": frozenset(),
    "postgresql": frozenset({"42P01", "42703"}),
    "mysql": frozenset({1146}),
}


def driver_code(error: BaseException, dialect: Dialect) -> int | str | None:
    """The driver's code for `error` (the exception the driver raised, or SQLAlchemy's
    wrapper of it): sqlite3's extended result code, PostgreSQL's SQLSTATE, MySQL's errno."""
    orig = getattr(error, "orig", None) or error
    if dialect == "sqlite":
        code = getattr(orig, "sqlite_errorcode", None)
        return code if isinstance(code, int) else None
    if dialect == "postgresql":
        # asyncpg's exceptions, and SQLAlchemy's adaptations of them, carry `sqlstate`.
        state = getattr(orig, "sqlstate", None)
        return state if isinstance(state, str) else None
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None  # (errno, message)


def _missing_table(error: BaseException, dialect: Dialect) -> bool:
    if dialect == "sqlite":
        orig = getattr(error, "orig", None) or error
        return str(orig).startswith("no such table")
    return driver_code(error, dialect) in _MISSING_TABLE[dialect]


def translate(
    exc: DBAPIError | UnicodeEncodeError | OverflowError, url: DatabaseURL
) -> DatabaseError:
    """The adapter's error for what SQLAlchemy or the driver raised running a statement on a
    connection to `url` (one of `TRANSLATED`)."""
    if isinstance(exc, _UNSENDABLE):
        return _unsendable(exc)
    if isinstance(exc, IntegrityError):
        unique = driver_code(exc, url.dialect) in _UNIQUE[url.dialect]
        kind = UniqueViolation if unique else ConstraintViolation
        return kind(reason(exc))
    text = reason(exc)
    if _missing_table(exc, url.dialect):
        return DatabaseError(f"{text} in {url.masked}: run `bastion migrate`")
    if not exc.connection_invalidated:
        if _bad_value(exc, url.dialect):
            return InvalidValue(text)
        if url.dialect == "mysql" and driver_code(exc, url.dialect) == _REQUIRED_COLUMN:
            return ConstraintViolation(text)
    if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
        return DatabaseUnavailable(f"database {url.masked} failed: {text}")
    return DatabaseError(text)


def translate_driver(exc: Exception, broken: bool, url: DatabaseURL) -> DatabaseError:
    """`translate` for what asyncpg raised in a direct read (direct.py); `broken`: the
    connection did not survive it."""
    if isinstance(exc, _UNSENDABLE):
        return _unsendable(exc)
    text = reason(exc)
    if _missing_table(exc, url.dialect):
        return DatabaseError(f"{text} in {url.masked}: run `bastion migrate`")
    if not broken and _bad_value(exc, url.dialect):
        return InvalidValue(text)
    if broken:
        return DatabaseUnavailable(f"database {url.masked} failed: {text}")
    return DatabaseError(text)


def _unsendable(exc: UnicodeEncodeError | OverflowError) -> InvalidValue:
    return InvalidValue(f"a value the database driver cannot send: {exc}")


def _bad_value(error: BaseException, dialect: Dialect) -> bool:
    code = driver_code(error, dialect)
    if dialect == "postgresql":
        return isinstance(code, str) and code.startswith(_DATA_EXCEPTION)
    return dialect == "mysql" and code in _BAD_VALUE


def reason(exc: BaseException) -> str:
    """The first line of the driver's message (SQLAlchemy's wrapper adds SQL and a link)."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
