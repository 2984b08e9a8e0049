"""IdentityAuth(url=...) against a real Bastion identity server (uvicorn on 127.0.0.1), and
against stand-ins that are down, hang or fail: what is forwarded, the short cache and its
revocation window (S16), coalesced misses, refreshed cookies, and failures: a server that
cannot answer is ProviderUnavailable (a 503, issue 11 item 5), never a user or a None."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from bastion.auth.errors import ProviderUnavailable
from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import Identity, bearer
from bastion.identity.db.types import utc_now
from bastion.server import Bastion
from tests.auth.issuers import FakeClock
from tests.auth.providers.identity_support import (
    Credentials,
    credentials,
    request,
    set_cookie_lines,
)
from tests.e2e.bastion_server import free_port, serve
from tests.hashing import cheap_password
from tests.identity.sessionkit import Clock

pytestmark = pytest.mark.e2e

SECRET = "remote-identity-secret-0123456789abcdef0123"
PASSWORD = "correct horse battery staple"
TOKEN = "better-auth.session_token"


@dataclass
class Server:
    identity: Identity
    url: str  # …/api/auth
    clock: Clock
    seen: list[dict[str, str]] = field(default_factory=list)  # get-session request headers

    @property
    def origin(self) -> str:
        return self.url.removesuffix("/api/auth")

    def get_sessions(self) -> int:
        return len(self.seen)

    async def post(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(
                self.url + path, json=body, headers={"origin": self.origin, **headers}
            )

    async def sign_up(self, email: str = "ada@example.com") -> Credentials:
        body = {"name": "Ada", "email": email, "password": PASSWORD}
        return credentials(await self.post("/sign-up/email", body))


@asynccontextmanager
async def bastion(tmp_path: Any, **options: Any) -> AsyncIterator[Server]:
    """Our Identity on a SQLite file, served by uvicorn; it notes every get-session."""
    # The server's time, which a test may move; it starts now, since the provider's cache
    # never keeps a session past its expiresAt by the real clock.
    clock = Clock(utc_now())
    seen: list[dict[str, str]] = []

    def note(ctx: Any) -> None:
        if ctx.endpoint.path == "/get-session":
            seen.append(dict(ctx.headers))

    def identity_for(origin: str) -> Identity:
        options.setdefault("plugins", [bearer()])
        return Identity(
            env={},
            secret=SECRET,
            base_url=origin,
            database=f"sqlite:///{tmp_path}/remote.db",
            email_and_password=cheap_password(),
            hooks={"before": note},
            clock=clock,
            **options,
        )

    async with serve(identity_for) as (identity, origin):
        yield Server(identity, f"{origin}/api/auth", clock, seen)


@asynccontextmanager
async def stand_in(app: Any) -> AsyncIterator[str]:
    """Any ASGI app on uvicorn at 127.0.0.1; yields its /api/auth URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/api/auth"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@asynccontextmanager
async def provider(url: str, **options: Any) -> AsyncIterator[IdentityAuth]:
    auth = IdentityAuth(url=url, **options)
    try:
        yield auth
    finally:
        await auth.aclose()


async def user_id(auth: IdentityAuth, token: str = "", **headers: str) -> str | None:
    user = await auth.authenticate_token(token, request(headers))
    return None if user is None else str(user["user"]["id"])


# -- credentials ---------------------------------------------------------------------------


async def test_cookie_and_bearer_tokens(tmp_path: Any) -> None:
    async with bastion(tmp_path) as server, provider(server.url, cache_ttl=0) as auth:
        ada = await server.sign_up()
        user = await auth.authenticate_token("", request(ada.cookie()))
        assert user is not None
        async with httpx.AsyncClient() as client:
            answer = (await client.get(server.url + "/get-session", headers=ada.cookie())).json()
        assert user == answer  # the JSON of get-session, dates as ISO strings
        assert await auth.authorize_user(user, request()) is True
        assert await user_id(auth, ada.signed) == ada.user_id
        assert await user_id(auth, ada.raw) == ada.user_id
        assert await user_id(auth, f"Bearer {ada.raw}") == ada.user_id
        forged = ada.signed[:-5] + ("AAAA=" if not ada.signed.endswith("AAAA=") else "BBBB=")
        assert await user_id(auth, forged) is None
        assert await user_id(auth, "not-a-session") is None


async def test_no_credential_asks_nothing(tmp_path: Any) -> None:
    async with bastion(tmp_path) as server, provider(server.url) as auth:
        await server.sign_up()
        before = server.get_sessions()
        assert await user_id(auth) is None
        assert await user_id(auth, "", cookie="theme=dark; csrf=abc") is None
        assert await user_id(auth, "  ") is None
        assert server.get_sessions() == before


