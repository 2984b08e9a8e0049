"""Database errors, as types callers can catch at any depth.

DatabaseError
 ├── InvalidDatabaseURL      the URL names no database we support, or a driver is missing
 ├── DatabaseUnavailable     the database did not answer or refused our credentials
 ├── ConstraintViolation     a write broke a constraint
 │    └── UniqueViolation    ... a unique one (an email that exists, say)
 ├── InvalidValue            a value the database cannot hold or compare (also a ValueError)
 ├── UnknownField            a field or model that is not in the schema
 └── MigrationError          the schema cannot be brought up to date safely
      └── UnsafeMigration    a required column without a default on a table with rows
"""

from __future__ import annotations

__all__ = [
    "ConstraintViolation",
    "DatabaseError",
    "DatabaseUnavailable",
    "InvalidDatabaseURL",
    "InvalidValue",
    "MigrationError",
    "UniqueViolation",
    "UnknownField",
    "UnsafeMigration",
]


class DatabaseError(Exception):
    """Base of every error the database layer raises on purpose."""


class InvalidDatabaseURL(DatabaseError):
    pass


class DatabaseUnavailable(DatabaseError):
    pass


class ConstraintViolation(DatabaseError):
    pass


class UniqueViolation(ConstraintViolation):
    pass


class InvalidValue(DatabaseError, ValueError):
    """A value the database refused, or that its driver could not send: text with a lone
    surrogate (any dialect) or a NUL (PostgreSQL), a number out of its column's range, a
    string too long for its column (MySQL), JSON the server does not accept. Nothing was
    written."""


class UnknownField(DatabaseError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MigrationError(DatabaseError):
    pass


class UnsafeMigration(MigrationError):
    pass
