"""Reference run: the official better-auth JS client against the real TypeScript server.

`run_client_flow` (tests/e2e/client_flow.py) is played by the official client, in cookie mode
and in bearer mode, against `ba-peer.mjs serve` (better-auth 1.7.25) on SQLite and PostgreSQL.
This proves the flow and the harness; the same flow is meant to run against Bastion.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest

from tests.e2e.client_flow import (
    MailKind,
    reset_token_from_url,
    run_client_flow,
    verify_token_from_url,
)
from tests.e2e.js_client import JsClient, js_client
from tests.e2e.node_peer import BetterAuthServer, better_auth_server
from tests.services import scratch_database

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery"


class ServerMailBox:
    """The flow's MailBox over the TS server's mail log; checks each line's own token."""

    def __init__(self, server: BetterAuthServer) -> None:
        self.server = server

    async def next_url(self, kind: MailKind, to: str) -> str:
        mail = await self.server.next_mail(kind, to)
        url = mail["url"]
        assert url.startswith(self.server.base_url + "/"), mail
        if kind == "reset-password":
            assert reset_token_from_url(url)[0] == mail["token"], mail
        else:
            assert verify_token_from_url(url) == mail["token"], mail
        return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def ts_server(request: pytest.FixtureRequest) -> AsyncIterator[BetterAuthServer]:
    """The TypeScript better-auth server on an empty database of each kind."""
    async with (
        scratch_database(request.param) as database_url,
        better_auth_server(database_url) as server,
    ):
        yield server


async def check_client_state(client: JsClient) -> None:
    """What the client holds after the flow's final sign-out."""
    if client.mode == "cookie":
        # sign-out expires session_token, session_data and dont_remember (Max-Age=0)
        assert await client.cookies() == {}
        assert await client.token() is None
    else:
        # no cookies are kept; the last set-auth-token stays (its session is gone)
        assert await client.cookies() == {}
        assert await client.token()


def check_requests(client: JsClient, requests: list[dict[str, Any]], origin: str) -> None:
    """How the client spoke HTTP during the flow."""
    for request in requests:
        headers = request["headers"]
        # like a browser: Origin on POSTs, none on same-origin GETs
        assert headers.get("origin") == (origin if request["method"] == "POST" else None), request
        if client.mode == "cookie":
            assert "authorization" not in headers, request
        else:
            assert "cookie" not in headers, request
        if request["method"] == "POST":
            assert headers.get("content-type") == "application/json", request
            assert request["body"] is not None and request["body"].startswith("{"), request
        else:
            assert request["body"] is None, request
    methods = {
        (request["method"], request["url"].split("/api/auth", 1)[1].split("?", 1)[0])
        for request in requests
    }
    assert methods == {
        ("POST", "/sign-up/email"),
        ("GET", "/get-session"),
        ("POST", "/sign-out"),
        ("POST", "/sign-in/email"),
        ("POST", "/update-user"),
        ("POST", "/change-password"),
        ("GET", "/list-sessions"),
        ("POST", "/revoke-other-sessions"),
        ("POST", "/request-password-reset"),
        ("POST", "/reset-password"),
        ("POST", "/send-verification-email"),
        ("GET", "/verify-email"),
    }, methods


@pytest.mark.parametrize("mode", ["cookie", "bearer"])
async def test_official_client_flow(
    ts_server: BetterAuthServer, mode: Literal["cookie", "bearer"]
) -> None:
    async with js_client(ts_server.base_url, mode=mode) as client:
        started = time.perf_counter()
        result = await run_client_flow(
            client, ServerMailBox(ts_server), email=f"flow-{mode}@example.com", password=PASSWORD
        )
        elapsed = time.perf_counter() - started
        print(f"\n{mode} flow against TS better-auth: {elapsed * 1000:.0f} ms\n{result.timings()}")
        requests = await client.requests()
        assert len(requests) == len(result.steps), [r["url"] for r in requests]
        check_requests(client, requests, ts_server.origin)
        await check_client_state(client)
    assert [mail["type"] for mail in ts_server.mails()] == ["reset-password", "verify-email"]
