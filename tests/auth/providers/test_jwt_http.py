"""JWTAuth and Auth0Auth behind the Bastion server, over HTTP (httpx.ASGITransport): a valid
token reaches the handler, any bad one is a 401 with an RFC 6750 challenge (S30), an
issuer outage is a 401 and never a 500 (S31), a missing scope is a 403."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from bastion.auth import AuthProvider, current_context
from bastion.auth.providers.auth0 import Auth0Auth
from bastion.auth.providers.jwt import JWTAuth
from bastion.auth.scopes import require_scopes
from bastion.jose import JWKSCache
from bastion.server import Bastion, route
from tests.auth.issuers import (
    AUDIENCE,
    NodeIssuer,
    TestIssuer,
    forge,
    node_issuer,
    unused_url,
)


@pytest.fixture(scope="module")
def auth0() -> Iterator[NodeIssuer]:
    with node_issuer("mock-auth0.mjs", "oauth2-mock-server", AUDIENCE=AUDIENCE) as running:
        yield running


async def whoami(request: Request) -> dict[str, Any]:
    context = current_context()
    return {"sub": context.user["sub"], "resourceId": context.resource_id}


@asynccontextmanager
async def served(auth: AuthProvider) -> AsyncIterator[httpx.AsyncClient]:
    app = Bastion(auth=auth, routes=[route("/whoami", whoami)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bastion.test") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_s30_valid_token_passes_and_bad_ones_get_401(issuer: TestIssuer):
    provider = JWTAuth(
        jwks_uri=issuer.jwks_uri, issuer=issuer.issuer, audience=AUDIENCE, jwks_cache=JWKSCache()
    )
    async with served(provider) as http:
        ok = await http.get("/api/whoami", headers=bearer(issuer.token()))
        assert ok.status_code == 200
        assert ok.json() == {"sub": "user-1", "resourceId": "user-1"}

        missing = await http.get("/api/whoami")
        assert missing.status_code == 401

        bad_tokens = [
            forge({"alg": "none", "typ": "at+jwt"}, issuer.claims()),
            issuer.token(aud="https://other.test"),
            issuer.token(typ="JWT"),
            "garbage",
        ]
        for token in bad_tokens:
            answer = await http.get("/api/whoami", headers=bearer(token))
            assert answer.status_code == 401, token
            assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            assert "error" in answer.json()


async def test_s31_issuer_down_at_cold_start_is_503_not_401_nor_500(issuer: TestIssuer):
    """An outage is a 503 with Retry-After, not a 401 that voids the token (issue 11, item 5)."""
    issuer.down = True
    token = issuer.token()
    for provider in (
        JWTAuth(jwks_uri=issuer.jwks_uri, audience=AUDIENCE, jwks_cache=JWKSCache()),
        JWTAuth(jwks_uri=unused_url(), audience=AUDIENCE, jwks_cache=JWKSCache()),
        JWTAuth(issuer=issuer.issuer, audience=AUDIENCE, jwks_cache=JWKSCache()),
    ):
        async with served(provider) as http:
            answer = await http.get("/api/whoami", headers=bearer(token))
        assert answer.status_code == 503
        assert answer.headers["retry-after"].isdigit()
        assert "www-authenticate" not in answer.headers


async def test_auth0_token_over_http_and_missing_scope_is_403(auth0: NodeIssuer):
    def auth0_auth(**options: Any) -> Auth0Auth:
        return Auth0Auth(
            issuer=auth0.issuer,
            jwks_uri=auth0.jwks_uri,
            audience=AUDIENCE,
            jwks_cache=JWKSCache(),
            **options,
        )

    token = await auth0.client_credentials(audience=AUDIENCE, scope="read:things")
    async with served(auth0_auth()) as http:
        answer = await http.get("/api/whoami", headers=bearer(token))
        assert answer.status_code == 200
        assert answer.json()["sub"] == "test-client@clients"
    async with served(auth0_auth(authorize_user=require_scopes("write:things"))) as http:
        answer = await http.get("/api/whoami", headers=bearer(token))
        assert answer.status_code == 403
