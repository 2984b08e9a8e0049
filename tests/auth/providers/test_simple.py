"""SimpleAuth (spec §1.5): a fixed token map, header and cookie sources, its own authorizer."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from bastion.auth import SimpleAuth
from bastion.server import Bastion, route
from tests.auth.doubles import bearer, client

ANA = {"id": "ana"}
TOKENS: dict[str, Any] = {"tok-ana": ANA, "tok-bob": "bob", "tok-num": 7}


def request(headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


async def test_passed_token() -> None:
    auth = SimpleAuth(TOKENS)
    assert await auth.authenticate_token("tok-ana", request()) is ANA
    assert await auth.authenticate_token("tok-bob", request()) == "bob"
    assert await auth.authenticate_token("tok-num", request()) == 7
    assert await auth.authenticate_token("nope", request()) is None
    assert await auth.authenticate_token("", request()) is None


async def test_default_headers() -> None:
    auth = SimpleAuth(TOKENS)
    assert auth.headers == ["Authorization", "X-Playground-Access"]
    assert await auth.authenticate_token("", request({"Authorization": "Bearer tok-bob"})) == "bob"
    assert await auth.authenticate_token("", request({"X-Playground-Access": "tok-bob"})) == "bob"


@pytest.mark.parametrize("headers", ["X-Api-Key", ["X-Api-Key", "X-Other"]])
async def test_custom_headers_are_added_to_the_defaults(headers: Any) -> None:
    auth = SimpleAuth(TOKENS, headers=headers)
    assert auth.headers[:3] == ["Authorization", "X-Playground-Access", "X-Api-Key"]
    assert await auth.authenticate_token("", request({"x-api-key": "tok-ana"})) is ANA
    # A leading "Bearer " is stripped from any configured header.
    assert await auth.authenticate_token("", request({"X-Api-Key": "Bearer tok-ana"})) is ANA


async def test_passed_token_wins_over_header_tokens() -> None:
    auth = SimpleAuth(TOKENS)
    found = await auth.authenticate_token("tok-bob", request({"X-Playground-Access": "tok-ana"}))
    assert found == "bob"
    # An unknown passed token falls through to the headers.
    found = await auth.authenticate_token("nope", request({"X-Playground-Access": "tok-ana"}))
    assert found is ANA


async def test_cookie() -> None:
    auth = SimpleAuth(TOKENS)
    assert auth.session_cookie_name == "bastion-token"
    assert await auth.authenticate_token("", request({"Cookie": "bastion-token=tok-ana"})) is ANA
    assert await auth.authenticate_token("", request({"Cookie": "mastra-token=tok-ana"})) is None


async def test_authorizes_only_configured_users() -> None:
    auth = SimpleAuth(TOKENS)
    assert await auth.authorize_user(ANA, request())
    assert await auth.authorize_user("bob", request())
    assert await auth.authorize_user(7, request())
    # The same object, not an equal one (JS `includes` on objects).
    assert not await auth.authorize_user({"id": "ana"}, request())
    assert not await auth.authorize_user("eve", request())
    assert not await auth.authorize_user(None, request())


async def test_custom_authorize_user_overrides() -> None:
    auth = SimpleAuth(TOKENS, authorize_user=lambda user, req: user == "eve")
    assert await auth.authorize_user("eve", request())
    assert not await auth.authorize_user(ANA, request())


@pytest.mark.parametrize("tokens", [{"": ANA}, {None: ANA}])
def test_tokens_are_non_empty_strings(tokens: Any) -> None:
    with pytest.raises(ValueError):
        SimpleAuth(tokens)


async def test_end_to_end() -> None:
    async def me(request: Request) -> Any:
        return {"user": request.state.context.user}

    app = Bastion(auth=SimpleAuth(TOKENS, headers="X-Api-Key"), routes=[route("/me", me)])
    async with client(app) as http:
        assert (await http.get("/api/me", headers=bearer("tok-ana"))).json() == {"user": ANA}
        assert (await http.get("/api/me", params={"apiKey": "tok-bob"})).json() == {"user": "bob"}
        assert (await http.get("/api/me", headers={"X-Api-Key": "tok-ana"})).status_code == 200
        cookie = await http.get("/api/me", headers={"Cookie": "bastion-token=tok-ana"})
        assert cookie.json() == {"user": ANA}
        missing = await http.get("/api/me")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        stale = await http.get("/api/me", headers={"Cookie": "bastion-token=old"})
        assert stale.headers["www-authenticate"] == 'Bearer error="invalid_token"'