async def test_only_session_cookies_are_forwarded(tmp_path: Any) -> None:
    """The auth server sees the session cookies, not the application's other cookies, and
    no Authorization header when a session cookie is there (the cookie wins)."""
    async with bastion(tmp_path) as server, provider(server.url) as auth:
        ada = await server.sign_up()
        bob = await server.sign_up("bob@example.com")
        cookie = f"theme=dark; csrf=secret-value; {ada.cookie_header}; other=1"
        assert await user_id(auth, bob.signed, cookie=cookie) == ada.user_id
        [seen] = server.seen
        assert seen["cookie"] == ada.cookie_header
        assert "authorization" not in seen


async def test_cookie_prefix_option(tmp_path: Any) -> None:
    options = {"advanced": {"cookie_prefix": "agents"}}
    async with (
        bastion(tmp_path, **options) as server,
        provider(server.url, cookie_prefix="agents") as ours,
        provider(server.url) as default,
    ):
        ada = await server.sign_up()
        assert list(ada.cookies) == ["agents.session_token"]
        assert ours.session_cookie_name == "agents.session_token"
        assert await user_id(ours, **ada.cookie()) == ada.user_id
        assert await user_id(ours, ada.signed) == ada.user_id
        assert await user_id(default, **ada.cookie()) is None  # not a cookie it forwards


async def test_s18_secure_cookies_and_a_server_without_the_bearer_plugin(tmp_path: Any) -> None:
    """`__Secure-` cookies are forwarded under their own name. A signed bearer token goes
    as the session cookie as well, so a server without the bearer plugin reads it (Mastra
    #13639); a raw token needs the plugin."""
    options = {"advanced": {"use_secure_cookies": True}, "plugins": []}
    async with bastion(tmp_path, **options) as server, provider(server.url) as auth:
        response = await server.post(
            "/sign-up/email", {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
        )
        line = response.headers["set-cookie"]
        assert line.startswith(f"__Secure-{TOKEN}=")
        cookie = line.split(";", 1)[0]
        assert await user_id(auth, cookie=cookie) == response.json()["user"]["id"]
        signed = unquote(cookie.split("=", 1)[1])  # what set-auth-token would have said
        assert await user_id(auth, signed) == response.json()["user"]["id"]
        assert await user_id(auth, response.json()["token"]) is None


# -- the cache -----------------------------------------------------------------------------


async def test_answers_are_cached_and_concurrent_misses_coalesced(tmp_path: Any) -> None:
    async with bastion(tmp_path) as server, provider(server.url, cache_ttl=60) as auth:
        ada = await server.sign_up()
        ids = await asyncio.gather(*(user_id(auth, **ada.cookie()) for _ in range(20)))
        assert ids == [ada.user_id] * 20
        assert server.get_sessions() == 1  # twenty requests, one round trip
        assert await user_id(auth, **ada.cookie()) == ada.user_id
        assert await user_id(auth, ada.raw) == ada.user_id  # another credential: its own entry
        assert await user_id(auth, ada.raw) == ada.user_id
        assert server.get_sessions() == 2


async def test_s16_revoked_session_passes_at_most_the_cache_ttl(tmp_path: Any) -> None:
    """S16, the documented window: a session signed out on the server still passes here
    until its cache entry expires (cache_ttl), then never again."""
    ttl = 60.0
    clock = FakeClock(time.time())
    async with (
        bastion(tmp_path) as server,
        provider(server.url, cache_ttl=ttl, clock=clock) as auth,
    ):
        ada = await server.sign_up()
        assert await user_id(auth, **ada.cookie()) == ada.user_id
        out = await server.post("/sign-out", {}, **ada.cookie())
        assert out.status_code == 200
        clock.advance(ttl - 1)
        assert await user_id(auth, **ada.cookie()) == ada.user_id  # within the window
        clock.advance(1)
        assert await user_id(auth, **ada.cookie()) is None
        assert await user_id(auth, ada.raw) is None


async def test_refusals_are_cached_shorter(tmp_path: Any) -> None:
    clock = FakeClock(time.time())
    async with (
        bastion(tmp_path) as server,
        provider(server.url, cache_ttl=30, negative_cache_ttl=3, clock=clock) as auth,
    ):
        assert await user_id(auth, "unknown-token") is None
        clock.advance(2.9)
        assert await user_id(auth, "unknown-token") is None
        assert server.get_sessions() == 1
        clock.advance(0.1)
        assert await user_id(auth, "unknown-token") is None
        assert server.get_sessions() == 2


async def test_refreshed_session_cookie_reaches_the_client(tmp_path: Any) -> None:
    """A sliding refresh on the server: its Set-Cookie is left for the pipeline to send,
    to the cookie client only."""
    async with bastion(tmp_path) as server, provider(server.url, cache_ttl=0) as auth:
        ada = await server.sign_up()
        server.clock.advance(days=2)
        req = request(ada.cookie())
        assert (await auth.authenticate_token("", req))["user"]["id"] == ada.user_id
        [line] = set_cookie_lines(req)
        assert line.startswith(f"{TOKEN}={ada.cookies[TOKEN]}; Max-Age=604800;")
        server.clock.advance(days=2)
        by_bearer = request()
        assert (await auth.authenticate_token(ada.raw, by_bearer))["user"]["id"] == ada.user_id
        assert set_cookie_lines(by_bearer) == []


# -- failures ------------------------------------------------------------------------------


async def test_server_down_is_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/auth"
    async with provider(url, timeout=2) as auth:
        token = "Z" * 32
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="bastion.auth.identity"):
            for _ in range(2):  # asked again: a failure is not kept
                with pytest.raises(ProviderUnavailable):
                    await user_id(auth, token)
        assert time.monotonic() - started < 2
        assert len(caplog.records) == 2
        assert all(token not in r.getMessage() for r in caplog.records)


