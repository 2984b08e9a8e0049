from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.services import scratch_database

DIALECTS = ["sqlite", "postgresql", "mysql"]


@pytest.fixture(params=DIALECTS)
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An empty database on each dialect in turn (a SQLite file; a scratch database on
    PostgreSQL and MariaDB, dropped after the test)."""
    async with scratch_database(request.param) as url:
        yield url
