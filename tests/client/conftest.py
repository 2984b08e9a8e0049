"""Fixtures of the client tests: the Identity served for `AuthClient` (sync, on a real port)
and `AsyncAuthClient` (in-process), and the SMTP mailbox its mails land in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from starlette.types import ASGIApp

from bastion.client import AsyncAuthClient, AuthClient
from bastion.identity import Identity, bearer
from tests.client.servers import MODES, Mode, Served, Setup, served
from tests.hashing import cheap_password
from tests.identity.mailbox import smtp_mailbox_fixture  # noqa: F401  (the smtp_mailbox fixture)

SECRET = "client-test-secret-0123456789abcdef0123456789"
PASSWORD = "password123"
NEW_PASSWORD = "brand-new-password"


def identity_setup(**options: Any) -> Setup:
    """An Identity on in-memory SQLite, bearer plugin on, email and password enabled (with
    the cheap hash unless the options name one)."""

    @asynccontextmanager
    async def setup(origin: str) -> AsyncIterator[ASGIApp]:
        options.setdefault("secret", SECRET)
        options["email_and_password"] = cheap_password(options.get("email_and_password"))
        options.setdefault("plugins", [bearer()])
        identity = Identity(database="sqlite://", env={}, base_url=origin, **options)
        await identity.migrate()
        try:
            yield identity.app
        finally:
            await identity.close()

    return setup


AuthServer = Callable[..., AbstractAsyncContextManager[Served]]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Mode:
    """Each test runs with the sync client (real server) and the async one (in-process)."""
    mode: Mode = request.param
    return mode


@pytest.fixture
def auth_server(mode: Mode) -> AuthServer:
    """`async with auth_server(**identity_options) as server:` then `server.client()`."""

    def start(**options: Any) -> AbstractAsyncContextManager[Served]:
        return served(mode, identity_setup(**options), AuthClient, AsyncAuthClient)

    return start
