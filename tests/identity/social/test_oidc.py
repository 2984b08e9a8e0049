"""Social sign-in with OpenID Connect, against a real OpenID Provider on 127.0.0.1 (panva's
oidc-provider): the generic OAuth plugin with discovery, the Google preset pointed at it,
sign-in with an ID token the client holds, and ID tokens that must be refused."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bastion.identity import generic_oauth
from bastion.identity.social import keycloak
from tests.identity.social.flows import (
    at_provider,
    back,
    callback_uri,
    count,
    identity_client,
    redirect_error,
    session_of,
    social_sign_in,
    start,
)
from tests.identity.social.standins import OIDCProvider, oidc_provider

CLIENT = {"client_id": "bastion-app", "client_secret": "bastion-app-secret"}


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    clients = [
        {
            **CLIENT,
            "token_endpoint_auth_method": "client_secret_post",
            "redirect_uris": [callback_uri(p) for p in ("corp", "google", "keycloak")],
        },
        {
            "client_id": "basic-app",
            "client_secret": "basic-secret",
            "redirect_uris": [callback_uri("corp")],
        },
    ]
    with oidc_provider(clients=clients) as provider:
        yield provider


@pytest.fixture(autouse=True)
def no_faults(idp: OIDCProvider) -> Iterator[None]:
    idp.clear_faults()
    yield
    idp.clear_faults()


def corp(idp: OIDCProvider, **extra: Any) -> Any:
    config = {"provider_id": "corp", "discovery_url": idp.discovery_url, "scopes": ["email"]}
    return generic_oauth(config=[{**config, **CLIENT, **extra}])


def google(idp: OIDCProvider, **extra: Any) -> dict[str, Any]:
    """The Google preset, its endpoints and issuer pointed at the local provider."""
    return {
        "google": {
            **CLIENT,
            "authorization_endpoint": idp.authorization_endpoint,
            "token_endpoint": idp.token_endpoint,
            "userinfo_endpoint": idp.userinfo_endpoint,
            "jwks_uri": idp.jwks_uri,
            "issuer": idp.issuer,
            **extra,
        }
    }


async def test_S32_generic_oidc_sign_in_verifies_the_id_token_and_binds_the_nonce(
    idp: OIDCProvider,
) -> None:
    async with identity_client(plugins=[corp(idp)]) as (identity, client):
        url = await start(client, "corp", callbackURL="/home")
        assert url.startswith(idp.authorization_endpoint + "?")
        query = httpx.URL(url).params
        assert query["scope"].split() == ["openid", "email"]  # openid added for OIDC
        assert len(query["nonce"]) == 32 and query["code_challenge_method"] == "S256"
        response = await back(client, await at_provider(url, "alice"))
        assert response.headers["location"] == "/home"
        found = await session_of(client)
        assert found is not None
        assert found["user"]["email"] == "alice@example.com"
        assert found["user"]["emailVerified"] is True
        (account,) = await identity.db.find_many("account")
        assert (account["providerId"], account["accountId"]) == ("corp", "alice")
        assert account["idToken"].count(".") == 2


async def test_client_secret_basic_and_presets(idp: OIDCProvider) -> None:
    plugin = generic_oauth(
        config=[
            {
                "provider_id": "corp",
                "discovery_url": idp.discovery_url,
                "client_id": "basic-app",
                "client_secret": "basic-secret",
                "authentication": "basic",
                "scopes": ["openid", "profile", "email"],
            },
            keycloak(issuer=idp.issuer, **CLIENT),
        ]
    )
    async with identity_client(plugins=[plugin]) as (_, client):
        response = await social_sign_in(client, "corp", "carol")
        assert redirect_error(response) is None
        client.cookies.clear()
        response = await social_sign_in(client, "keycloak", "alice")
        assert redirect_error(response) is None
        assert (await session_of(client))["user"]["email"] == "alice@example.com"  # type: ignore[index]


async def test_the_google_preset_with_its_endpoints_overridden(idp: OIDCProvider) -> None:
    async with identity_client(social_providers=google(idp)) as (identity, client):
        url = await start(client, "google")
        query = httpx.URL(url).params
        assert query["scope"].split() == ["email", "profile", "openid"]
        assert query["include_granted_scopes"] == "true"
        assert len(query["nonce"]) == 32  # checked at the callback (better-auth sends none)
        assert str(url).index("code_challenge") < str(url).index("include_granted_scopes")
        response = await back(client, await at_provider(url, "alice"))
        assert redirect_error(response) is None
        (account,) = await identity.db.find_many("account")
        assert account["providerId"] == "google" and account["accountId"] == "alice"


async def test_google_hd_restricts_the_hosted_domain(idp: OIDCProvider) -> None:
    async with identity_client(social_providers=google(idp, hd="example.com")) as (i, client):
        url = await start(client, "google")
        assert httpx.URL(url).params["hd"] == "example.com"
        # The local provider's tokens carry no `hd` claim: not a member of the domain.
        response = await back(client, await at_provider(url, "alice"))
        assert redirect_error(response) == "unable_to_get_user_info"
        assert await count(i, "user") == 0


async def test_S34_an_oidc_provider_saying_unverified_does_not_take_over(
    idp: OIDCProvider,
) -> None:
    async with identity_client(plugins=[corp(idp)]) as (identity, client):
        response = await client.post(
            "/api/auth/sign-up/email",
            json={"email": "bob@example.com", "password": "password-123", "name": "Bob"},
        )
        local = response.json()["user"]
        await identity.store.update_user(local["id"], {"emailVerified": True})
        client.cookies.clear()
        response = await social_sign_in(client, "corp", "bob")  # email_verified: false
        assert redirect_error(response) == "account_not_linked"
        assert len(await identity.store.list_accounts(local["id"])) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"token": {"status": 400, "body": {"error": "invalid_grant"}}}, "invalid_code"),
        ({"token": {"hang": True}}, "invalid_code"),
    ],
)
async def test_provider_faults_end_in_the_error_redirect(
    idp: OIDCProvider, fault: dict[str, Any], error: str
) -> None:
    async with identity_client(plugins=[corp(idp, timeout=1.0)]) as (identity, client):
        url = await start(client, "corp")
        callback = await at_provider(url, "carol")
        idp.set_faults(**fault)
        response = await back(client, callback)
        assert redirect_error(response) == error
        assert [await count(identity, m) for m in ("user", "account", "session")] == [0, 0, 0]


async def test_S32_discovery_naming_another_issuer_is_refused(idp: OIDCProvider) -> None:
    """rp-discovery-issuer-not-matching-config: the document at the configured issuer's
    well-known URL must name that issuer exactly."""
    plugin = corp(idp, issuer=idp.issuer + "/other")
    async with identity_client(plugins=[plugin]) as (identity, client):
        response = await client.post("/api/auth/sign-in/social", json={"provider": "corp"})
        assert response.status_code == 502
        assert response.json()["code"] == "FAILED_TO_GET_USER_INFO"
        assert await count(identity, "verification") == 0  # no state for a flow that cannot go


async def test_an_issuer_parameter_from_another_server_is_refused(idp: OIDCProvider) -> None:
    async with identity_client(plugins=[corp(idp)]) as (identity, client):
        url = await start(client, "corp")
        callback = await at_provider(url, "alice")
        params = {**callback.params, "iss": "https://evil.example"}
        response = await client.get("/api/auth/callback/corp", params=params)
        assert redirect_error(response) == "issuer_mismatch"
        assert await count(identity, "user") == 0


# -- sign-in with an ID token the client holds -------------------------------------------------


def id_token_for(idp: OIDCProvider, login: str, *, nonce: str = "n-0123456789") -> str:
    """An ID token for `login`, issued to bastion-app through the provider's own flow."""
    redirect = callback_uri("google")
    url = idp.authorization_url(CLIENT["client_id"], redirect_uri=redirect, nonce=nonce, state="s")
    callback = idp.sign_in(url, login)
    tokens = httpx.post(
        idp.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": callback.code,
            "redirect_uri": redirect,
            **CLIENT,
        },
        timeout=10,
    ).json()
    token: str = tokens["id_token"]
    return token


def tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["email"] = "mallory@example.com"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


async def test_sign_in_with_an_id_token(idp: OIDCProvider) -> None:
    token = await asyncio.to_thread(id_token_for, idp, "alice")
    async with identity_client(social_providers=google(idp)) as (identity, client):
        response = await client.post(
            "/api/auth/sign-in/social",
            json={"provider": "google", "idToken": {"token": token, "nonce": "n-0123456789"}},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["redirect"] is False and "url" not in body
        assert body["user"]["email"] == "alice@example.com"
        found = await session_of(client)
        assert found is not None and found["session"]["token"] == body["token"]
        (account,) = await identity.db.find_many("account")
        assert account["idToken"] == token and account["refreshToken"] is None


@pytest.mark.parametrize("problem", ["forged", "nonce", "audience"])
async def test_S32_an_id_token_that_fails_a_check_is_refused(
    idp: OIDCProvider, problem: str
) -> None:
    token = await asyncio.to_thread(id_token_for, idp, "alice")
    options = google(idp)
    nonce = "n-0123456789"
    if problem == "forged":
        token = tampered(token)
    elif problem == "nonce":
        nonce = "another-nonce"
    else:  # signed by the same provider for another client
        options["google"]["client_id"] = "basic-app"
    async with identity_client(social_providers=options) as (identity, client):
        response = await client.post(
            "/api/auth/sign-in/social",
            json={"provider": "google", "idToken": {"token": token, "nonce": nonce}},
        )
        assert response.status_code == 401
        assert response.json() == {"message": "Invalid token", "code": "INVALID_TOKEN"}
        assert await count(identity, "user") == 0


async def test_providers_without_id_tokens_say_so(idp: OIDCProvider) -> None:
    options = {"github": {"client_id": "x", "client_secret": "y"}}
    async with identity_client(social_providers=options) as (_, client):
        response = await client.post(
            "/api/auth/sign-in/social", json={"provider": "github", "idToken": {"token": "a.b.c"}}
        )
    assert response.status_code == 404
    assert response.json()["code"] == "ID_TOKEN_NOT_SUPPORTED"
