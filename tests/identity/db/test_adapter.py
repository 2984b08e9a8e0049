"""The adapter on every dialect: what the identity layer will rely on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bastion.identity.db import (
    CORE_SCHEMA,
    ConstraintViolation,
    Database,
    DatabaseError,
    DatabaseUnavailable,
    Field,
    InvalidValue,
    TableSpec,
    UniqueViolation,
    UnknownField,
    and_,
    contains,
    ends_with,
    eq,
    gt,
    gte,
    in_,
    lt,
    lte,
    migrate,
    ne,
    not_in,
    or_,
    starts_with,
)

# A table with the remaining field types, to round-trip them too.
SCHEMA = CORE_SCHEMA.extend(
    {
        "note": TableSpec(
            fields={
                "title": Field(type="string", sortable=True),
                "count": Field(type="number", required=False, default=0),
                "big": Field(type="number", required=False, bigint=True),
                "data": Field(type="json", required=False),
                "tags": Field(type="string[]", required=False),
                "flag": Field(type="boolean", required=False),
            }
        ),
        # Named so that a failed constraint's message says "unique" and "duplicate": only
        # the drivers' codes tell which constraint failed.
        "uniqueness": TableSpec(fields={"duplicate": Field(type="string")}),
    }
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url, schema=SCHEMA) as database:
        await migrate(database)
        yield database


async def make_user(db: Database, email: str, name: str = "Ada") -> dict:
    return await db.create("user", {"name": name, "email": email})


async def test_create_fills_id_and_defaults(db: Database) -> None:
    user = await make_user(db, "ada@example.com")
    assert len(user["id"]) == 32 and user["id"].isalnum()
    assert user["emailVerified"] is False
    assert user["image"] is None
    assert user["createdAt"] == user["updatedAt"]
    assert user["createdAt"].tzinfo is UTC
    assert await db.find_one("user", eq("id", user["id"])) == user


async def test_dates_are_utc_with_millisecond_precision(db: Database) -> None:
    user = await make_user(db, "ada@example.com")
    paris = timezone(timedelta(hours=1))
    expires = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=paris)
    session = await db.create(
        "session",
        {"token": "t" * 32, "userId": user["id"], "expiresAt": expires},
    )
    found = await db.find_one("session", eq("token", "t" * 32))
    assert found is not None
    want = datetime(2031, 5, 6, 6, 8, 9, 123000, tzinfo=UTC)
    assert found["expiresAt"] == session["expiresAt"] == want
    assert found["expiresAt"].utcoffset() == timedelta(0)
    assert found["updatedAt"] == found["createdAt"]  # filled on create


async def test_every_field_type_round_trips(db: Database) -> None:
    data = {"nested": {"a": [1, 2, "x"]}, "ok": True}
    row = await db.create(
        "note",
        {"title": "t", "big": 2**40, "data": data, "tags": ["a", "b"], "flag": True},
    )
    assert row["count"] == 0
    found = await db.find_one("note", {"id": row["id"]})
    assert found == {
        "id": row["id"],
        "title": "t",
        "count": 0,
        "big": 2**40,
        "data": data,
        "tags": ["a", "b"],
        "flag": True,
    }


async def test_where_operators(db: Database) -> None:
    for i, name in enumerate(["alpha", "beta", "gamma", "delta", "50%_off"]):
        await db.create("note", {"title": name, "count": i})

    async def titles(where: object, **kw: object) -> list[str]:
        rows = await db.find_many("note", where, order_by="count", **kw)  # type: ignore[arg-type]
        return [r["title"] for r in rows]

    assert await titles(eq("title", "beta")) == ["beta"]
    assert await titles(ne("title", "beta")) == ["alpha", "gamma", "delta", "50%_off"]
    assert await titles(lt("count", 2)) == ["alpha", "beta"]
    assert await titles(lte("count", 1)) == ["alpha", "beta"]
    assert await titles(gt("count", 3)) == ["50%_off"]
    assert await titles(gte("count", 3)) == ["delta", "50%_off"]
    assert await titles(in_("title", ["gamma", "alpha", "zeta"])) == ["alpha", "gamma"]
    assert await titles(in_("title", [])) == []
    assert await titles(not_in("title", ["alpha", "beta", "gamma"])) == ["delta", "50%_off"]
    assert await titles(contains("title", "elt")) == ["delta"]
    assert await titles(contains("title", "%")) == ["50%_off"]  # wildcards are literal
    assert await titles(contains("title", "_")) == ["50%_off"]
    assert await titles(starts_with("title", "ga")) == ["gamma"]
    assert await titles(ends_with("title", "ta")) == ["beta", "delta"]
    assert await titles(gt("count", 0) & lt("count", 3)) == ["beta", "gamma"]
    assert await titles(eq("count", 0) | eq("count", 4)) == ["alpha", "50%_off"]
    assert await titles(and_(or_(eq("count", 0), eq("count", 1)), ne("title", "alpha"))) == ["beta"]
    assert await titles({"title": "gamma", "count": 2}) == ["gamma"]
    assert await titles(None) == ["alpha", "beta", "gamma", "delta", "50%_off"]
    assert await titles(eq("data", None)) == ["alpha", "beta", "gamma", "delta", "50%_off"]


async def test_order_limit_offset_select_and_count(db: Database) -> None:
    for i in range(5):
        await db.create("note", {"title": f"n{i}", "count": i})
    rows = await db.find_many("note", order_by="-count", limit=2, offset=1, select=["title"])
    assert rows == [{"title": "n3"}, {"title": "n2"}]
    assert await db.count("note") == 5
    assert await db.count("note", gte("count", 3)) == 2


async def test_update_returns_the_updated_row(database_url: str) -> None:
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]  # moved by the test, not by waiting
    async with Database(database_url, schema=SCHEMA, clock=lambda: now[0]) as db:
        await migrate(db)
        user = await make_user(db, "ada@example.com")
        now[0] += timedelta(seconds=1)
        # The update changes the field the where matched on: the row is still returned.
        updated = await db.update(
            "user",
            eq("email", "ada@example.com"),
            {"email": "ada@new.example", "emailVerified": True},
        )
        assert updated is not None
        assert updated["id"] == user["id"]
        assert updated["email"] == "ada@new.example"
        assert updated["emailVerified"] is True
        assert updated["updatedAt"] == now[0]  # on_update=NOW
        assert updated["createdAt"] == user["createdAt"] == now[0] - timedelta(seconds=1)
        assert await db.find_one("user", {"id": user["id"]}) == updated
        assert await db.update("user", eq("email", "nobody@example.com"), {"name": "x"}) is None


async def test_update_many_and_delete_many_count_rows(db: Database) -> None:
    for i in range(4):
        await db.create("note", {"title": "x", "count": i})
    assert await db.update_many("note", lt("count", 2), {"title": "low"}) == 2
    assert await db.count("note", eq("title", "low")) == 2
    assert await db.delete_many("note", eq("title", "low")) == 2
    assert await db.delete("note", eq("count", 3)) is True
    assert await db.delete("note", eq("count", 3)) is False
    assert await db.count("note") == 1


async def test_increment_is_a_conditional_atomic_update(db: Database) -> None:
    """A seat counter: ten concurrent reservations under a limit of 3 take exactly 3 seats."""
    note = await db.create("note", {"title": "seats", "count": 0})
    under_limit = and_(eq("id", note["id"]), lt("count", 3))
    taken = await asyncio.gather(
        *(db.increment("note", under_limit, {"count": 1}) for _ in range(10))
    )
    assert sorted(row["count"] for row in taken if row is not None) == [1, 2, 3]
    assert taken.count(None) == 7
    # `set` writes alongside the increment; a negative step releases.
    row = await db.increment("note", eq("id", note["id"]), {"count": -2}, set={"title": "x"})
    assert row is not None and (row["count"], row["title"]) == (1, "x")
    # Only `set`, under a condition that no longer holds: nothing changes.
    gone = and_(eq("id", note["id"]), gte("count", 5))
    assert await db.increment("note", gone, {}, set={"count": 9}) is None
    async with db.transaction() as tx:
        assert (await tx.increment("note", eq("id", note["id"]), {"count": 1}) or {})["count"] == 2
    with pytest.raises(ValueError):
        await db.increment("note", eq("id", note["id"]), {})


async def test_unique_violation_is_typed(db: Database) -> None:
    await make_user(db, "ada@example.com")
    with pytest.raises(UniqueViolation):
        await make_user(db, "ada@example.com", name="Other")
    assert await db.count("user") == 1


async def test_a_duplicate_primary_key_is_a_unique_violation(db: Database) -> None:
    user = await make_user(db, "ada@example.com")
    with pytest.raises(UniqueViolation):
        await db.create("user", {"id": user["id"], "name": "Bob", "email": "bob@example.com"})


async def test_other_constraints_are_not_unique_violations(db: Database) -> None:
    # NOT NULL: the message names the table "uniqueness" and the column "duplicate".
    with pytest.raises(ConstraintViolation) as raised:
        await db.create("uniqueness", {"duplicate": None})
    assert not isinstance(raised.value, UniqueViolation)
    # A foreign key to no user.
    later = datetime.now(UTC) + timedelta(days=7)
    with pytest.raises(ConstraintViolation) as raised:
        await db.create("session", {"token": "t" * 32, "userId": "nobody", "expiresAt": later})
    assert not isinstance(raised.value, UniqueViolation)


async def test_a_required_column_left_out_is_a_constraint_violation(db: Database) -> None:
    # MySQL reports it as errno 1364 ("no default value"), an OperationalError like a lost
    # connection: it is the statement's fault, not an unavailable database.
    with pytest.raises(ConstraintViolation) as raised:
        await db.create("uniqueness", {})
    assert not isinstance(raised.value, DatabaseUnavailable | UniqueViolation)


async def test_a_value_the_database_cannot_hold_is_an_invalid_value(db: Database) -> None:
    """From the Python API too, where no HTTP validation stands in front: typed on every
    dialect (drivers raise UnicodeEncodeError or OverflowError, or a data error that MySQL
    reports like a lost connection), and nothing written."""
    user = await make_user(db, "ada@example.com")
    surrogate = "a\ud800"  # a lone surrogate: UTF-8 cannot encode it
    later = datetime.now(UTC) + timedelta(days=7)
    attempts = {
        "create": lambda: db.create("user", {"name": surrogate, "email": "bob@example.com"}),
        "update": lambda: db.update("user", eq("id", user["id"]), {"name": surrogate}),
        "find_one": lambda: db.find_one("user", eq("email", surrogate)),
        "find_many": lambda: db.find_many("user", contains("name", surrogate)),
        "count": lambda: db.count("user", in_("email", ["x@example.com", surrogate])),
        "delete": lambda: db.delete("user", eq("email", surrogate)),
        "session by token": lambda: db.find_one_with_reference(
            "session", eq("token", surrogate), "userId"
        ),
        "a session for it": lambda: db.create(
            "session", {"token": surrogate, "userId": user["id"], "expiresAt": later}
        ),
        "past 64 bits": lambda: db.create("note", {"title": "big", "big": 2**70}),
    }
    for name, attempt in attempts.items():
        with pytest.raises(InvalidValue) as raised:
            await attempt()
        assert isinstance(raised.value, ValueError), name
        assert not isinstance(raised.value, DatabaseUnavailable), name
    with pytest.raises(InvalidValue):
        async with db.transaction() as tx:
            await tx.create("note", {"title": "kept?"})
            await tx.update("user", eq("id", user["id"]), {"name": surrogate})
    assert await db.find_many("user") == [user]
    assert await db.count("note") == 0
    assert await db.count("session") == 0


async def test_what_one_dialect_refuses_the_others_read_back(db: Database) -> None:
    """Never stored unreadable: refused as InvalidValue where the server does not take it,
    else read back as written."""
    values = {
        # PostgreSQL's and MariaDB's JSON refuse a lone surrogate's escape; SQLite keeps it.
        "json": ("data", {"text": "a\ud800"}, ("postgresql", "mysql")),
        "array": ("tags", ["a\ud800"], ("postgresql", "mysql")),
        # PostgreSQL's text holds no NUL.
        "nul": ("title", "a\x00b", ("postgresql",)),
        # A sortable string is a VARCHAR on MySQL, TEXT elsewhere.
        "long": ("title", "t" * 70_000, ("mysql",)),
    }
    for name, (field, value, refused_by) in values.items():
        row = {"title": name, field: value} if field != "title" else {field: value}
        if db.dialect in refused_by:
            before = await db.count("note")
            with pytest.raises(InvalidValue):
                await db.create("note", row)
            assert await db.count("note") == before, name
        else:
            made = await db.create("note", row)
            assert (await db.find_one("note", eq("id", made["id"])))[field] == value, name


async def test_a_missing_table_says_to_migrate(database_url: str) -> None:
    async with Database(database_url, schema=SCHEMA) as fresh:
        with pytest.raises(DatabaseError, match="run `bastion migrate`") as raised:
            await fresh.count("note")
        assert not isinstance(raised.value, DatabaseUnavailable)


async def test_deleting_a_user_cascades_to_sessions_and_accounts(db: Database) -> None:
    user = await make_user(db, "ada@example.com")
    later = datetime.now(UTC) + timedelta(days=7)
    await db.create("session", {"token": "a" * 32, "userId": user["id"], "expiresAt": later})
    await db.create(
        "account",
        {
            "accountId": user["id"],
            "providerId": "credential",
            "userId": user["id"],
            "password": "salt:key",
        },
    )
    assert await db.delete("user", {"id": user["id"]})
    assert await db.count("session") == 0
    assert await db.count("account") == 0


async def test_transaction_commits_together_or_not_at_all(db: Database) -> None:
    async with db.transaction() as tx:
        user = await tx.create("user", {"name": "Ada", "email": "ada@example.com"})
        await tx.update("user", {"id": user["id"]}, {"name": "Ada L."})
    assert (await db.find_one("user", {"id": user["id"]}))["name"] == "Ada L."  # type: ignore[index]

    with pytest.raises(UniqueViolation):
        async with db.transaction() as tx:
            await tx.create("user", {"name": "Bob", "email": "bob@example.com"})
            await tx.create("user", {"name": "Eve", "email": "ada@example.com"})
    assert await db.find_one("user", eq("email", "bob@example.com")) is None

    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.create("user", {"name": "Carl", "email": "carl@example.com"})
            raise RuntimeError("the caller fails half-way")
    assert await db.count("user") == 1


async def test_concurrent_writes_all_land(db: Database) -> None:
    await asyncio.gather(*(make_user(db, f"u{i}@example.com") for i in range(30)))
    assert await db.count("user") == 30


async def test_unknown_fields_and_tables_are_refused(db: Database) -> None:
    with pytest.raises(UnknownField, match="nickname"):
        await db.create("user", {"name": "A", "email": "a@example.com", "nickname": "x"})
    with pytest.raises(UnknownField, match="nickname"):
        await db.find_many("user", eq("nickname", "x"))
    with pytest.raises(UnknownField, match="people"):
        await db.count("people")
    assert await db.count("user") == 0


async def test_in_memory_sqlite_shares_one_database() -> None:
    async with Database("sqlite://") as db:
        await migrate(db)
        await asyncio.gather(*(make_user(db, f"u{i}@example.com") for i in range(10)))
        assert await db.count("user") == 10


async def test_find_one_with_reference_joins_in_one_query(db: Database) -> None:
    user = await make_user(db, "ada@example.com")
    later = datetime.now(UTC) + timedelta(days=7)
    session = await db.create(
        "session", {"token": "j" * 32, "userId": user["id"], "expiresAt": later}
    )
    found = await db.find_one_with_reference("session", eq("token", "j" * 32), "userId")
    assert found == (session, user)
    assert await db.find_one_with_reference("session", eq("token", "x"), "userId") is None
    with pytest.raises(UnknownField):
        await db.find_one_with_reference("session", eq("token", "x"), "token")


async def test_find_one_with_reference_answers_each_of_many_lookups_at_once(
    db: Database,
) -> None:
    """Concurrent lookups by token (on PostgreSQL they share statements): each gets its
    own row, a repeated token its row each time, a missing one None, and tokens the
    database may refuse (NUL, non-ASCII) an answer of their own."""
    later = datetime.now(UTC) + timedelta(days=7)
    pairs = {}
    for i in range(24):  # with the repeats, more than a batch holds
        user = await make_user(db, f"u{i}@example.com", name=f"User {i}")
        token = f"{i:02d}" + "t" * 30
        session = await db.create(
            "session", {"token": token, "userId": user["id"], "expiresAt": later}
        )
        pairs[token] = (session, user)
    asked = [*pairs, *pairs, "missing", "0" * 32, "nul\x00" + "t" * 28, "é" * 32]
    for order in (asked, asked[::-1]):
        found = await asyncio.gather(
            *(db.find_one_with_reference("session", eq("token", t), "userId") for t in order),
            return_exceptions=True,
        )
        for token, answer in zip(order, found, strict=True):
            if "\x00" in token and isinstance(answer, DatabaseError):
                continue  # PostgreSQL refuses a NUL in text: this lookup's error alone
            assert answer == pairs.get(token), token


async def test_a_cancelled_lookup_leaves_the_others_answered(db: Database) -> None:
    """A request that goes away while its lookup waits (a client that hung up) takes
    nothing from the lookups beside it, nor from the ones after: whether it was the first
    of them (on PostgreSQL, the one that sends their shared statement) or a later one,
    and whether it goes before the statement is sent or while it runs."""
    user = await make_user(db, "ada@example.com")
    later = datetime.now(UTC) + timedelta(days=7)
    session = await db.create(
        "session", {"token": "c" * 32, "userId": user["id"], "expiresAt": later}
    )
    for gone, pause in [(0, 0.0), (2, 0.0), (5, 0.0), (0, 0.0005), (0, 0.002), (3, 0.001)]:
        lookups = [
            asyncio.ensure_future(
                db.find_one_with_reference("session", eq("token", "c" * 32), "userId")
            )
            for _ in range(6)
        ]
        await asyncio.sleep(pause)  # 0: every lookup has asked, none is sent
        lookups[gone].cancel()
        # Bounded: a batch that stopped at the cancelled one would leave the rest waiting.
        done = await asyncio.wait_for(asyncio.gather(*lookups, return_exceptions=True), 10)
        if pause == 0:
            assert isinstance(done[gone], asyncio.CancelledError)
        elif not isinstance(done[gone], asyncio.CancelledError):
            assert done[gone] == (session, user)  # it had its answer before the cancel
        assert [d for i, d in enumerate(done) if i != gone] == [(session, user)] * 5
    assert await db.find_one_with_reference("session", {"token": "c" * 32}, "userId") == (
        session,
        user,
    )


async def test_a_transaction_inside_a_transaction_joins_it(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx, tx.transaction() as inner:
            await inner.create("user", {"name": "A", "email": "a@example.com"})
            raise RuntimeError("the outer transaction fails")
    assert await db.count("user") == 0
