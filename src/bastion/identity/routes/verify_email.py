"""Email verification: the link's target and sending it again (spec §3.2, §7.4)."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from ..crypto import TokenError, TokenExpired
from ..endpoint import Ctx, Endpoint, Redirect
from ..errors import APIError, Code
from ..security import query_callback_url
from ..sessions import create_session_for, resolve_session, set_session_cookie
from ..validation import Body
from .common import send_verification_email

__all__ = ["ENDPOINTS"]


class VerifyEmailQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    token: str
    callback_url: str | None = PydanticField(None, alias="callbackURL")


def _fail(ctx: Ctx[Any], status: int, code: Code) -> APIError | Redirect:
    callback = ctx.query.get("callbackURL")
    if callback:
        parts = urlsplit(callback)
        query = [*parse_qsl(parts.query, keep_blank_values=True), ("error", code.name)]
        return Redirect(urlunsplit(parts._replace(query=urlencode(query))))
    return APIError(status, code)


def _done(ctx: Ctx[Any]) -> dict[str, Any]:
    callback = ctx.query.get("callbackURL")
    if callback:
        raise Redirect(callback)
    return {"status": True, "user": None}


async def verify_email(ctx: Ctx[Any]) -> dict[str, Any]:
    identity = ctx.identity
    try:
        claims = identity.verify_jwt(ctx.query["token"])
    except TokenExpired:
        raise _fail(ctx, 401, Code.TOKEN_EXPIRED) from None
    except TokenError:
        raise _fail(ctx, 401, Code.INVALID_TOKEN) from None
    email = str(claims.get("email", "")).lower()
    user = await identity.store.find_user_by_email(email)
    if user is None:
        raise _fail(ctx, 401, Code.USER_NOT_FOUND)
    update_to = claims.get("updateTo")
    if update_to:
        return await _change_email(ctx, user, str(update_to), claims.get("requestType"))
    if user["emailVerified"]:
        return _done(ctx)
    options = ctx.options.email_verification
    if options.before_email_verification is not None:
        await _maybe_await(options.before_email_verification(user, ctx.request))
    user = await identity.store.update_user(user["id"], {"emailVerified": True}) or user
    if options.after_email_verification is not None:
        await _maybe_await(options.after_email_verification(user, ctx.request))
    if options.auto_sign_in_after_verification:
        current = await resolve_session(ctx, disable_cookie_cache=True)
        if current is not None and current[1]["id"] == user["id"]:
            set_session_cookie(ctx, current[0], user)
        else:
            await create_session_for(ctx, user)
    return _done(ctx)


async def _change_email(
    ctx: Ctx[Any], user: dict[str, Any], new_email: str, request_type: Any
) -> dict[str, Any]:
    identity = ctx.identity
    if request_type == "change-email-confirmation":
        # The old address confirmed; now prove the new one.
        await send_verification_email(
            ctx,
            {**user, "email": new_email},
            ctx.query.get("callbackURL"),
            updateTo=new_email,
            requestType="change-email-verification",
        )
        return _done(ctx)
    current = await identity.store.find_user_by_email(new_email)
    if current is not None and current["id"] != user["id"]:
        raise _fail(ctx, 400, Code.USER_ALREADY_EXISTS)
    updated = await identity.store.update_user(
        user["id"], {"email": new_email, "emailVerified": True}
    )
    session = await resolve_session(ctx, disable_cookie_cache=True)
    if updated is not None and session is not None and session[1]["id"] == user["id"]:
        set_session_cookie(ctx, session[0], updated)
    return _done(ctx)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class SendVerificationBody(Body):
    email: str
    callback_url: str | None = PydanticField(None, alias="callbackURL")


_MIN_SECONDS = 0.5  # answer time without a session, whatever happened (anti-enumeration)


async def send_verification(ctx: Ctx[SendVerificationBody]) -> dict[str, Any]:
    if ctx.options.email_verification.send_verification_email is None:
        raise APIError(400, Code.VERIFICATION_EMAIL_NOT_ENABLED)
    email = ctx.body.email.lower()
    session = await resolve_session(ctx)
    if session is not None:
        signed_in = session[1]
        if signed_in["email"] != email:
            raise APIError(400, Code.EMAIL_MISMATCH)
        if signed_in["emailVerified"]:
            raise APIError(400, Code.EMAIL_ALREADY_VERIFIED)
        await send_verification_email(ctx, signed_in, ctx.body.callback_url)
        return {"status": True}
    started = time.monotonic()
    user = await ctx.identity.store.find_user_by_email(email)
    if user is not None and not user["emailVerified"]:
        await send_verification_email(ctx, user, ctx.body.callback_url)
    await asyncio.sleep(max(0.0, _MIN_SECONDS - (time.monotonic() - started)))
    return {"status": True}


ENDPOINTS = (
    Endpoint(
        "/verify-email",
        ("GET",),
        verify_email,
        name="verify_email",
        query=VerifyEmailQuery,
        use=(query_callback_url,),
    ),
    Endpoint(
        "/send-verification-email",
        ("POST",),
        send_verification,
        name="send_verification_email",
        body=SendVerificationBody,
    ),
)
