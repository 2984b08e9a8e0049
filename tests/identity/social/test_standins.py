"""The identity-provider stand-ins themselves, through real HTTP: the OpenID Provider (Node,
panva/oidc-provider), the GitHub stand-in, and a browser signing in at the latter."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from bastion.jose import DiscoveredKeys, JWKSCache, JWTPolicy, JWTVerifier
from tests.identity.social.standins import (
    OIDCProvider,
    SignInError,
    github_standin,
    oidc_provider,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CALLBACK = "http://127.0.0.1:9/api/auth/callback/standin"  # never opened: sign_in stops there


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# -- the OpenID Provider ------------------------------------------------------------------------

CLIENTS = [
    {
        "client_id": "post-client",
        "client_secret": "post-secret",
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "client_secret_post",
    },
    {
        "client_id": "basic-client",
        "client_secret": "basic-secret",
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "client_secret_basic",
    },
]


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    """One provider for the module's tests (each test's faults are cleared after it)."""
    with oidc_provider(clients=CLIENTS) as running:
        yield running


@pytest.fixture
def provider(idp: OIDCProvider) -> Iterator[OIDCProvider]:
    yield idp
    idp.clear_faults()


def verifier_for(idp: OIDCProvider, audience: str) -> JWTVerifier:
    policy = JWTPolicy(
        algorithms=("RS256",),
        issuer=idp.issuer,
        audience=(audience,),
        required_claims=frozenset({"exp", "iat", "sub", "nonce"}),
    )
    return JWTVerifier(policy, DiscoveredKeys(JWKSCache(), idp.issuer))


async def test_oidc_code_flow_with_pkce_and_nonce(provider: OIDCProvider) -> None:
    verifier, challenge = pkce()
    nonce, state = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url = provider.authorization_url(
        "post-client",
        redirect_uri=CALLBACK,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    callback = provider.sign_in(url, "alice")
    assert callback.method == "GET"
    assert callback.url.startswith(CALLBACK + "?")
    assert callback.params["state"] == state
    assert callback.params["iss"] == provider.issuer  # RFC 9207

    async with httpx.AsyncClient() as http:
        metadata = (await http.get(provider.discovery_url)).json()
        assert metadata["issuer"] == provider.issuer
        assert metadata["token_endpoint"] == provider.token_endpoint
        assert metadata["jwks_uri"] == provider.jwks_uri
        assert "S256" in metadata["code_challenge_methods_supported"]
        redemption = {
            "grant_type": "authorization_code",
            "code": callback.code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_id": "post-client",
            "client_secret": "post-secret",
        }
        answer = await http.post(
            provider.token_endpoint,
            data=redemption,
        )
        assert answer.status_code == 200, answer.text
        tokens = answer.json()
        assert tokens["token_type"].lower() == "bearer"
        assert "refresh_token" not in tokens  # no offline_access asked

        claims = await verifier_for(provider, "post-client").verify(tokens["id_token"])
        assert claims["nonce"] == nonce
        assert claims["sub"] == "alice"
        assert claims["email"] == "alice@example.com"
        assert claims["email_verified"] is True
        assert claims["name"] == "Alice Example"
        assert claims["picture"] == "https://images.example.test/alice.png"

        userinfo = await http.get(
            provider.userinfo_endpoint,
            headers={"authorization": f"Bearer {tokens['access_token']}"},
        )
        assert userinfo.status_code == 200, userinfo.text
        assert userinfo.json()["sub"] == "alice"
        assert userinfo.json()["email"] == "alice@example.com"
        assert userinfo.json()["picture"] == "https://images.example.test/alice.png"

        again = await http.post(  # a code is single-use
            provider.token_endpoint,
            data=redemption,
        )
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"


async def test_oidc_form_post_basic_auth_and_refresh_token(provider: OIDCProvider) -> None:
    verifier, challenge = pkce()
    url = provider.authorization_url(
        "basic-client",
        redirect_uri=CALLBACK,
        scope="openid email profile offline_access",
        prompt="consent",
        response_mode="form_post",
        state="s1",
        nonce="n1",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    callback = provider.sign_in(url, "bob")
    assert callback.method == "POST"
    assert callback.url == CALLBACK
    assert callback.params["state"] == "s1"
    basic = httpx.BasicAuth("basic-client", "basic-secret")
    async with httpx.AsyncClient(auth=basic) as http:
        form = {"grant_type": "authorization_code", "code": callback.code}
        answer = await http.post(
            provider.token_endpoint,
            data={**form, "redirect_uri": CALLBACK, "code_verifier": verifier},
        )
        assert answer.status_code == 200, answer.text
        tokens = answer.json()
        claims = await verifier_for(provider, "basic-client").verify(tokens["id_token"])
        assert claims["sub"] == "b0b-0000-0001"  # a given sub
        assert claims["email_verified"] is False
        assert "offline_access" in tokens["scope"].split()

        refreshed = await http.post(
            provider.token_endpoint,
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["access_token"] != tokens["access_token"]
        assert refreshed.json()["id_token"]


async def test_oidc_refuses_a_wrong_code_verifier_and_unknown_logins(
    provider: OIDCProvider,
) -> None:
    _, challenge = pkce()
    url = provider.authorization_url(
        "post-client",
        redirect_uri=CALLBACK,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    with pytest.raises(SignInError, match="No user"):
        provider.sign_in(url, "mallory")
    callback = provider.sign_in(url, "carol")
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            provider.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": callback.code,
                "redirect_uri": CALLBACK,
                "code_verifier": pkce()[0],
                "client_id": "post-client",
                "client_secret": "post-secret",
            },
        )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_oidc_cancel_returns_access_denied(provider: OIDCProvider) -> None:
    url = provider.authorization_url("post-client", redirect_uri=CALLBACK, state="s2")
    callback = provider.sign_in(url, "alice", cancel=True)
    assert callback.error == "access_denied"
    assert callback.params["state"] == "s2"


async def test_oidc_token_endpoint_faults(provider: OIDCProvider) -> None:
    provider.set_faults(token={"status": 400, "body": {"error": "invalid_client"}})
    async with httpx.AsyncClient() as http:
        answer = await http.post(provider.token_endpoint, data={"grant_type": "x"})
        assert answer.status_code == 400
        assert answer.json() == {"error": "invalid_client"}

        provider.set_faults(token={"hang": True})
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await http.post(provider.token_endpoint, data={"grant_type": "x"}, timeout=0.5)
        assert time.monotonic() - started < 3

        provider.set_faults(token={"delay": 0.3}, userinfo={"status": 503})
        started = time.monotonic()
        answer = await http.post(provider.token_endpoint, data={"grant_type": "x"})
        assert time.monotonic() - started >= 0.3
        assert answer.status_code == 400  # then the real answer (a bad request)
        assert (await http.get(provider.userinfo_endpoint)).status_code == 503

        provider.clear_faults()
        assert provider.faults() == {}


def test_oidc_clients_added_while_running(provider: OIDCProvider) -> None:
    callback_uri = "http://127.0.0.1:10/late"
    provider.add_clients(
        {"client_id": "late", "client_secret": "late-secret", "redirect_uris": [callback_uri]}
    )
    callback = provider.sign_in(
        provider.authorization_url("late", redirect_uri=callback_uri), "alice"
    )
    assert callback.url.startswith(callback_uri + "?code=")


# -- GitHub ---------------------------------------------------------------------------------------

UA = {"user-agent": "bastion-tests", "accept": "application/json"}


def exchange(
    token_url: str, code: str, verifier: str | None = None, **extra: str
) -> dict[str, Any]:
    form = {
        "client_id": "gh-client",
        "client_secret": "gh-secret",
        "code": code,
        "redirect_uri": CALLBACK,
        **extra,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    answer = httpx.post(token_url, data=form, headers=UA)
    assert answer.status_code == 200  # GitHub answers its errors with 200 too
    body: dict[str, Any] = answer.json()
    return body


def test_github_code_flow_user_and_emails() -> None:
    with github_standin() as gh:
        verifier, challenge = pkce()
        url = gh.authorization_url(
            redirect_uri=CALLBACK,
            state="st",
            scope="read:user user:email",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
        callback = gh.sign_in(url, "octocat")
        assert callback.url.startswith(CALLBACK + "?code=")
        assert callback.params["state"] == "st"
        tokens = exchange(gh.token_url, callback.code, verifier)
        assert tokens["token_type"] == "bearer"
        assert tokens["scope"] == "read:user,user:email"
        assert tokens["access_token"].startswith("gho_")
        again = exchange(gh.token_url, callback.code, verifier)  # single-use
        assert again["error"] == "bad_verification_code"

        auth = {**UA, "authorization": f"Bearer {tokens['access_token']}"}
        user = httpx.get(gh.user_url, headers=auth).json()
        assert user["id"] == 583231
        assert user["login"] == "octocat"
        assert user["name"] == "The Octocat"
        assert user["email"] == "octocat@example.com"
        assert user["avatar_url"].startswith("https://")
        emails = httpx.get(gh.emails_url, headers=auth).json()
        assert emails == [
            {
                "email": "octocat@example.com",
                "primary": True,
                "verified": True,
                "visibility": "public",
            }
        ]
        with httpx.Client() as bare:
            del bare.headers["user-agent"]
            no_agent = bare.get(gh.user_url, headers={"authorization": auth["authorization"]})
        assert no_agent.status_code == 403  # GitHub wants a User-Agent
        bad = httpx.get(gh.user_url, headers={**UA, "authorization": "Bearer nope"})
        assert bad.status_code == 401
        assert bad.json()["message"] == "Bad credentials"


def test_github_private_and_unverified_emails_and_scopes() -> None:
    with github_standin() as gh:
        url = gh.authorization_url(redirect_uri=CALLBACK, scope="read:user,user:email")
        tokens = exchange(gh.token_url, gh.sign_in(url, "private-pat").code)
        auth = {**UA, "authorization": f"token {tokens['access_token']}"}
        assert httpx.get(gh.user_url, headers=auth).json()["email"] is None
        emails = httpx.get(gh.emails_url, headers=auth).json()
        primary = [e for e in emails if e["primary"]]
        assert primary == [
            {"email": "pat@example.com", "primary": True, "verified": True, "visibility": "private"}
        ]

        tokens = exchange(gh.token_url, gh.sign_in(url, "unverified-uma").code)
        auth = {**UA, "authorization": f"Bearer {tokens['access_token']}"}
        emails = httpx.get(gh.emails_url, headers=auth).json()
        assert emails and not any(e["verified"] for e in emails)

        no_scope = gh.authorization_url(redirect_uri=CALLBACK)
        tokens = exchange(gh.token_url, gh.sign_in(no_scope, "octocat").code)
        assert tokens["scope"] == ""
        auth = {**UA, "authorization": f"Bearer {tokens['access_token']}"}
        assert httpx.get(gh.emails_url, headers=auth).status_code == 404  # needs user:email


def test_github_errors() -> None:
    strict = {
        "client_id": "strict",
        "client_secret": "strict-secret",
        "redirect_uris": ["http://app.example.test/callback"],
    }
    with github_standin(clients=[strict]) as gh:
        with pytest.raises(SignInError, match="404"):
            gh.sign_in(gh.authorization_url("unknown-client"), "octocat")
        mismatch = gh.sign_in(
            gh.authorization_url("strict", redirect_uri="http://evil.example.test/callback"),
            "octocat",
        )
        assert mismatch.url.startswith("http://app.example.test/callback?")
        assert mismatch.error == "redirect_uri_mismatch"
        below = gh.sign_in(
            gh.authorization_url("strict", redirect_uri="http://app.example.test/callback/x"),
            "octocat",
        )
        assert "code" in below.params
        with pytest.raises(SignInError, match="Incorrect username"):
            gh.sign_in(gh.authorization_url("strict"), "nobody")
        denied = gh.sign_in(gh.authorization_url("strict", state="s"), "octocat", cancel=True)
        assert denied.error == "access_denied"
        assert denied.params["state"] == "s"

        _, challenge = pkce()
        code = gh.sign_in(
            gh.authorization_url("strict", code_challenge=challenge, code_challenge_method="S256"),
            "octocat",
        ).code
        form = {"client_id": "strict", "client_secret": "wrong", "code": code}
        answer = httpx.post(gh.token_url, data=form, headers=UA).json()
        assert answer["error"] == "incorrect_client_credentials"
        form["client_secret"] = "strict-secret"
        answer = httpx.post(gh.token_url, data=form, headers=UA).json()  # no code_verifier
        assert answer["error"] == "bad_verification_code"

        # Without Accept: application/json, GitHub answers form-encoded.
        plain = httpx.post(gh.token_url, data=form)
        assert plain.headers["content-type"].startswith("application/x-www-form-urlencoded")
        assert dict(parse_qsl(plain.text))["error"] == "bad_verification_code"


def test_github_faults() -> None:
    with github_standin() as gh:
        url = gh.authorization_url(redirect_uri=CALLBACK, scope="user:email")
        gh.faults.token_error = "bad_verification_code"
        assert exchange(gh.token_url, gh.sign_in(url, "octocat").code)["error"] == (
            "bad_verification_code"
        )
        gh.faults.reset()
        tokens = exchange(gh.token_url, gh.sign_in(url, "octocat").code)
        auth = {**UA, "authorization": f"Bearer {tokens['access_token']}"}
        gh.faults.user_status = 500
        assert httpx.get(gh.user_url, headers=auth).status_code == 500
        gh.faults.reset()
        gh.faults.token_delay = 2.0
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(gh.token_url, data={"code": "x"}, headers=UA, timeout=0.3)
        gh.faults.token_delay = 0.0
        gh.faults.token_status = 502
        assert httpx.post(gh.token_url, data={"code": "x"}, headers=UA).status_code == 502
        assert gh.hits["POST /login/oauth/access_token"] == 4


def test_github_app_refresh_tokens_rotate() -> None:
    with github_standin() as gh:
        url = gh.authorization_url("Iv1.gh-app", redirect_uri=CALLBACK)
        code = gh.sign_in(url, "private-pat").code
        form = {"client_id": "Iv1.gh-app", "client_secret": "gh-app-secret"}
        tokens = httpx.post(gh.token_url, json={**form, "code": code}, headers=UA).json()
        assert tokens["access_token"].startswith("ghu_")
        assert tokens["refresh_token"].startswith("ghr_")
        assert tokens["expires_in"] == 8 * 3600
        refresh = {**form, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        renewed = httpx.post(gh.token_url, data=refresh, headers=UA).json()
        assert renewed["refresh_token"] != tokens["refresh_token"]
        auth = {**UA, "authorization": f"Bearer {renewed['access_token']}"}
        assert httpx.get(gh.user_url, headers=auth).json()["login"] == "private-pat"
        reused = httpx.post(gh.token_url, data=refresh, headers=UA).json()
        assert reused["error"] == "bad_refresh_token"


# -- a browser at the GitHub stand-in ---------------------------------------------------------


class _CallbackPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        params = dict(parse_qsl(urlsplit(self.path).query))
        body = f'<html><body><p id="code">{params.get("code", "")}</p></body></html>'.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def callback_page() -> Iterator[str]:
    """A tiny local page to be redirected to: it shows the `code` it was given."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CallbackPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/callback"
    finally:
        server.shutdown()
        server.server_close()


def test_browser_signs_in_at_the_github_standin(
    chromium_browser: Browser, callback_page: str
) -> None:
    with github_standin() as gh:
        page = chromium_browser.new_page()
        page.goto(gh.authorization_url(redirect_uri=callback_page, state="browser"))
        page.fill("input[name=login]", "octocat")
        page.click("#login button[type=submit]")
        page.wait_for_url(callback_page + "?**")
        params = dict(parse_qsl(urlsplit(page.url).query))
        assert params["state"] == "browser"
        assert page.text_content("#code") == params["code"]
        tokens = exchange(gh.token_url, params["code"], redirect_uri=callback_page)
        assert tokens["access_token"].startswith("gho_")
