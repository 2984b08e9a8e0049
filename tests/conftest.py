from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.auth.issuers import IssuerServer, TestIssuer, issuer_server
from tests.browser import (  # noqa: F401  (the chromium_browser and async_chromium_browser fixtures)
    async_chromium_browser_fixture,
    chromium_browser_fixture,
)
from tests.services import drop_scratch_databases, scratch_database

DIALECTS = ["sqlite", "postgresql", "mysql"]


@pytest.fixture(params=DIALECTS)
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An empty database on each dialect in turn (a SQLite file; a scratch database on
    PostgreSQL and MariaDB, of the test's own while it runs: tests/services.py)."""
    async with scratch_database(request.param) as url:
        yield url


# The token issuer of our own that the JWT tests sign with (tests/auth/issuers.py): one server
# per test module, a fresh issuer (its own keys and JWKS) per test.


@pytest.fixture(scope="module")
def server() -> Iterator[IssuerServer]:
    with issuer_server() as running:
        yield running


@pytest.fixture
def issuer(server: IssuerServer) -> TestIssuer:
    return server.new_issuer()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The scratch databases live for the session (tests/services.py): dropped at its end."""
    asyncio.run(drop_scratch_databases())
