from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bastion.identity import Identity, bearer
from tests.hashing import cheap_password
from tests.identity.mailbox import smtp_mailbox_fixture  # noqa: F401  (the smtp_mailbox fixture)

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
BASE = "http://localhost:3000"
ORIGIN = {"origin": BASE}


@asynccontextmanager
async def running(
    database_url: str = "sqlite://", **options: Any
) -> AsyncIterator[tuple[Identity, httpx.AsyncClient]]:
    """An Identity on a migrated database, and an HTTP client talking to it in-process.
    Passwords get the cheap hash unless `email_and_password` names one (tests/hashing.py)."""
    options.setdefault("secret", SECRET)
    options.setdefault("base_url", BASE)
    options["email_and_password"] = cheap_password(options.get("email_and_password"))
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
