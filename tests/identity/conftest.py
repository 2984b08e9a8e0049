from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bastion.identity import Identity, bearer
from tests.identity.mailbox import smtp_mailbox_fixture  # noqa: F401  (the smtp_mailbox fixture)

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
BASE = "http://localhost:3000"
ORIGIN = {"origin": BASE}


@asynccontextmanager
async def running(
    database_url: str = "sqlite://", **options: Any
) -> AsyncIterator[tuple[Identity, httpx.AsyncClient]]:
    """An Identity on a migrated database, and an HTTP client talking to it in-process."""
    options.setdefault("secret", SECRET)
    options.setdefault("base_url", BASE)
    options.setdefault("email_and_password", {"enabled": True})
    options.setdefault("plugins", [bearer()])
    identity = Identity(database=database_url, env={}, **options)
    await identity.migrate()
    transport = httpx.ASGITransport(app=identity.app)
    async with httpx.AsyncClient(transport=transport, base_url=f"{BASE}/api/auth") as client:
        try:
            yield identity, client
        finally:
            await identity.close()


MakeIdentity = Callable[..., Any]


@pytest.fixture
def make_identity(database_url: str) -> MakeIdentity:
    """`async with make_identity(**options) as (identity, client):` on each dialect."""

    def make(**options: Any) -> Any:
        return running(database_url, **options)

    return make
