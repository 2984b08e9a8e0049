"""The database layer: one schema, three dialects, an adapter and a migrator.

db = Database("postgresql://…")          # or $DATABASE_URL, or sqlite:///bastion.db
await migrate(db)
user = await db.create("user", {"name": "Ada", "email": "ada@example.com"})
await db.find_one("user", eq("email", "ada@example.com"))
"""

from .adapter import Database, Row, Transaction
from .errors import (
    ConstraintViolation,
    DatabaseError,
    DatabaseUnavailable,
    InvalidDatabaseURL,
    MigrationError,
    UniqueViolation,
    UnknownField,
    UnsafeMigration,
)
from .migrate import MigrationPlan, migrate, plan_migration
from .schema import (
    ACCOUNT_ISSUER,
    CORE_SCHEMA,
    NOW,
    Field,
    FieldType,
    Index,
    Reference,
    Schema,
    SchemaConflict,
    TableSpec,
)
from .url import DEFAULT_DATABASE_URL, DatabaseURL, Dialect, mask_url, parse_database_url
from .where import (
    AllOf,
    AnyOf,
    Condition,
    Operator,
    Where,
    and_,
    contains,
    ends_with,
    eq,
    gt,
    gte,
    in_,
    lt,
    lte,
    ne,
    not_in,
    or_,
    starts_with,
)

__all__ = [
    "ACCOUNT_ISSUER",
    "CORE_SCHEMA",
    "DEFAULT_DATABASE_URL",
    "NOW",
    "AllOf",
    "AnyOf",
    "Condition",
    "ConstraintViolation",
    "Database",
    "DatabaseError",
    "DatabaseURL",
    "DatabaseUnavailable",
    "Dialect",
    "Field",
    "FieldType",
    "Index",
    "InvalidDatabaseURL",
    "MigrationError",
    "MigrationPlan",
    "Operator",
    "Reference",
    "Row",
    "Schema",
    "SchemaConflict",
    "TableSpec",
    "Transaction",
    "UniqueViolation",
    "UnknownField",
    "UnsafeMigration",
    "Where",
    "and_",
    "contains",
    "ends_with",
    "eq",
    "gt",
    "gte",
    "in_",
    "lt",
    "lte",
    "mask_url",
    "migrate",
    "ne",
    "not_in",
    "or_",
    "parse_database_url",
    "plan_migration",
    "starts_with",
]
