"""What `AuthClient` puts on the wire, against the official JS client's traffic (spec §1.5,
peers §2): a recording server answers like better-auth and keeps every request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bastion.client import AsyncAuthClient, AuthClient, IdentityError, ProtocolError
from tests.client.servers import Mode, Served, resolve, served

SIGNED = "tok123.c2lnbmF0dXJl+/="


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def setup(self) -> Any:
        @asynccontextmanager
        async def setup(origin: str) -> AsyncIterator[ASGIApp]:
            yield Starlette(routes=[Route("/{path:path}", self.answer, methods=["GET", "POST"])])

        return setup

    async def answer(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "body": json.loads(body) if body else None,
            }
        )
        path = request.url.path
        if path.endswith("/sign-in/email"):
            return JSONResponse(
                {"redirect": False, "token": "tok123", "user": {}},
                headers={"set-auth-token": SIGNED},
            )
        if path.endswith("/get-session"):
            return JSONResponse(None)
        if path.endswith("/rate-limited"):
            # better-auth's 429: JSON text with a text/plain content type (spec §1.3).
            return Response(
                '{"message":"Too many requests. Please try again later."}',
                status_code=429,
                headers={"content-type": "text/plain;charset=UTF-8", "x-retry-after": "7"},
            )
        if path.endswith("/html"):
            return Response("<p>hello</p>", media_type="text/html")
        return JSONResponse({"status": True})


@pytest.fixture
async def recorded(mode: Mode) -> AsyncIterator[tuple[Served, Recorder]]:
    recorder = Recorder()
    async with served(mode, recorder.setup(), AuthClient, AsyncAuthClient) as server:
        yield server, recorder


async def test_requests_as_the_js_client_sends_them(recorded: tuple[Served, Recorder]) -> None:
    server, recorder = recorded
    client = server.client()
    await resolve(client.sign_out())
    await resolve(client.get_session())
    await resolve(client.get_session(disable_cookie_cache=True))
    await resolve(client.revoke_sessions())
    await resolve(client.sign_in.email(email="a@example.com", password="pw", remember_me=False))
    await resolve(client.request_password_reset(email="a@example.com"))

    sign_out, session, uncached, revoke, sign_in, reset = recorder.requests
    assert (sign_out["method"], sign_out["path"], sign_out["body"]) == (
        "POST",
        "/api/auth/sign-out",
        {},
    )
    assert sign_out["headers"]["content-type"] == "application/json"
    assert sign_out["headers"]["origin"] == server.origin
    assert (session["method"], session["path"], session["body"]) == (
        "GET",
        "/api/auth/get-session",
        None,
    )
    assert session["query"] == {}
    assert uncached["query"] == {"disableCookieCache": "true"}
    assert (revoke["method"], revoke["body"]) == ("POST", {})
    # camelCase names; what was not given is not sent.
    assert sign_in["body"] == {"email": "a@example.com", "password": "pw", "rememberMe": False}
    assert reset["body"] == {"email": "a@example.com"}
    assert "authorization" not in sign_in["headers"]
    assert reset["headers"]["authorization"] == f"Bearer {SIGNED}"


async def test_a_rate_limit_answer_is_read_despite_its_content_type(
    recorded: tuple[Served, Recorder],
) -> None:
    server, _ = recorded
    client = server.client()
    with pytest.raises(IdentityError) as limited:
        await resolve(client.request("POST", "/rate-limited", json={}))
    error = limited.value
    assert (error.status, error.code) == (429, None)
    assert error.message == "Too many requests. Please try again later."
    assert error.response is not None and error.response.headers["x-retry-after"] == "7"


async def test_a_success_that_is_not_json(recorded: tuple[Served, Recorder]) -> None:
    server, _ = recorded
    with pytest.raises(ProtocolError) as unreadable:
        await resolve(server.client().request("GET", "/html"))
    assert unreadable.value.status == 200
    assert "text/html" in unreadable.value.message
