"""IdentityAuth through the Bastion server over HTTP: the Identity mounted at /api/auth, the
agent API behind the pipeline; a refreshed session's cookie and a dead session's cleared
cookies reach the client; the cookie cache cannot act for a revoked session (S16)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from bastion.auth import RequestContext
from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import Identity, bearer
from bastion.identity.db import eq
from bastion.server import Bastion, tool
from tests.auth.providers.identity_support import Credentials, credentials
from tests.hashing import cheap_password
from tests.identity.sessionkit import Clock

BASE = "http://localhost:4111"
SECRET = "http-identity-secret-0123456789abcdef0123"
TOKEN = "better-auth.session_token"
DATA = "better-auth.session_data"


@tool
async def whoami(context: RequestContext) -> dict[str, Any]:
    """The caller's email."""
    return {"email": context.user["user"]["email"]}


@asynccontextmanager
async def app(
    provider: type[IdentityAuth] = IdentityAuth, **options: Any
) -> AsyncIterator[tuple[Identity, httpx.AsyncClient]]:
    identity = Identity(
        env={},
        secret=SECRET,
        base_url=BASE,
        database="sqlite://",
        email_and_password=cheap_password(),
        plugins=[bearer()],
        **options,
    )
    await identity.migrate()
    auth = provider(identity)
    server = Bastion(auth=auth, tools=[whoami])
    transport = httpx.ASGITransport(app=server)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield identity, http
    finally:
        await auth.aclose()
        await identity.close()


async def sign_up(http: httpx.AsyncClient) -> Credentials:
    response = await http.post(
        "/api/auth/sign-up/email",
        json={"name": "Ada", "email": "ada@example.com", "password": "horse battery"},
        headers={"origin": BASE},
    )
    http.cookies.clear()  # each request below says which credential it carries
    return credentials(response)


async def test_cookie_and_bearer_through_the_server() -> None:
    async with app() as (_, http):
        ada = await sign_up(http)
        assert (await http.get("/api/agents", headers=ada.cookie())).status_code == 200
        for token in (ada.signed, ada.raw):
            response = await http.get("/api/agents", headers={"authorization": f"Bearer {token}"})
            assert response.status_code == 200
        called = await http.post("/api/tools/whoami/execute", json={}, headers=ada.cookie())
        assert called.json() == {"result": {"email": "ada@example.com"}}
        refused = await http.get("/api/agents")
        assert refused.status_code == 401
        assert refused.json() == {"error": "Invalid or expired token"}


async def test_a_subclass_default_policy_still_decides() -> None:
    """The stock policy (a session and a user with ids) is known to pass every user the
    in-process provider answers, so the pipeline skips it; a subclass's own is asked."""

    class VerifiedOnly(IdentityAuth):
        async def default_authorize_user(self, user: Any, request: Any) -> bool:
            return bool(user["user"]["emailVerified"])

    for provider, status in ((IdentityAuth, 200), (VerifiedOnly, 403)):
        async with app(provider, session={"cookie_cache": {"enabled": True}}) as (_, http):
            ada = await sign_up(http)
            for _ in range(2):  # the verification, then the remembered Cookie header
                response = await http.get("/api/agents", headers=ada.cookie())
                assert response.status_code == status, provider
            bearer_call = await http.get(
                "/api/agents", headers={"authorization": f"Bearer {ada.signed}"}
            )
            assert bearer_call.status_code == status, provider


async def test_refreshed_session_cookie_is_on_the_response() -> None:
    clock = Clock()
    async with app(clock=clock) as (_, http):
        ada = await sign_up(http)
        clock.advance(days=2)  # past update_age: this request extends the session
        response = await http.get("/api/agents", headers=ada.cookie())
        assert response.status_code == 200
        assert response.headers.get_list("set-cookie") == [
            f"{TOKEN}={ada.cookies[TOKEN]}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"
        ]
        again = await http.get("/api/agents", headers=ada.cookie())
        assert again.headers.get_list("set-cookie") == []


async def test_dead_session_cookies_are_cleared_on_the_401() -> None:
    async with app() as (identity, http):
        ada = await sign_up(http)
        await identity.db.delete("session", eq("token", ada.raw))
        response = await http.get("/api/agents", headers=ada.cookie())
        assert response.status_code == 401
        cleared = response.headers.get_list("set-cookie")
        assert f"{TOKEN}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax" in cleared


async def test_s16_cookie_cache_cannot_act_for_a_revoked_session() -> None:
    async with app(session={"cookie_cache": {"enabled": True}}) as (identity, http):
        ada = await sign_up(http)
        assert DATA in ada.cookies
        await identity.db.delete("session", eq("token", ada.raw))  # revoked elsewhere
        # Reads trust the signed cache for its lifetime (better-auth's trade-off) ...
        assert (await http.get("/api/agents", headers=ada.cookie())).status_code == 200
        # ... a request that acts is checked against storage.
        acted = await http.post("/api/tools/whoami/execute", json={}, headers=ada.cookie())
        assert acted.status_code == 401
