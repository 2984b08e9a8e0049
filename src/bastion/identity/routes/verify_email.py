"""Email verification: the link's target and sending it again (spec §3.2, §7.4).

The token is better-auth's stateless HS256 JWT `{email, userId, iat, exp}` (errata 11),
plus `updateTo` and `requestType` for a change of address; it is not stored. S8, where it
differs: it is signed, bound to the user (`userId`) and expires (`expires_in`, 1 h by
default), but a plain verification is not single-use (a second click answers "already
verified"); a change-of-address token stops working once the address it names has
changed. S7: without a session, `/send-verification-email` answers `{status: true}` after
at least 0.5 s, whether or not the address exists or is verified, or its mail could be sent.
Signed in, a mail that could not be sent is a 502 FAILED_TO_SEND_EMAIL.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from ..._callbacks import call_user
from ..crypto import TokenError, TokenExpired
from ..endpoint import Ctx, Endpoint, Redirect
from ..errors import APIError, Code
from ..ratelimit import MAIL_RULE
from ..security import query_callback_url
from ..sessions import resolve_session, set_session_cookie, start_session
from ..validation import Body, Email, is_email
from .common import MailCode, send_verification_email, throttle_account, user_out

__all__ = ["ENDPOINTS"]


class VerifyEmailQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    token: str
    callback_url: str | None = PydanticField(None, alias="callbackURL")


def _fail(ctx: Ctx[Any], code: Code, status: int = 401) -> APIError | Redirect:
    """To the callbackURL with `?error=CODE` when there is one, else a 401 JSON error."""
    callback = ctx.query.get("callbackURL")
    if callback:
        parts = urlsplit(callback)
        query = [*parse_qsl(parts.query, keep_blank_values=True), ("error", code.name)]
        return Redirect(urlunsplit(parts._replace(query=urlencode(query))))
    return APIError(status, code)


def _done(ctx: Ctx[Any], result: dict[str, Any] | None = None) -> dict[str, Any]:
    callback = ctx.query.get("callbackURL")
    if callback:
        raise Redirect(callback)
    return {"status": True, "user": None} if result is None else result


async def verify_email(ctx: Ctx[Any]) -> dict[str, Any]:
    context = ctx.context
    try:
        claims = context.verify_jwt(ctx.query["token"])
    except TokenExpired:
        raise _fail(ctx, Code.TOKEN_EXPIRED) from None
    except TokenError:
        raise _fail(ctx, Code.INVALID_TOKEN) from None
    email, user_id = claims.get("email"), claims.get("userId")
    if (
        not isinstance(email, str)
        or not is_email(email)
        or not isinstance(user_id, str | None)
        or not isinstance(claims.get("updateTo"), str | None)
    ):
        raise _fail(ctx, Code.INVALID_TOKEN)
    if claims.get("updateTo"):
        # better-auth 1.7.25 runs this branch whatever its options say; a change of address
        # that the server does not offer is not one a link can make (S35).
        if not ctx.options.user.change_email.enabled:
            raise _fail(ctx, Code.INVALID_TOKEN)
        return await _change_email(ctx, claims)
    user = await context.store.find_user_by_email(email)
    if user is None:
        raise _fail(ctx, Code.USER_NOT_FOUND)
    if user_id is not None and user_id != user["id"]:
        raise _fail(ctx, Code.INVALID_TOKEN)  # another user now has this address
    if user["emailVerified"]:
        return _done(ctx)
    options = ctx.options.email_verification
    if options.before_email_verification is not None:
        await call_user(options.before_email_verification, user, ctx.request)
    auto_sign_in = options.auto_sign_in_after_verification
    current = await resolve_session(ctx, disable_cookie_cache=True) if auto_sign_in else None
    if current is not None and current[1]["id"] != user["id"]:
        current = None  # another user's session: the verified user gets a new one
    # Verified and (with auto sign-in) signed in together, or neither (S41).
    session = None
    async with context.store.atomic() as store:
        user = await store.update_user(user["id"], {"emailVerified": True}) or user
        if auto_sign_in and current is None:
            session = await start_session(ctx, user, store=store)
    if options.after_email_verification is not None:
        await call_user(options.after_email_verification, user, ctx.request)
    if current is not None:
        set_session_cookie(ctx, current[0], user)
    elif session is not None:
        set_session_cookie(ctx, session, user)
    return _done(ctx)


async def _change_email(ctx: Ctx[Any], claims: dict[str, Any]) -> dict[str, Any]:
    """The change-email links (spec §3.2 /change-email), as better-auth 1.7.25 runs them.

    The token must name its user (`userId`), whose address must still be the one in
    `email`; a signed-in session must be that user's. A confirmation (mailed to the current
    address) mails the verification to the new one; the verification moves the address and
    keeps `emailVerified` as it was (better-auth 1.7.25: a verified user stays verified,
    an unverified one stays unverified). A token without `requestType` (older releases)
    moves the address at once, unverified, and mails a verification to it.
    """
    context = ctx.context
    new_email = str(claims["updateTo"]).lower()
    user_id = claims.get("userId")
    if not user_id:
        raise _fail(ctx, Code.INVALID_TOKEN)
    user = await context.store.find_user_by_id(user_id)
    if user is None:
        raise _fail(ctx, Code.USER_NOT_FOUND)
    if user["email"].lower() != claims["email"]:
        raise _fail(ctx, Code.INVALID_TOKEN)  # already used, or the address changed since
    session = await resolve_session(ctx, disable_cookie_cache=True)
    if session is not None and session[1]["id"] != user["id"]:
        raise _fail(ctx, Code.INVALID_USER)
    callback = ctx.query.get("callbackURL")
    request_type = claims.get("requestType")
    if request_type == "change-email-confirmation":
        await send_verification_email(
            ctx,
            {**user, "email": new_email},
            callback,
            claims={
                "email": claims["email"],
                "updateTo": new_email,
                "requestType": "change-email-verification",
                "userId": user["id"],
            },
        )
        return _done(ctx, {"status": True})
    taken = await context.store.find_user_by_email(new_email)
    if taken is not None and taken["id"] != user["id"]:
        raise _fail(ctx, Code.USER_ALREADY_EXISTS, 400)  # taken since the link was sent
    verified = bool(user["emailVerified"]) and request_type == "change-email-verification"
    updated = await context.store.update_user(
        user["id"], {"email": new_email, "emailVerified": verified}
    )
    if updated is None:
        raise _fail(ctx, Code.USER_NOT_FOUND)
    options = ctx.options.email_verification
    if verified and options.after_email_verification is not None:
        await call_user(options.after_email_verification, updated, ctx.request)
    if request_type != "change-email-verification":
        await send_verification_email(ctx, updated, callback)
    if session is not None:
        set_session_cookie(ctx, session[0], updated)
        ctx.new_session = None
    return _done(ctx, {"status": True, "user": user_out(ctx, updated)})


class SendVerificationBody(Body):
    email: Email
    callback_url: str | None = PydanticField(None, alias="callbackURL")


_MIN_SECONDS = 0.5  # answer time without a session, whatever happened (anti-enumeration)


async def send_verification(ctx: Ctx[SendVerificationBody]) -> dict[str, Any]:
    if ctx.options.email_verification.send_verification_email is None:
        raise APIError(400, Code.VERIFICATION_EMAIL_NOT_ENABLED)
    email = ctx.body.email.lower()
    session = await resolve_session(ctx)
    if session is not None:
        signed_in = session[1]
        if signed_in["email"].lower() != email:
            raise APIError(400, Code.EMAIL_MISMATCH)
        if signed_in["emailVerified"]:
            raise APIError(400, Code.EMAIL_ALREADY_VERIFIED)
        # Their own address: they may know it failed (better-auth answers a 500 here).
        if not await send_verification_email(ctx, signed_in, ctx.body.callback_url):
            raise APIError(502, MailCode.FAILED_TO_SEND_EMAIL)
        return {"status": True}
    await throttle_account(ctx, email)
    started = time.monotonic()
    try:
        user = await ctx.context.store.find_user_by_email(email)
        if user is not None and not user["emailVerified"]:
            # Sent or not (logged), the same answer: better-auth 1.7.25 rethrows here, a
            # 500 for exactly the unverified accounts that exist (S7).
            await send_verification_email(ctx, user, ctx.body.callback_url)
        else:
            ctx.context.sign_jwt({"email": email}, ctx.options.email_verification.expires_in)
    except Exception:
        await _pad(started)  # a failed send must not answer sooner either
        raise
    await _pad(started)
    return {"status": True}


async def _pad(started: float) -> None:
    await asyncio.sleep(max(0.0, _MIN_SECONDS - (time.monotonic() - started)))


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
        rate_limit=MAIL_RULE,
        operation_id="sendVerificationEmail",
    ),
)
