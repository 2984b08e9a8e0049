"""IdentityAuth(url=...) against the real TypeScript better-auth 1.7.25 server
(`ba-peer.mjs serve`, bearer plugin on): its cookies, its bearer tokens signed and raw (the
#19110 case), its cookie prefix, its cookie cache, and sign-out seen within the cache TTL."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bastion.auth.providers.identity import IdentityAuth
from tests.auth.issuers import FakeClock
from tests.auth.providers.identity_support import Credentials, credentials, request
from tests.e2e.node_peer import BetterAuthServer, better_auth_server
from tests.services import scratch_database

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SECRET = "better-auth-remote-secret-0123456789abcdef"
PASSWORD = "correct-horse-battery"
_emails = itertools.count()


async def sign_up(server: BetterAuthServer, **body: Any) -> Credentials:
    payload = {
        "name": "Ada",
        "email": f"ada{next(_emails)}@example.com",
        "password": PASSWORD,
        **body,
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            server.base_url + "/sign-up/email", json=payload, headers={"origin": server.origin}
        )
    return credentials(response)


async def user_id(auth: IdentityAuth, token: str = "", **headers: str) -> str | None:
    user = await auth.authenticate_token(token, request(headers))
    return None if user is None else str(user["user"]["id"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[BetterAuthServer]:
    """better-auth with its cookie cache on and the cookie prefix "agents"."""
    async with (
        scratch_database("sqlite") as database_url,
        better_auth_server(
            database_url,
            BETTER_AUTH_SECRET=SECRET,
            COOKIE_CACHE="1",
            BA_OPTIONS='{"advanced": {"cookiePrefix": "agents"}}',
        ) as running,
    ):
        yield running


# The provider's time, which the S16 test moves past the cache's lifetime.
CLOCK = FakeClock(time.time())


@pytest_asyncio.fixture(loop_scope="module")
async def auth(server: BetterAuthServer) -> AsyncIterator[IdentityAuth]:
    provider = IdentityAuth(url=server.base_url, cookie_prefix="agents", cache_ttl=0.5, clock=CLOCK)
    yield provider
    await provider.aclose()


async def test_better_auth_cookies(server: BetterAuthServer, auth: IdentityAuth) -> None:
    ada = await sign_up(server)
    assert set(ada.cookies) == {"agents.session_token", "agents.session_data"}
    user = await auth.authenticate_token("", request(ada.cookie()))
    assert user is not None and user["user"]["id"] == ada.user_id
    assert user["session"]["token"] == ada.raw
    assert await auth.authorize_user(user, request()) is True
    # The session cookie alone (no cookie cache) reads the same session from the database.
    alone = {"cookie": f"agents.session_token={ada.cookies['agents.session_token']}"}
    assert await user_id(auth, **alone) == ada.user_id


@pytest.mark.parametrize("form", ["signed", "raw"])
async def test_better_auth_bearer_tokens(
    server: BetterAuthServer, auth: IdentityAuth, form: str
) -> None:
    """Mastra #19110: better-auth's sign-in answers the raw token; it works as well as the
    signed `set-auth-token`."""
    ada = await sign_up(server)
    token = ada.signed if form == "signed" else ada.raw
    assert await user_id(auth, token) == ada.user_id
    forged = ada.signed[:-5] + ("AAAA=" if not ada.signed.endswith("AAAA=") else "BBBB=")
    assert await user_id(auth, forged) is None


async def test_s16_sign_out_on_better_auth_shows_within_the_ttl(
    server: BetterAuthServer, auth: IdentityAuth
) -> None:
    """S16: signed out on better-auth, the session is refused here once the cache entry
    (0.5 s in this test, moved past on the provider's clock) is gone. The session token
    alone is checked in better-auth's database; its own cookie cache would keep the session
    readable there for 300 s."""
    ada = await sign_up(server)
    token_only = {"cookie": f"agents.session_token={ada.cookies['agents.session_token']}"}
    assert await user_id(auth, **token_only) == ada.user_id
    assert await user_id(auth, ada.raw) == ada.user_id
    async with httpx.AsyncClient() as client:
        out = await client.post(
            server.base_url + "/sign-out",
            headers={"origin": server.origin, "cookie": ada.cookie_header},
        )
    assert out.status_code == 200, out.text
    CLOCK.advance(0.6)
    assert await user_id(auth, **token_only) is None
    assert await user_id(auth, ada.raw) is None
    assert await user_id(auth, ada.signed) is None


async def test_default_prefix_does_not_read_another_prefix(server: BetterAuthServer) -> None:
    ada = await sign_up(server)
    default = IdentityAuth(url=server.base_url)
    try:
        assert default.session_cookie_name == "better-auth.session_token"
        assert await user_id(default, **ada.cookie()) is None
        # A bearer token names no cookie: it works whatever the prefix.
        assert await user_id(default, ada.signed) == ada.user_id
    finally:
        await default.aclose()
