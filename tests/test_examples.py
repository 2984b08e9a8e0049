"""The example programs, run in-process as `bastion serve` would run them (their lifespan,
then HTTP over httpx.ASGITransport): examples/sessions.py with a real sign-up and the
verification mail delivered to a local SMTP server, examples/auth0.py against a local
Auth0-like issuer (tests/e2e/node/mock-auth0.mjs) and our own test issuer."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn

from bastion.serving import ServedApp, serving
from tests.auth.issuers import IssuerServer, NodeIssuer, TestIssuer, issuer_server, node_issuer
from tests.e2e.bastion_server import free_port
from tests.identity.mailbox import SMTPMailbox, smtp_mailbox_fixture  # noqa: F401

with warnings.catch_warnings():
    # Importing builds the module's `app` from the environment, which has no secret here.
    warnings.simplefilter("ignore")
    from examples import auth0, sessions, sessions_client

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
BASE = "http://127.0.0.1:4111"
AUDIENCE = "https://agents.example.test"


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app as `bastion serve` runs it (tables created at start-up), and a client."""
    served = serving(app)
    assert isinstance(served, ServedApp)
    async with (
        served.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url=BASE) as http,
    ):
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- examples/sessions.py ---------------------------------------------------------------------


def sessions_env(mailbox: SMTPMailbox, **extra: str) -> dict[str, str]:
    return {
        "BASTION_SECRET": SECRET,
        "DATABASE_URL": "sqlite://",
        "BETTER_AUTH_URL": BASE,
        "SMTP_FROM": "Bastion <no-reply@bastion.test>",
        "SMTP_HOST": mailbox.host,
        "SMTP_PORT": str(mailbox.port),
        "SMTP_TLS": "false",
        **extra,
    }


async def test_sessions_verified_users_only_then_bearer(smtp_mailbox: SMTPMailbox) -> None:
    async with running(sessions.create_app(sessions_env(smtp_mailbox))) as http:
        token = await sessions_client.sign_up(
            http, "Ada Lovelace", "ada@example.com", "correct-horse"
        )
        assert not http.cookies  # the client keeps the token only

        # Signed in, not verified: the example's authorize_user refuses.
        refused = await sessions_client.ask(http, token, "who am i?")
        assert refused.status_code == 403
        assert refused.json() == {"error": "Access denied"}
        assert (await http.get("/api/agents")).status_code == 401  # no credential at all

        # The verification mail went over SMTP; follow its link.
        mail = await smtp_mailbox.wait_for("ada@example.com")
        assert "Verify your email" in mail.subject
        link = smtp_mailbox.url_for("ada@example.com", containing="/api/auth/verify-email")
        assert link.startswith(BASE)
        parts = urlsplit(link)
        verified = await http.get(f"{parts.path}?{parts.query}")
        assert verified.status_code in (200, 302), verified.text
        http.cookies.clear()

        answer = await sessions_client.ask(http, token, "who am i?")
        assert answer.status_code == 200, answer.text
        assert answer.json()["toolResults"][0]["result"] == {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "verified": True,
        }
        kept = await http.post(
            "/api/agents/assistant/generate",
            json={"messages": "hello", "threadId": "ada-1"},
            headers=bearer(token),
        )
        assert kept.status_code == 200, kept.text
        threads = (await http.get("/api/memory/threads", headers=bearer(token))).json()
        assert [t["id"] for t in threads] == ["ada-1"]

        # A new sign-in's token, and the signed token of `set-auth-token`, work the same.
        again = await sessions_client.sign_in(http, "ada@example.com", "correct-horse")
        assert again != token
        assert (await sessions_client.ask(http, again, "who am i?")).status_code == 200
        signed = await http.post(
            "/api/auth/sign-in/email",
            json={"email": "ada@example.com", "password": "correct-horse"},
        )
        http.cookies.clear()
        listed = await http.get("/api/agents", headers=bearer(signed.headers["set-auth-token"]))
        assert listed.status_code == 200
        assert list(listed.json()) == ["assistant"]

        # Signed out, the token is refused (401, not 403).
        out = await http.post("/api/auth/sign-out", headers=bearer(again))
        assert out.status_code == 200
        http.cookies.clear()
        assert (await sessions_client.ask(http, again, "who am i?")).status_code == 401