async def test_hanging_server_times_out() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(30)

    listener = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with provider(f"http://127.0.0.1:{port}/api/auth", timeout=0.3) as auth:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable):
                await user_id(auth, "Z" * 32)
            assert time.monotonic() - started < 2
    finally:
        listener.close()


def counting_app(status: int, body: Any) -> tuple[Any, Callable[[], int]]:
    calls = 0

    async def get_session(_: Any) -> JSONResponse:
        nonlocal calls
        calls += 1
        return JSONResponse(body, status_code=status)

    app = Starlette(routes=[Route("/api/auth/get-session", get_session)])
    return app, lambda: calls


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, {"message": "boom"}), (503, {"message": "down"}), (429, {"message": "slow down"})],
)
async def test_server_errors_are_unavailable_and_not_kept(status: int, body: Any) -> None:
    app, calls = counting_app(status, body)
    async with stand_in(app) as url, provider(url) as auth:
        for _ in range(2):
            with pytest.raises(ProviderUnavailable):
                await user_id(auth, "Z" * 32)
        assert calls() == 2


@pytest.mark.parametrize(
    "body",
    [
        {"session": {"id": "s"}},  # no user
        ["not", "an", "object"],
        "null",
    ],
)
async def test_answers_that_are_not_sessions_give_none(body: Any) -> None:
    app, _ = counting_app(200, body)
    async with stand_in(app) as url, provider(url) as auth:
        assert await user_id(auth, "Z" * 32) is None


async def test_aclose_closes_its_own_client_only() -> None:
    app, calls = counting_app(200, None)
    async with stand_in(app) as url:
        auth = IdentityAuth(url=url)
        await auth.aclose()
        assert await user_id(auth, "Z" * 32) is None  # closed: no request, no exception
        assert calls() == 0
        async with httpx.AsyncClient() as client:
            shared = IdentityAuth(url=url, http_client=client)
            await shared.aclose()
            assert not client.is_closed
            assert await user_id(shared, "Z" * 32) is None
            assert calls() == 1


def test_options_are_checked() -> None:
    for bad in ("ftp://host/api/auth", "/api/auth", "http://"):
        with pytest.raises(ValueError):
            IdentityAuth(url=bad)
    with pytest.raises(TypeError, match="trust_cookie_cache"):
        IdentityAuth(url="http://127.0.0.1/api/auth", trust_cookie_cache="never")
    with pytest.raises(ValueError):
        IdentityAuth(url="http://127.0.0.1/api/auth", cache_ttl=-1)
    auth = IdentityAuth(url="https://auth.example.com/api/auth/")
    assert auth.identity is None
    assert auth.session_cookie_name == f"__Secure-{TOKEN}"


# -- through the Bastion server --------------------------------------------------------------


async def test_bastion_with_a_remote_identity(tmp_path: Any) -> None:
    """The agent server validating sessions against a remote identity server: a 401 for a
    missing or revoked session, and a 503 with Retry-After (never a 401 that voids the token,
    never a 500) once the identity server is down."""
    async with bastion(tmp_path) as server:
        ada = await server.sign_up()
        auth = IdentityAuth(url=server.url, cache_ttl=0)
        app = Bastion(auth=auth)
        assert app.identity is None  # nothing mounted: the sessions live elsewhere
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agents") as http:
            assert (await http.get("/api/agents", headers=ada.cookie())).status_code == 200
            by_bearer = await http.get(
                "/api/agents", headers={"authorization": f"Bearer {ada.raw}"}
            )
            assert by_bearer.status_code == 200
            assert (await http.get("/api/agents")).status_code == 401
            await server.post("/sign-out", {}, **ada.cookie())
            assert (await http.get("/api/agents", headers=ada.cookie())).status_code == 401
    # The identity server has stopped.
    async with httpx.AsyncClient(transport=transport, base_url="http://agents") as http:
        response = await http.get("/api/agents", headers={"authorization": f"Bearer {ada.raw}"})
        assert response.status_code == 503
        assert response.json() == {"error": "The identity server is unavailable"}
        assert response.headers["retry-after"].isdigit()
    await auth.aclose()
