"""A plugin written the way a user writes one, through `bastion.identity`'s public names only:
endpoints with tags, a body model, guards and their own rate rule; HTML and redirect answers;
error codes; database hooks; an init step; a sign-in check that asks for a second factor; and
bearer's token decided after every hook."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bastion.identity import (
    JSON,
    APIError,
    AuthContext,
    Body,
    Ctx,
    Endpoint,
    EndpointHook,
    ErrorCode,
    Identity,
    Plugin,
    RateRule,
    RawResponse,
    bearer,
    clear_session_cookies,
    session_required,
)
from tests.identity.conftest import ORIGIN, running

PASSWORD = "correct horse battery"


class GreetingCode(ErrorCode):
    NAME_TOO_SHORT = "Name too short"
    UNAUTHORIZED = "Unauthorized"  # core's code, with core's message: allowed


class GreetBody(Body):
    name: str


def greeting_plugin(events: list[str]) -> Plugin:
    async def greet(ctx: Ctx[GreetBody]) -> dict[str, Any]:
        if len(ctx.body.name) < 2:
            raise APIError(400, GreetingCode.NAME_TOO_SHORT)
        assert ctx.session is not None  # session_required ran
        return {"greeting": f"Hello {ctx.body.name}", "from": ctx.session[1]["email"]}

    async def page(ctx: Ctx[Any]) -> RawResponse:
        return RawResponse("<p>hello</p>", media_type="text/html; charset=utf-8")

    async def away(ctx: Ctx[Any]) -> RawResponse:
        return RawResponse.redirect("/elsewhere")

    async def second_factor(ctx: Ctx[Any], user: dict[str, Any]) -> Any:
        if user["name"] == "Two":
            return {"twoFactorRedirect": True}
        return None

    async def count_sign_ins(ctx: Ctx[Any]) -> None:
        events.append(f"after {ctx.endpoint.name}")

    async def sign_out_again(ctx: Ctx[Any]) -> None:
        # A later hook that revokes the session it just got: no token may go out.
        if ctx.new_session is not None and ctx.new_session[1]["name"] == "Revoked":
            await ctx.context.store.delete_session(ctx.new_session[0]["token"])
            clear_session_cookies(ctx)

    def init(context: AuthContext) -> None:
        events.append(f"init {context.options.app_name} {len(context.secret)}")

    def before_user_create(user: dict[str, Any], _: Any) -> dict[str, Any]:
        return {"data": {"name": user["name"].strip()}}

    return Plugin(
        id="greeting",
        endpoints=[
            Endpoint(
                "/greeting",
                ("POST",),
                greet,
                name="greeting",
                body=GreetBody,
                media_types=JSON,
                use=[session_required],
                tags=("greeting",),
                rate_limit=RateRule(window=60, max=3),
            ),
            Endpoint("/greeting/page", ("GET",), page, name="greeting_page"),
            Endpoint("/greeting/away", ("GET",), away, name="greeting_away"),
        ],
        error_codes=GreetingCode,
        after=[
            EndpointHook(lambda e: "sign-in" in e.tags, count_sign_ins),
            EndpointHook(lambda e: "sign-in" in e.tags, sign_out_again),
        ],
        database_hooks={"user": {"create": {"before": before_user_create}}},
        init=init,
        sign_in_checks=[second_factor],
    )


async def sign_in(client: Any, email: str) -> Any:
    return await client.post(
        "/sign-in/email", json={"email": email, "password": PASSWORD}, headers=ORIGIN
    )


async def sign_up(client: Any, name: str, email: str) -> Any:
    body = {"name": name, "email": email, "password": PASSWORD}
    response = await client.post("/sign-up/email", json=body, headers=ORIGIN)
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return response


async def test_a_plugin_through_the_public_api() -> None:
    events: list[str] = []
    plugins = [greeting_plugin(events), bearer()]
    async with running(plugins=plugins, rate_limit={"enabled": True}) as (identity, client):
        assert identity.error_codes["NAME_TOO_SHORT"] is GreetingCode.NAME_TOO_SHORT
        assert "USER_NOT_FOUND" in identity.error_codes

        # Database hook: the plugin trims names as users are created.
        response = await sign_up(client, "  Ada  ", "ada@example.com")
        assert response.json()["user"]["name"] == "Ada"
        assert events[0].startswith("init Bastion ")  # init ran before the first request

        signed_in = await sign_in(client, "ada@example.com")
        assert signed_in.status_code == 200
        assert "set-auth-token" in signed_in.headers
        assert "after sign_in_email" in events
        token = signed_in.headers["set-auth-token"]
        client.cookies.clear()
        auth = {"authorization": f"Bearer {token}", **ORIGIN}

        # The endpoint: a guard, a typed body, the plugin's error code, its own rate rule.
        anonymous = await client.post("/greeting", json={"name": "Bob"}, headers=ORIGIN)
        assert anonymous.status_code == 401
        short = await client.post("/greeting", json={"name": "B"}, headers=auth)
        assert (short.status_code, short.json()["code"]) == (400, "NAME_TOO_SHORT")
        ok = await client.post("/greeting", json={"name": "Bob"}, headers=auth)
        assert ok.json() == {"greeting": "Hello Bob", "from": "ada@example.com"}
        limited = await client.post("/greeting", json={"name": "Bob"}, headers=auth)
        assert limited.status_code == 429  # 3 a minute (every request counts): its own rule

        # HTML and redirects through the general response type.
        page = await client.get("/greeting/page")
        assert (page.status_code, page.headers["content-type"]) == (200, "text/html; charset=utf-8")
        assert page.text == "<p>hello</p>"
        away = await client.get("/greeting/away")
        assert (away.status_code, away.headers["location"]) == (302, "/elsewhere")


async def test_a_sign_in_check_answers_before_any_session_exists() -> None:
    events: list[str] = []
    plugins = [greeting_plugin(events), bearer()]
    options = {"session": {"cookie_cache": {"enabled": True}}}
    async with running(plugins=plugins, **options) as (identity, client):
        await sign_up(client, "Two", "two@example.com")
        before = await identity.db.count("session")
        response = await sign_in(client, "two@example.com")
        assert response.status_code == 200
        assert response.json() == {"twoFactorRedirect": True}
        # No session, no session cookie, no cookie cache, no bearer token (S11).
        assert await identity.db.count("session") == before
        assert not [c for c in response.headers.get_list("set-cookie") if "session" in c]
        assert "set-auth-token" not in response.headers


async def test_a_later_hook_that_revokes_the_session_leaks_no_token() -> None:
    events: list[str] = []
    plugins = [bearer(), greeting_plugin(events)]  # bearer's hooks first, its token still last
    async with running(plugins=plugins) as (_, client):
        await sign_up(client, "Revoked", "rev@example.com")
        response = await sign_in(client, "rev@example.com")
        assert response.status_code == 200
        assert "set-auth-token" not in response.headers


def test_clashing_error_codes_are_refused() -> None:
    class Clash(ErrorCode):
        USER_NOT_FOUND = "No such user"  # core says "User not found"

    with pytest.raises(ValueError, match="USER_NOT_FOUND"):
        Identity(env={}, secret="s" * 32, plugins=[Plugin(id="clash", error_codes=Clash)])


async def test_init_runs_once_when_first_requests_race() -> None:
    started: list[int] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def init(context: AuthContext) -> None:
        started.append(1)
        entered.set()
        await release.wait()  # the other first requests arrive meanwhile

    plugin = Plugin(id="slow-start", init=init)
    async with running(plugins=[plugin]) as (_, client):
        calls = [asyncio.create_task(client.get("/ok")) for _ in range(5)]
        await entered.wait()
        for _ in range(10):  # every other request reaches the start-up step
            await asyncio.sleep(0)
        release.set()
        answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [200] * 5
    assert started == [1]