@asynccontextmanager
async def over_http(app: Any) -> AsyncIterator[str]:
    """The app served by uvicorn on a free local port, in this event loop; its URL."""
    server = uvicorn.Server(
        uvicorn.Config(serving(app), host="127.0.0.1", port=free_port(), log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_sessions_client_script(
    smtp_mailbox: SMTPMailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/sessions_client.py's main(), as run from a shell, against the example."""
    app = sessions.create_app(sessions_env(smtp_mailbox))
    async with over_http(app) as url:
        account = ["--url", url, "--email", "bo@example.com", "--password", "correct-horse"]
        assert await sessions_client.main([*account, "--sign-up", "--name", "Bo"]) == 1
        assert "verify your email address first" in capsys.readouterr().err

        link = urlsplit(
            (await smtp_mailbox.wait_for("bo@example.com")).urls[0]
        )  # the link names BASE; the server listens elsewhere
        async with httpx.AsyncClient(base_url=url) as http:
            verified = await http.get(f"{link.path}?{link.query}")
            assert verified.status_code in (200, 302), verified.text

        assert await sessions_client.main([*account, "who am i?"]) == 0
        printed = capsys.readouterr().out
        assert printed.startswith("my_profile returned {")
        assert '"email": "bo@example.com"' in printed


async def test_sessions_github_and_google_sign_in_from_the_environment(
    smtp_mailbox: SMTPMailbox, caplog: pytest.LogCaptureFixture
) -> None:
    keys = {
        "GITHUB_CLIENT_ID": "gh-id",
        "GITHUB_CLIENT_SECRET": "gh-secret",
        "GOOGLE_CLIENT_ID": "g-id.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET": "g-secret",
    }
    with caplog.at_level(logging.WARNING, logger="examples.sessions"):
        app = sessions.create_app(sessions_env(smtp_mailbox, **keys))
    assert [r.getMessage() for r in caplog.records] == ["social sign-in: GitHub, Google"]
    async with running(app) as http:
        for provider, where, client_id in [
            ("github", "github.com/login/oauth/authorize", "gh-id"),
            ("google", "accounts.google.com/o/oauth2/v2/auth", "g-id.apps.googleusercontent.com"),
        ]:
            started = await http.post("/api/auth/sign-in/social", json={"provider": provider})
            assert started.status_code == 200, started.text
            url = urlsplit(started.json()["url"])
            assert f"{url.netloc}{url.path}" == where
            query = parse_qs(url.query)
            assert query["client_id"] == [client_id]
            assert query["redirect_uri"] == [f"{BASE}/api/auth/callback/{provider}"]
            http.cookies.clear()  # the state cookie


async def test_sessions_without_keys_has_no_social_sign_in(
    smtp_mailbox: SMTPMailbox, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="examples.sessions"):
        app = sessions.create_app(sessions_env(smtp_mailbox))
    assert not caplog.records  # nothing to say: email and password only
    async with running(app) as http:
        for provider in ("github", "google"):
            refused = await http.post("/api/auth/sign-in/social", json={"provider": provider})
            assert refused.status_code == 404
            assert refused.json() == {"message": "Provider not found", "code": "PROVIDER_NOT_FOUND"}


def test_sessions_half_a_key_pair_is_refused(smtp_mailbox: SMTPMailbox) -> None:
    env = sessions_env(smtp_mailbox, GITHUB_CLIENT_ID="gh-id")
    with pytest.raises(ValueError, match="set both GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET"):
        sessions.create_app(env)


# -- examples/auth0.py ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mock_auth0() -> Iterator[NodeIssuer]:
    # Its tokens carry the namespaced roles claim the example reads: ["admin"].
    with node_issuer(
        "mock-auth0.mjs", "oauth2-mock-server", AUDIENCE=AUDIENCE, CLAIM_NS=auth0.NAMESPACE
    ) as running_issuer:
        yield running_issuer


@pytest.fixture(scope="module")
def issuers() -> Iterator[IssuerServer]:
    with issuer_server() as server:
        yield server


def auth0_env(issuer: NodeIssuer | TestIssuer) -> dict[str, str]:
    # AUTH0_DOMAIN must be an https host; the overrides point at a local issuer instead.
    return {
        "AUTH0_ISSUER": issuer.issuer,
        "AUTH0_JWKS_URI": issuer.jwks_uri,
        "AUTH0_AUDIENCE": AUDIENCE,
        "DATABASE_URL": "sqlite://",
    }


async def test_auth0_token_with_a_namespaced_role(mock_auth0: NodeIssuer) -> None:
    async with running(auth0.create_app(auth0_env(mock_auth0))) as http:
        assert (await http.get("/api/agents")).status_code == 401
        token = await mock_auth0.client_credentials()
        listed = await http.get("/api/agents", headers=bearer(token))
        assert listed.status_code == 200, listed.text
        said = await http.post(
            "/api/agents/assistant/generate",
            json={"messages": "who am i?"},
            headers=bearer(token),
        )
        assert said.status_code == 200, said.text
        assert said.json()["toolResults"][0]["result"] == {
            "sub": "test-client@clients",
            "permissions": ["read:agents", "run:agents"],
        }
        # Memory: the caller's threads are kept under the token's subject.
        kept = await http.post(
            "/api/agents/assistant/generate",
            json={"messages": "hello", "threadId": "t-1"},
            headers=bearer(token),
        )
        assert kept.status_code == 200, kept.text
        threads = (await http.get("/api/memory/threads", headers=bearer(token))).json()
        assert [(t["id"], t["resourceId"]) for t in threads] == [("t-1", "test-client@clients")]
        # A token minted for another API is not one of ours.
        other = await mock_auth0.client_credentials(audience="https://other.example.test")
        assert (await http.get("/api/agents", headers=bearer(other))).status_code == 401
        expired = await mock_auth0.client_credentials(x_expires_in="-120")
        assert (await http.get("/api/agents", headers=bearer(expired))).status_code == 401


@pytest.mark.parametrize(
    ("claims", "read", "run"),
    [
        ({"https://example.com/roles": ["viewer"]}, 200, 403),
        ({"https://example.com/roles": ["member"]}, 200, 200),
        ({"https://example.com/roles": ["intern"]}, 403, 403),
        ({"roles": ["admin"]}, 403, 403),  # not namespaced: not the claim the example reads
        ({"permissions": ["read:agents"]}, 200, 403),
        ({"permissions": ["read:agents", "run:agents"]}, 200, 200),
        ({"https://example.com/permissions": ["run:agents"]}, 403, 403),
        ({}, 403, 403),
    ],
)
async def test_auth0_permissions_decide(
    issuers: IssuerServer, claims: dict[str, Any], read: int, run: int
) -> None:
    issuer = issuers.new_issuer()
    token = issuer.token(typ="JWT", aud=AUDIENCE, **claims)
    async with running(auth0.create_app(auth0_env(issuer))) as http:
        listed = await http.get("/api/agents", headers=bearer(token))
        assert listed.status_code == read, listed.text
        said = await http.post(
            "/api/agents/assistant/generate", json={"messages": "hi"}, headers=bearer(token)
        )
        assert said.status_code == run, said.text


def test_auth0_without_a_tenant_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTH0_DOMAIN", raising=False)
    monkeypatch.delenv("AUTH0_AUDIENCE", raising=False)
    with pytest.raises(ValueError, match="AUTH0_DOMAIN") as error:
        auth0.create_app({})
    assert "AUTH0_AUDIENCE" in str(error.value)
