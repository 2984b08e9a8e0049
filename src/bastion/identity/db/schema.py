"""The schema as data: tables, fields and indexes, which plugins extend.

A table is declared once, by its logical (better-auth) name and fields; the same declaration
drives the DDL for every dialect (`tables.build_metadata`), the migrator, and the adapter's
defaults. Every table has a text primary key `id`, which is not declared.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import UnknownField

__all__ = [
    "ACCOUNT_ISSUER",
    "CORE_SCHEMA",
    "NOW",
    "Field",
    "FieldType",
    "Index",
    "Reference",
    "Schema",
    "SchemaConflict",
    "TableSpec",
]

FieldType = Literal["string", "number", "boolean", "date", "json", "string[]", "number[]"]


class _Now:
    """Marks a date field whose default (or value on update) is the current time."""

    def __repr__(self) -> str:
        return "NOW"


NOW: Any = _Now()


class SchemaConflict(ValueError):
    """Two declarations of the same table or field disagree."""


@dataclass(frozen=True, slots=True)
class Reference:
    model: str
    field: str = "id"
    on_delete: Literal["cascade", "set null", "restrict", "no action"] = "cascade"


@dataclass(frozen=True, kw_only=True, slots=True)
class Field:
    """One column. `default` is applied by the adapter on create (a value, a zero-argument
    callable, or NOW); only NOW becomes a DDL default, on PostgreSQL and MySQL, as better-auth
    does. `on_update=NOW` refreshes the column on every update."""

    type: FieldType
    required: bool = True
    unique: bool = False
    index: bool = False
    sortable: bool = False
    default: Any = None
    on_update: Any = None
    references: Reference | None = None
    bigint: bool = False
    # A string that may outgrow MySQL's 64 KB text (longtext there; text elsewhere).
    long: bool = False
    input: bool = True
    returned: bool = True
    column: str | None = None

    def __post_init__(self) -> None:
        if self.on_update is not None and self.on_update is not NOW:
            raise ValueError("on_update takes only NOW")
        if (self.default is NOW or self.on_update is NOW) and self.type != "date":
            raise ValueError("NOW is a default for date fields only")


@dataclass(frozen=True, slots=True)
class Index:
    fields: tuple[str, ...]
    unique: bool = False

    def __init__(self, *fields: str, unique: bool = False) -> None:
        if not fields:
            raise ValueError("an index needs at least one field")
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "unique", unique)


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    """A table's fields (in column order) and its multi-column indexes.

    In `Schema.extend`, a TableSpec for a table that exists adds its fields and indexes to it.
    `name` renames the table in the database (better-auth's `modelName`).
    """

    fields: Mapping[str, Field] = field(default_factory=dict)
    indexes: Sequence[Index] = ()
    name: str | None = None

    def __post_init__(self) -> None:
        if "id" in self.fields:
            raise ValueError("'id' is implicit: every table has a text primary key 'id'")
        for index in self.indexes:
            missing = [f for f in index.fields if f not in self.fields]
            if missing:
                raise ValueError(f"index on unknown fields {missing}")


_ID = Field(type="string")


class Schema:
    """An ordered set of tables. Immutable: `extend` returns a new schema."""

    __slots__ = ("_tables",)

    def __init__(self, tables: Mapping[str, TableSpec]) -> None:
        self._tables: dict[str, TableSpec] = dict(tables)
        self._check_references()

    def extend(self, additions: Mapping[str, TableSpec]) -> Schema:
        """New tables, or fields and indexes added to existing ones (a plugin's schema)."""
        tables = dict(self._tables)
        for model, spec in additions.items():
            current = tables.get(model)
            if current is None:
                tables[model] = spec
                continue
            fields = dict(current.fields)
            for name, new in spec.fields.items():
                old = fields.get(name)
                if old is not None and old != new:
                    raise SchemaConflict(f"field {model}.{name} is declared twice, differently")
                fields[name] = new
            if spec.name is not None and spec.name != self.table_name(model):
                raise SchemaConflict(f"table {model!r} cannot be renamed by an extension")
            indexes = list(current.indexes)
            indexes += [i for i in spec.indexes if i not in indexes]
            tables[model] = TableSpec(fields=fields, indexes=indexes, name=current.name)
        return Schema(tables)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __contains__(self, model: object) -> bool:
        return model in self._tables

    def __len__(self) -> int:
        return len(self._tables)

    def __getitem__(self, model: str) -> TableSpec:
        try:
            return self._tables[model]
        except KeyError:
            raise UnknownField(f"no table {model!r} in the schema") from None

    def items(self) -> Iterator[tuple[str, TableSpec]]:
        return iter(self._tables.items())

    def table_name(self, model: str) -> str:
        return self[model].name or model

    def fields(self, model: str) -> dict[str, Field]:
        """All fields of a table, `id` first."""
        return {"id": _ID, **self[model].fields}

    def _check_references(self) -> None:
        for model, spec in self._tables.items():
            for name, f in spec.fields.items():
                ref = f.references
                if ref is None:
                    continue
                if ref.model not in self._tables:
                    raise SchemaConflict(f"{model}.{name} references unknown table {ref.model!r}")
                if ref.field != "id" and ref.field not in self._tables[ref.model].fields:
                    raise SchemaConflict(f"{model}.{name} references unknown field {ref.field!r}")


def _user_ref() -> Reference:
    return Reference("user")


# better-auth's core tables (spec §8.2) as its current releases (1.7.3 and later) create
# them, in its creation order.
CORE_SCHEMA = Schema(
    {
        "user": TableSpec(
            fields={
                "name": Field(type="string", sortable=True),
                "email": Field(type="string", unique=True, sortable=True),
                "emailVerified": Field(type="boolean", default=False, input=False),
                "image": Field(type="string", required=False),
                "createdAt": Field(type="date", default=NOW),
                "updatedAt": Field(type="date", default=NOW, on_update=NOW),
            }
        ),
        "session": TableSpec(
            fields={
                "expiresAt": Field(type="date"),
                "token": Field(type="string", unique=True),
                "createdAt": Field(type="date", default=NOW),
                "updatedAt": Field(type="date", on_update=NOW),
                "ipAddress": Field(type="string", required=False),
                "userAgent": Field(type="string", required=False),
                "userId": Field(type="string", references=_user_ref(), index=True),
            }
        ),
        "account": TableSpec(
            fields={
                "accountId": Field(type="string"),
                "providerId": Field(type="string"),
                "userId": Field(type="string", references=_user_ref(), index=True),
                "accessToken": Field(type="string", required=False, returned=False),
                "refreshToken": Field(type="string", required=False, returned=False),
                "idToken": Field(type="string", required=False, returned=False),
                "accessTokenExpiresAt": Field(type="date", required=False, returned=False),
                "refreshTokenExpiresAt": Field(type="date", required=False, returned=False),
                "scope": Field(type="string", required=False),
                "password": Field(type="string", required=False, returned=False),
                "createdAt": Field(type="date", default=NOW),
                "updatedAt": Field(type="date", on_update=NOW),
            },
        ),
        "verification": TableSpec(
            fields={
                "identifier": Field(type="string", index=True),
                "value": Field(type="string"),
                "expiresAt": Field(type="date"),
                "createdAt": Field(type="date", default=NOW),
                "updatedAt": Field(type="date", default=NOW, on_update=NOW),
            }
        ),
    }
)


def _credential_issuer() -> str:
    """The issuer 1.7.1 gave a password account, for the accounts Bastion creates (only
    those exist so far; a social sign-in must set its provider's own). A callable, so the
    migrator does not back-fill existing rows, OAuth accounts among them, with it."""
    return "local:credential"


# better-auth 1.7.0-1.7.2 required `account.issuer`, unique with `accountId`; 1.7.3 went back
# to (providerId, accountId) and stopped writing it. A database made by those three releases
# is served with CORE_SCHEMA.extend(ACCOUNT_ISSUER).
ACCOUNT_ISSUER = {
    "account": TableSpec(
        fields={
            "issuer": Field(type="string", default=_credential_issuer),
            "accountId": Field(type="string"),
        },
        indexes=[Index("issuer", "accountId", unique=True)],
    )
}
