"""Our tables against the DDL better-auth 1.7's migrator emits (tests/fixtures/*.sql).

That DDL was made by better-auth 1.7.1, whose `account` table has a required `issuer`
column (1.7.0-1.7.2; 1.7.3 removed it again): it is compared with CORE_SCHEMA plus
ACCOUNT_ISSUER. The current release's own migrator is compared in tests/e2e.

Both are created on the real database, then read back by introspection and compared column
by column: name and order, type, nullability, default, uniqueness, foreign key, and indexes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bastion.identity.db import ACCOUNT_ISSUER, CORE_SCHEMA, Database, Schema, migrate
from tests.identity.db.plugin_schemas import IN_REFERENCE_ORDER
from tests.services import scratch_database

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SECTION = re.compile(r"^-- ===== (\w+) \((\w+)\) =====$", re.MULTILINE)


def reference_statements(which: str, dialect: str) -> list[str]:
    path = FIXTURES / f"better-auth-ddl-{which}.sql"
    text = path.read_text()
    parts = SECTION.split(text)
    names = {"postgresql": "postgres"}.get(dialect, dialect)
    for i in range(1, len(parts), 3):
        if parts[i] == names:
            body = parts[i + 2]
            return [s.strip() for s in body.split(";\n") if s.strip().rstrip(";")]
    raise AssertionError(f"no {dialect} section in {path}")


def describe(conn: Connection) -> dict[str, Any]:
    """Everything the comparison looks at, per table."""
    inspector = inspect(conn)
    out: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        uniques: set[tuple[str, ...]] = {
            tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
        }
        indexes: set[tuple[str, tuple[str, ...], bool]] = set()
        kw = {"include_auto_indexes": True} if conn.dialect.name == "sqlite" else {}
        for ix in inspector.get_indexes(table, **kw):
            cols = tuple(ix["column_names"])
            if ix["unique"]:
                uniques.add(cols)
            # Automatic and constraint-backing indexes have engine-made names; keep ours.
            if str(ix["name"]).endswith(("_idx", "_uidx")):
                indexes.add((ix["name"], cols, bool(ix["unique"])))
        if conn.dialect.name == "sqlite":
            for row in conn.exec_driver_sql(f'PRAGMA index_list("{table}")').mappings():
                if row["unique"]:
                    cols = tuple(
                        r["name"]
                        for r in conn.exec_driver_sql(
                            f'PRAGMA index_info("{row["name"]}")'
                        ).mappings()
                    )
                    uniques.add(cols)
        fks = {
            fk["constrained_columns"][0]: (
                fk["referred_table"],
                tuple(fk["referred_columns"]),
                (fk.get("options") or {}).get("ondelete", "").upper(),
            )
            for fk in inspector.get_foreign_keys(table)
        }
        if conn.dialect.name == "sqlite":
            # The inspector misses ON DELETE on inline REFERENCES; SQLite itself knows.
            fks = {
                r["from"]: (r["table"], (r["to"],), r["on_delete"].upper())
                for r in conn.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")').mappings()
            }
        columns = []
        for c in inspector.get_columns(table):
            default = c.get("default")
            columns.append(
                {
                    "name": c["name"],
                    "type": str(c["type"]),
                    "nullable": bool(c["nullable"]),
                    "default": None if default is None else str(default).lower(),
                    "unique": (c["name"],) in uniques,
                    "fk": fks.get(c["name"]),
                }
            )
        pk = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
        out[table] = {
            "columns": columns,
            "pk": pk,
            "indexes": sorted(indexes),
            "uniques": sorted(uniques),
        }
    return out


async def describe_url(url: str) -> dict[str, Any]:
    async with Database(url) as db, db.connect() as conn:
        return await conn.run_sync(describe)


async def create_reference(url: str, statements: list[str]) -> None:
    async with Database(url) as db, db.connect() as conn:
        for statement in statements:
            await conn.exec_driver_sql(statement)
        await conn.commit()


def as_in_reference(which: str) -> Schema:
    schema = CORE_SCHEMA.extend(ACCOUNT_ISSUER)
    for plugin in IN_REFERENCE_ORDER if which == "plugins" else []:
        schema = schema.extend(plugin)
    return schema


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
@pytest.mark.parametrize("which", ["core", "plugins"])
async def test_our_tables_match_better_auth_ddl(dialect: str, which: str) -> None:
    schema = as_in_reference(which)
    async with scratch_database(dialect) as ours, scratch_database(dialect) as reference:
        async with Database(ours, schema=schema) as db:
            await migrate(db)
        await create_reference(reference, reference_statements(which, dialect))
        want, got = await describe_url(reference), await describe_url(ours)

    assert list(got) == list(want)
    for table in want:
        assert got[table]["pk"] == want[table]["pk"] == ("id",), table
        want_cols = {c["name"]: c for c in want[table]["columns"]}
        # Column order as in the reference, but for `issuer`, which ACCOUNT_ISSUER appends.
        order = [c["name"] for c in got[table]["columns"]]
        assert sorted(order) == sorted(want_cols), table
        assert [n for n in order if n != "issuer"] == [n for n in want_cols if n != "issuer"]
        for column in got[table]["columns"]:
            assert column == want_cols[column["name"]], f"{table}.{column['name']}"
        assert got[table]["indexes"] == want[table]["indexes"], table
        assert got[table]["uniques"] == want[table]["uniques"], table
