from __future__ import annotations

import pytest

from bastion.identity.db import (
    DEFAULT_DATABASE_URL,
    InvalidDatabaseURL,
    mask_url,
    parse_database_url,
)


@pytest.mark.parametrize(
    ("given", "driver", "dialect"),
    [
        ("sqlite:///data/app.db", "sqlite+aiosqlite", "sqlite"),
        ("sqlite+aiosqlite:///app.db", "sqlite+aiosqlite", "sqlite"),
        ("sqlite+pysqlite:///app.db", "sqlite+aiosqlite", "sqlite"),
        ("postgresql://u:p@db/app", "postgresql+asyncpg", "postgresql"),
        ("postgres://u:p@db/app", "postgresql+asyncpg", "postgresql"),
        ("postgresql+asyncpg://u:p@db/app", "postgresql+asyncpg", "postgresql"),
        ("postgresql+psycopg2://u:p@db/app", "postgresql+asyncpg", "postgresql"),
        ("mysql://u:p@db/app", "mysql+asyncmy", "mysql"),
        ("mariadb://u:p@db/app", "mysql+asyncmy", "mysql"),
        ("mysql+pymysql://u:p@db/app", "mysql+asyncmy", "mysql"),
        ("mysql+asyncmy://u:p@db/app", "mysql+asyncmy", "mysql"),
    ],
)
def test_schemes_select_an_async_driver(given: str, driver: str, dialect: str) -> None:
    url = parse_database_url(given)
    assert url.url.drivername == driver
    assert url.dialect == dialect
    assert url.text == given


def test_in_memory_sqlite() -> None:
    for given in ("sqlite://", "sqlite:///:memory:"):
        url = parse_database_url(given)
        assert url.memory and url.url.database == ":memory:"
    assert not parse_database_url("sqlite:///x.db").memory


def test_database_url_from_the_environment_then_the_default() -> None:
    assert parse_database_url(env={"DATABASE_URL": "postgres://h/app"}).dialect == "postgresql"
    assert parse_database_url(env={}).text == DEFAULT_DATABASE_URL == "sqlite:///bastion.db"
    assert (
        parse_database_url("sqlite://", env={"DATABASE_URL": "postgres://h/x"}).dialect == "sqlite"
    )


def test_mysql_gets_utf8mb4_and_postgres_sslmode_becomes_ssl() -> None:
    assert parse_database_url("mysql://h/app").url.query["charset"] == "utf8mb4"
    pg = parse_database_url("postgresql://h/app?sslmode=require").url
    assert pg.query == {"ssl": "require"}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("oracle://scott:tiger@db/app", "unsupported database URL scheme 'oracle'"),
        ("redis://localhost", "unsupported database URL scheme 'redis'"),
        ("not a url", "not a database URL"),
        ("postgresql://u:secret@db", "names no database"),
    ],
)
def test_bad_urls_are_refused_with_the_password_masked(given: str, message: str) -> None:
    with pytest.raises(InvalidDatabaseURL, match=message) as caught:
        parse_database_url(given)
    assert "tiger" not in str(caught.value) and "secret" not in str(caught.value)


def test_mask_url() -> None:
    assert mask_url("postgresql://u:hunter2@db:5432/app") == "postgresql://***@db:5432/app"
    assert mask_url("mysql://root@db/app") == "mysql://***@db/app"  # the whole user-info
    assert "hunter2" not in mask_url("weird://u:hunter2@db app")
