"""Sessions: get, list, revoke, update, sign out (spec §3, §5.3)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from pydantic.functional_validators import BeforeValidator

from ..endpoint import Ctx, Endpoint
from ..errors import APIError, Code
from ..sessions import (
    clear_session_cookies,
    cookie_cache,
    fresh_session,
    remembered,
    resolve_session,
    sensitive_session,
    session_required,
    session_token_from_cookie,
    set_session_cookie,
)
from ..validation import Body
from .common import additional_input, session_out, user_out

__all__ = ["ENDPOINTS"]


def _flag(value: Any) -> bool:
    # z.coerce.boolean(): any non-empty string is true, even "false" (spec §5.3).
    if isinstance(value, list):
        value = value[-1] if value else ""
    return bool(value)


Flag = Annotated[bool, BeforeValidator(_flag)]


class GetSessionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    disable_cookie_cache: Flag = PydanticField(False, alias="disableCookieCache")
    disable_refresh: Flag = PydanticField(False, alias="disableRefresh")


async def get_session(ctx: Ctx[Any]) -> dict[str, Any] | None:
    if ctx.method == "POST":
        raise APIError(405, Code.METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED)
    query = ctx.query
    if not query["disableCookieCache"]:
        # What resolve_session answers first, without its coroutine and with the public
        # fields already: most get-session calls end here.
        cached = cookie_cache(ctx)
        if cached is not None:
            session, user = cached.rows()
            return {"session": session, "user": user}
    found = await resolve_session(
        ctx,
        disable_cookie_cache=query["disableCookieCache"],
        disable_refresh=query["disableRefresh"],
    )
    if found is None:
        return None
    session, user = found
    return {"session": session_out(ctx, session), "user": user_out(ctx, user)}


async def list_sessions(ctx: Ctx[Any]) -> list[dict[str, Any]]:
    assert ctx.session is not None
    sessions = await ctx.context.store.list_sessions(ctx.session[1]["id"])
    return [session_out(ctx, s) for s in sessions]


class TokenBody(Body):
    token: str


async def revoke_session(ctx: Ctx[TokenBody]) -> dict[str, Any]:
    assert ctx.session is not None
    store = ctx.context.store
    found = await store.find_session(ctx.body.token)
    if found is not None and found[0]["userId"] == ctx.session[1]["id"]:
        await store.delete_session(ctx.body.token)
    if ctx.body.token == ctx.session[0]["token"]:
        clear_session_cookies(ctx)
    return {"status": True}


async def revoke_sessions(ctx: Ctx[Any]) -> dict[str, Any]:
    assert ctx.session is not None
    await ctx.context.store.delete_user_sessions(ctx.session[1]["id"])
    clear_session_cookies(ctx)  # the current session was one of them
    return {"status": True}


async def revoke_other_sessions(ctx: Ctx[Any]) -> dict[str, Any]:
    assert ctx.session is not None
    session, user = ctx.session
    await ctx.context.store.delete_user_sessions(user["id"], keep_token=session["token"])
    return {"status": True}


async def sign_out(ctx: Ctx[Any]) -> dict[str, Any]:
    token = session_token_from_cookie(ctx)
    if token is not None:
        await ctx.context.store.delete_session(token)
    clear_session_cookies(ctx)
    return {"success": True}


async def update_session(ctx: Ctx[Any]) -> dict[str, Any]:
    assert ctx.session is not None
    raw = ctx.raw_body if isinstance(ctx.raw_body, dict) else {}
    values = additional_input(ctx, "session", raw, create=False)
    if not values:
        raise APIError(400, None, "No fields to update")
    session, user = ctx.session
    updated = await ctx.context.store.update_session(session["token"], values)
    if updated is None:  # revoked meanwhile
        clear_session_cookies(ctx)
        raise APIError(401, Code.FAILED_TO_GET_SESSION)
    # The cookie cache must show the new fields, as better-auth re-sets the session cookie.
    set_session_cookie(ctx, updated, user, dont_remember=not remembered(ctx))
    ctx.new_session = None
    return {"session": session_out(ctx, updated)}


ENDPOINTS = (
    Endpoint(
        "/get-session",
        ("GET", "POST"),
        get_session,
        name="get_session",
        query=GetSessionQuery,
        no_store=True,
        operation_id="getSession",
    ),
    Endpoint(
        "/list-sessions",
        ("GET",),
        list_sessions,
        name="list_sessions",
        use=(fresh_session,),
        operation_id="listUserSessions",
    ),
    Endpoint(
        "/revoke-session",
        ("POST",),
        revoke_session,
        name="revoke_session",
        body=TokenBody,
        use=(sensitive_session,),
    ),
    Endpoint(
        "/revoke-sessions",
        ("POST",),
        revoke_sessions,
        name="revoke_sessions",
        use=(sensitive_session,),
    ),
    Endpoint(
        "/revoke-other-sessions",
        ("POST",),
        revoke_other_sessions,
        name="revoke_other_sessions",
        use=(sensitive_session,),
    ),
    Endpoint("/sign-out", ("POST",), sign_out, name="sign_out", operation_id="signOut"),
    Endpoint(
        "/update-session",
        ("POST",),
        update_session,
        name="update_session",
        use=(session_required,),
        operation_id="updateSession",
    ),
)
