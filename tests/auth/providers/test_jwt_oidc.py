"""JWTAuth with OIDC discovery: against our own issuer (S32 issuer mismatch, discovery
caching) and against the real panva/oidc-provider minting RFC 9068 at+jwt tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bastion.auth.errors import ProviderUnavailable
from bastion.auth.providers.jwt import JWTAuth
from bastion.jose import JWKSCache
from tests.auth.issuers import (
    AUDIENCE,
    FakeClock,
    NodeIssuer,
    TestIssuer,
    node_issuer,
    request,
)


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[NodeIssuer]:
    with node_issuer("oidc-provider-server.mjs", "oidc-provider", AUDIENCE=AUDIENCE) as running:
        yield running


async def authenticate(provider: JWTAuth, token: str) -> Any:
    return await provider.authenticate_token(token, request(token))


def discovering(issuer: str, **options: Any) -> JWTAuth:
    options.setdefault("jwks_cache", JWKSCache())
    options.setdefault("audience", AUDIENCE)
    return JWTAuth(issuer=issuer, **options)


# -- our issuer ---------------------------------------------------------------------------


async def test_discovery_finds_the_jwks_and_is_cached(issuer: TestIssuer):
    provider = discovering(issuer.issuer)
    for _ in range(5):
        user = await authenticate(provider, issuer.token())
        assert user is not None and user["iss"] == issuer.issuer
    assert issuer.hits["/.well-known/openid-configuration"] == 1
    assert issuer.fetches == 1


async def test_s32_discovery_naming_another_issuer_is_rejected(issuer: TestIssuer):
    """No usable keys, so no user: the provider cannot decide (a 503, issue 11 item 5)."""
    issuer.metadata_issuer = "https://evil.example/"
    provider = discovering(issuer.issuer)
    with pytest.raises(ProviderUnavailable):
        await authenticate(provider, issuer.token())
    assert issuer.fetches == 0  # its jwks_uri was never trusted


async def test_s32_trailing_slash_matters_for_the_discovered_issuer(issuer: TestIssuer):
    issuer.metadata_issuer = issuer.issuer.rstrip("/")
    with pytest.raises(ProviderUnavailable):
        await authenticate(discovering(issuer.issuer), issuer.token())


async def test_s26_token_issuer_must_equal_the_configured_one(issuer: TestIssuer):
    provider = discovering(issuer.issuer)
    assert await authenticate(provider, issuer.token(iss=issuer.issuer.rstrip("/"))) is None


async def test_s31_discovery_outage_serves_the_cached_document(issuer: TestIssuer):
    clock = FakeClock()
    issuer.cache_control = "max-age=60"
    provider = discovering(issuer.issuer, jwks_cache=JWKSCache(clock=clock))
    assert await authenticate(provider, issuer.token())
    issuer.down = True
    clock.advance(90)
    assert await authenticate(provider, issuer.token())


async def test_s31_discovery_down_at_cold_start_is_unavailable(issuer: TestIssuer):
    issuer.down = True
    with pytest.raises(ProviderUnavailable):
        await authenticate(discovering(issuer.issuer), issuer.token())


# -- the real OpenID provider (RFC 9068 access tokens) -------------------------------------------


async def test_oidc_provider_access_token_accepted(oidc_provider: NodeIssuer):
    provider = discovering(oidc_provider.issuer)
    token = await oidc_provider.client_credentials(
        resource=AUDIENCE, scope="read:things write:things"
    )
    user = await authenticate(provider, token)
    assert user is not None
    assert user["sub"] == "test-client" and user["client_id"] == "test-client"
    assert user["scope"] == "read:things write:things"
    assert user["https://example.test/roles"] == ["admin"]
    assert await provider.authorize_user(user, request(token))
    assert provider.map_user_to_resource_id(user) == "test-client"


async def test_oidc_provider_with_jwks_uri_and_basic_client_auth(oidc_provider: NodeIssuer):
    provider = JWTAuth(
        jwks_uri=oidc_provider.jwks_uri,
        issuer=oidc_provider.issuer,
        audience=AUDIENCE,
        algorithms=["RS256"],
        jwks_cache=JWKSCache(),
    )
    async with httpx.AsyncClient() as client:
        response = await client.post(
            oidc_provider.issuer + "oauth/token",
            data={"grant_type": "client_credentials", "resource": AUDIENCE},
            auth=("m2m-client", "m2m-secret"),
        )
    response.raise_for_status()
    user = await authenticate(provider, response.json()["access_token"])
    assert user is not None and user["client_id"] == "m2m-client"


async def test_s27_oidc_provider_token_for_another_resource_rejected(oidc_provider: NodeIssuer):
    token = await oidc_provider.client_credentials(resource="https://other-api.test")
    assert await authenticate(discovering(oidc_provider.issuer), token) is None


async def test_s26_oidc_provider_token_for_another_configured_issuer_rejected(
    oidc_provider: NodeIssuer, issuer: TestIssuer
):
    token = await oidc_provider.client_credentials(resource=AUDIENCE)
    # Keys of the real provider, but this provider expects our test issuer's iss.
    provider = JWTAuth(
        jwks_uri=oidc_provider.jwks_uri,
        issuer=issuer.issuer,
        audience=AUDIENCE,
        jwks_cache=JWKSCache(),
    )
    assert await authenticate(provider, token) is None


async def test_s28_oidc_provider_token_requires_at_jwt_profile(oidc_provider: NodeIssuer):
    token = await oidc_provider.client_credentials(resource=AUDIENCE)
    jwt_typ_only = discovering(oidc_provider.issuer, token_types=["JWT"])
    assert await authenticate(jwt_typ_only, token) is None
