"""Auth0Auth: configuration from arguments and the environment, tokens from a real
oauth2-mock-server dressed as Auth0 (typ JWT), RFC 9068 tokens from the real oidc-provider,
and attack tokens from our own issuer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bastion.auth.providers.auth0 import Auth0Auth, require_permissions, require_scopes
from bastion.auth.scopes import token_permissions, token_scopes
from bastion.jose import ConfigurationError, JWKSCache
from tests.auth.issuers import (
    AUDIENCE,
    FakeClock,
    NodeIssuer,
    TestIssuer,
    forge,
    hmac_token,
    node_issuer,
    request,
)


@pytest.fixture(scope="module")
def auth0() -> Iterator[NodeIssuer]:
    with node_issuer("mock-auth0.mjs", "oauth2-mock-server", AUDIENCE=AUDIENCE) as running:
        yield running


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[NodeIssuer]:
    with node_issuer("oidc-provider-server.mjs", "oidc-provider", AUDIENCE=AUDIENCE) as running:
        yield running


def local(node: NodeIssuer | TestIssuer, **options: Any) -> Auth0Auth:
    """An Auth0Auth pointed at a local issuer (the override a test or a custom domain uses)."""
    options.setdefault("audience", AUDIENCE)
    options.setdefault("jwks_cache", JWKSCache())
    jwks_uri = node.jwks_uri
    return Auth0Auth(issuer=node.issuer, jwks_uri=jwks_uri, **options)


async def authenticate(provider: Auth0Auth, token: str) -> Any:
    return await provider.authenticate_token(token, request(token))


# -- configuration ---------------------------------------------------------------------------


@pytest.fixture
def no_auth0_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("AUTH0_DOMAIN", raising=False)
    monkeypatch.delenv("AUTH0_AUDIENCE", raising=False)
    return monkeypatch


def test_missing_domain_and_audience_are_named(no_auth0_env: pytest.MonkeyPatch):
    with pytest.raises(ConfigurationError) as error:
        Auth0Auth()
    assert "domain" in str(error.value) and "AUTH0_DOMAIN" in str(error.value)
    assert "audience" in str(error.value) and "AUTH0_AUDIENCE" in str(error.value)
    with pytest.raises(ConfigurationError, match="AUTH0_AUDIENCE") as only:
        Auth0Auth(domain="tenant.auth0.com")
    assert "AUTH0_DOMAIN" not in str(only.value)
    with pytest.raises(ConfigurationError, match="AUTH0_DOMAIN"):
        Auth0Auth(audience=AUDIENCE)


def test_environment_defaults(no_auth0_env: pytest.MonkeyPatch):
    no_auth0_env.setenv("AUTH0_DOMAIN", "tenant.eu.auth0.com")
    no_auth0_env.setenv("AUTH0_AUDIENCE", AUDIENCE)
    provider = Auth0Auth(jwks_cache=JWKSCache())
    assert provider.issuer == "https://tenant.eu.auth0.com/"
    assert provider.jwks_uri == "https://tenant.eu.auth0.com/.well-known/jwks.json"
    assert provider.verifier.policy.audience == (AUDIENCE,)
    assert provider.verifier.policy.algorithms == ("RS256",)
    assert provider.name == "auth0"


@pytest.mark.parametrize(
    "domain", ["tenant.auth0.com", "https://tenant.auth0.com", "https://tenant.auth0.com/"]
)
def test_domain_forms(domain: str):
    provider = Auth0Auth(domain=domain, audience=AUDIENCE, jwks_cache=JWKSCache())
    assert provider.issuer == "https://tenant.auth0.com/"


@pytest.mark.parametrize(
    "domain", ["http://tenant.auth0.com", "tenant.auth0.com/api", "https://u@tenant.auth0.com"]
)
def test_bad_domains_rejected(domain: str):
    with pytest.raises(ConfigurationError, match="domain"):
        Auth0Auth(domain=domain, audience=AUDIENCE, jwks_cache=JWKSCache())


def test_s21_only_asymmetric_algorithms(no_auth0_env: pytest.MonkeyPatch):
    with pytest.raises(ConfigurationError):
        Auth0Auth(domain="t.auth0.com", audience=AUDIENCE, algorithms=["HS256"])
    with pytest.raises(ConfigurationError):
        Auth0Auth(domain="t.auth0.com", audience=AUDIENCE, algorithms=["none"])


def test_issuer_override_derives_the_jwks_uri(no_auth0_env: pytest.MonkeyPatch):
    provider = Auth0Auth(issuer="http://127.0.0.1:4010/", audience=AUDIENCE, jwks_cache=JWKSCache())
    assert provider.jwks_uri == "http://127.0.0.1:4010/.well-known/jwks.json"


# -- the Auth0 look-alike (oauth2-mock-server) ---------------------------------------------------


async def test_auth0_access_token_accepted_and_the_user_is_the_claims(auth0: NodeIssuer):
    provider = local(auth0)
    token = await auth0.client_credentials(audience=AUDIENCE, scope="read:things write:things")
    user = await authenticate(provider, token)
    assert user is not None
    assert user["sub"] == "test-client@clients" and user["azp"] == "test-client"
    assert user["iss"] == auth0.issuer and user["aud"] == AUDIENCE
    assert user["https://example.test/roles"] == ["admin"]  # namespaced custom claim kept
    assert token_scopes(user) == {"read:things", "write:things"}
    assert await provider.authorize_user(user, request(token))


async def test_auth0_json_body_and_basic_client_auth(auth0: NodeIssuer):
    async with httpx.AsyncClient() as client:
        response = await client.post(
            auth0.issuer + "oauth/token",
            json={"grant_type": "client_credentials", "audience": AUDIENCE},
            auth=("m2m-client", "m2m-secret"),
        )
    response.raise_for_status()
    user = await authenticate(local(auth0), response.json()["access_token"])
    assert user is not None and user["sub"] == "m2m-client@clients"


async def test_s27_token_for_another_api_rejected(auth0: NodeIssuer):
    token = await auth0.client_credentials(audience="https://other-api.test")
    assert await authenticate(local(auth0), token) is None


async def test_s25_expired_auth0_token_rejected(auth0: NodeIssuer):
    token = await auth0.client_credentials(audience=AUDIENCE, x_expires_in="-60")
    assert await authenticate(local(auth0), token) is None


async def test_s28_auth0_id_token_rejected_by_audience(auth0: NodeIssuer):
    """An ID token (aud = the client id) is never an access token for the API."""
    answer = await auth0.token(grant_type="password", username="alice", client_id="test-client")
    id_token = answer["id_token"]
    provider = local(auth0)
    assert await authenticate(provider, id_token) is None
    # The same token does verify, signature and all, as an ID token for that client.
    as_client = local(auth0, audience="test-client")
    assert (await authenticate(as_client, id_token))["sub"] == "johndoe"


async def test_s26_trailing_slash_issuer_variant_rejected(auth0: NodeIssuer):
    token = await auth0.client_credentials(audience=AUDIENCE)
    provider = Auth0Auth(
        issuer=auth0.issuer.rstrip("/"),
        jwks_uri=auth0.jwks_uri,
        audience=AUDIENCE,
        jwks_cache=JWKSCache(),
    )
    assert await authenticate(provider, token) is None


async def test_s20_s21_forged_tokens_against_the_auth0_keys(auth0: NodeIssuer):
    async with httpx.AsyncClient() as client:
        jwks = (await client.get(auth0.jwks_uri)).json()
    jwk = jwks["keys"][0]
    claims = {
        "iss": auth0.issuer,
        "aud": AUDIENCE,
        "sub": "admin@clients",
        "exp": int(time.time()) + 600,
    }
    provider = local(auth0)
    for header, secret in [
        ({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]}, json.dumps(jwk).encode()),
        ({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]}, json.dumps(jwks).encode()),
    ]:
        assert await authenticate(provider, hmac_token(header, claims, secret)) is None
    for alg in ("none", "None", "NONE"):
        token = forge({"alg": alg, "typ": "JWT", "kid": jwk["kid"]}, claims)
        assert await authenticate(provider, token) is None


async def test_require_scopes_with_auth0_tokens(auth0: NodeIssuer):
    read_only = await auth0.client_credentials(audience=AUDIENCE, scope="read:things")
    both = await auth0.client_credentials(audience=AUDIENCE, scope="read:things write:things")
    provider = local(auth0, authorize_user=require_scopes("write:things"))
    reader = await authenticate(provider, read_only)
    writer = await authenticate(provider, both)
    assert reader is not None and writer is not None
    assert not await provider.authorize_user(reader, request())
    assert await provider.authorize_user(writer, request())
    assert Auth0Auth.require_scopes is require_scopes


# -- the RFC 9068 profile (oidc-provider) -------------------------------------------------------


async def test_auth0_rfc9068_profile_at_jwt_accepted(oidc_provider: NodeIssuer):
    token = await oidc_provider.client_credentials(resource=AUDIENCE)
    provider = Auth0Auth(issuer=oidc_provider.issuer, audience=AUDIENCE, jwks_cache=JWKSCache())
    user = await authenticate(provider, token)
    assert user is not None and user["client_id"] == "test-client"


# -- attack tokens from our own issuer ---------------------------------------------------------


async def test_s28_id_token_shaped_token_with_nonce_rejected(issuer: TestIssuer):
    provider = local(issuer)
    assert await authenticate(provider, issuer.token(typ="JWT"))
    assert await authenticate(provider, issuer.token(typ="JWT", nonce="n-0S6_WzA2Mj")) is None


@pytest.mark.parametrize(
    ("typ", "accepted"),
    [
        ("JWT", True),
        ("at+jwt", True),
        ("application/at+jwt", True),
        (None, False),
        ("id_token+jwt", False),
        ("logout+jwt", False),
    ],
)
async def test_s28_auth0_token_types(issuer: TestIssuer, typ: str | None, accepted: bool):
    user = await authenticate(local(issuer), issuer.token(typ=typ))
    assert (user is not None) is accepted


async def test_s22_rs256_only_by_default(issuer: TestIssuer):
    es = issuer.add_key("ES256")
    assert await authenticate(local(issuer), issuer.token(es)) is None
    assert await authenticate(local(issuer, algorithms=["RS256", "ES256"]), issuer.token(es))


async def test_default_authorize_user_needs_sub_and_unexpired_exp(issuer: TestIssuer):
    clock = FakeClock(start=time.time())
    provider = local(issuer, clock=clock)
    user = await authenticate(provider, issuer.token(exp=int(clock.now) + 60))
    assert await provider.authorize_user(user, request())
    clock.advance(120)
    assert not await provider.authorize_user(user, request())
    assert not await provider.authorize_user({"exp": clock.now + 60}, request())
    assert await provider.authorize_user({"id": "session-user"}, request())


async def test_require_permissions(issuer: TestIssuer):
    provider = local(issuer, authorize_user=require_permissions("read:docs", "write:docs"))
    both = await authenticate(provider, issuer.token(permissions=["read:docs", "write:docs"]))
    one = await authenticate(provider, issuer.token(permissions=["read:docs"]))
    assert token_permissions(both) == {"read:docs", "write:docs"}
    assert await provider.authorize_user(both, request())
    assert not await provider.authorize_user(one, request())
    assert not await provider.authorize_user(
        {"permissions": ["read:docs", "write:docs"]}, request()
    )


def test_scope_helpers_read_only_well_formed_claims():
    assert token_scopes({"scope": "a b  c"}) == {"a", "b", "c"}
    assert token_scopes({"scp": ["a", "b", 3]}) == {"a", "b"}
    assert token_scopes({"scope": ["a"]}) == frozenset()  # `scope` is a string (RFC 9068)
    assert token_permissions({"permissions": "a b"}) == frozenset()
    assert token_scopes("alice") == frozenset()
    with pytest.raises(ValueError):
        require_scopes()
    with pytest.raises(ValueError):
        require_scopes("read write")
