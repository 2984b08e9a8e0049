"""Our tables against the DDL better-auth's own migrator emits (tests/fixtures/*.sql).

`better-auth-ddl-core.sql` and `-plugins.sql` are better-auth 1.7.25's output (erratum 16:
no `account.issuer`): CORE_SCHEMA, and CORE_SCHEMA with the plugin tables, must match them
exactly. `better-auth-1.7.1-ddl-core.sql` is the shape 1.7.0-1.7.2 made, with a required
`account.issuer`: CORE_SCHEMA.extend(ACCOUNT_ISSUER) matches it, and such a database stays
readable, and writable with that schema.

Both sides are created on the real database, then read back by introspection and compared
column by column: name and order, type, nullability, default, uniqueness, foreign key, and
indexes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bastion.identity import Identity, bearer
from bastion.identity.crypto import PasswordHasher
from bastion.identity.db import (
    ACCOUNT_ISSUER,
    CORE_SCHEMA,
    Database,
    Schema,
    eq,
    migrate,
    plan_migration,
)
from tests.identity.db.plugin_schemas import IN_REFERENCE_ORDER
from tests.services import scratch_database

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SECTION = re.compile(r"^-- ===== (\w+) \((\w+)\) =====$", re.MULTILINE)


def reference_statements(which: str, dialect: str) -> list[str]:
    """The statements of `better-auth-ddl-<which>.sql` (or `better-auth-<which>.sql` when
    `which` names a release) for `dialect`."""
    name = f"better-auth-{which}.sql" if which[0].isdigit() else f"better-auth-ddl-{which}.sql"
    path = FIXTURES / name
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
    if which == "1.7.1-ddl-core":
        return CORE_SCHEMA.extend(ACCOUNT_ISSUER)
    schema = CORE_SCHEMA
    for plugin in IN_REFERENCE_ORDER if which == "plugins" else []:
        schema = schema.extend(plugin)
    return schema


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
@pytest.mark.parametrize("which", ["core", "plugins", "1.7.1-ddl-core"])
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
        order = [c["name"] for c in got[table]["columns"]]
        if which.startswith("1.7.1"):  # ACCOUNT_ISSUER appends `issuer`; 1.7.1 put it second
            order.sort(key=lambda name: list(want_cols).index(name))
        assert order == list(want_cols), table
        for column in got[table]["columns"]:
            assert column == want_cols[column["name"]], f"{table}.{column['name']}"
        assert got[table]["indexes"] == want[table]["indexes"], table
        assert got[table]["uniques"] == want[table]["uniques"], table


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
async def test_a_database_made_by_better_auth_1_7_1_still_works(dialect: str) -> None:
    """A user that 1.7.1 wrote (issuer `local:credential`) signs in with the default schema,
    which reads such a database but cannot add accounts to it (the required issuer); with
    ACCOUNT_ISSUER, new accounts are written as 1.7.1 wrote them."""
    async with scratch_database(dialect) as url:
        await create_reference(url, reference_statements("1.7.1-ddl-core", dialect))
        # The rows 1.7.1 wrote for a sign-up: a password account with its issuer.
        async with Database(url, schema=CORE_SCHEMA.extend(ACCOUNT_ISSUER)) as db:
            user = await db.create("user", {"name": "Old", "email": "old@example.com"})
            await db.create(
                "account",
                {
                    "issuer": "local:credential",
                    "accountId": user["id"],
                    "providerId": "credential",
                    "userId": user["id"],
                    "password": await PasswordHasher().hash(PASSWORD),
                },
            )

        for n, schema in enumerate((CORE_SCHEMA, CORE_SCHEMA.extend(ACCOUNT_ISSUER))):
            async with Database(url, schema=schema) as db, _client(db) as client:
                signed_in = await client.post(
                    "/sign-in/email", json={"email": "old@example.com", "password": PASSWORD}
                )
                assert signed_in.status_code == 200, signed_in.text
                session = await client.get(
                    "/get-session", headers={"authorization": f"Bearer {signed_in.json()['token']}"}
                )
                assert session.json()["user"]["email"] == "old@example.com"
                new = {"name": "New", "email": f"new{n}@x.io"}
                signed_up = await client.post("/sign-up/email", json={**new, "password": PASSWORD})
                if schema is CORE_SCHEMA:  # the NOT NULL issuer refuses it, as migrate warns
                    assert signed_up.status_code != 200  # 422; MySQL's error 1364 gives 503
                    assert (await plan_migration(db)).warnings[0].startswith("account.issuer")
                else:
                    assert signed_up.status_code == 200, signed_up.text
                    account = await db.find_one(
                        "account", eq("accountId", signed_up.json()["user"]["id"])
                    )
                    assert account is not None and account["issuer"] == "local:credential"
                    assert (await plan_migration(db)).empty


SECRET = "reference-ddl-secret-0123456789abcdef0123"
PASSWORD = "correct-horse"


@contextlib.asynccontextmanager
async def _client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    identity = Identity(
        env={},
        secret=SECRET,
        database=db,
        base_url="http://localhost",
        email_and_password={"enabled": True},
        plugins=[bearer()],
    )
    transport = httpx.ASGITransport(app=identity.app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://localhost/api/auth",
        headers={"origin": "http://localhost"},
    ) as client:
        yield client
