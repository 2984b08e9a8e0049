"""Passwords: change, reset by email, verify (spec §3.2).

S3: a change needs the current password, and a session read from storage. S17: a change
may end the other sessions (`revokeOtherSessions`), a reset all of them
(`revoke_sessions_on_password_reset`). S7: a reset request for an unknown email answers
as for a known one and mails nothing; one whose mail could not be sent answers the same.

S8, where better-auth (and so Bastion, which shares its database) falls short: the reset
token is 24 characters from a CSPRNG (~143 bits), single-use (consumed atomically) and
bound to the user (the row's value is the user id), but the verification row's
identifier holds it *unhashed* (`reset-password:<token>`) and it lives 1 h
(`reset_password_token_expires_in`, default 3600 s), not the ≤ 10 min S8 asks of
out-of-band codes. Lower `reset_password_token_expires_in` to tighten the latter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from ..._callbacks import call_user
from ..crypto import generate_id
from ..email import EmailLink, send_or_log
from ..endpoint import Ctx, Endpoint, Redirect
from ..errors import APIError, Code
from ..ratelimit import CREDENTIAL_RULE, MAIL_RULE
from ..security import query_callback_url
from ..sessions import sensitive_session, set_session_cookie, start_session
from ..validation import Body, Email
from .common import (
    check_password_length,
    check_password_not_too_long,
    throttle_account,
    user_out,
)

__all__ = ["ENDPOINTS"]


class ChangePasswordBody(Body):
    new_password: str = PydanticField(alias="newPassword")
    current_password: str = PydanticField(alias="currentPassword")
    revoke_other_sessions: bool | None = PydanticField(None, alias="revokeOtherSessions")


async def change_password(ctx: Ctx[ChangePasswordBody]) -> dict[str, Any]:
    assert ctx.session is not None
    context, body = ctx.context, ctx.body
    user = ctx.session[1]
    check_password_length(ctx, body.new_password)
    check_password_not_too_long(ctx, body.current_password)
    account = await context.store.find_credential_account(user["id"])
    if account is None or not account.get("password"):
        raise APIError(400, Code.CREDENTIAL_ACCOUNT_NOT_FOUND)
    new_hash = await context.hasher.hash(body.new_password)  # first, as better-auth: timing
    if not await context.hasher.verify(account["password"], body.current_password):
        raise APIError(400, Code.INVALID_PASSWORD)  # S3: the current password is required
    # The new password, the revocation and the new session land together or not at all
    # (S41); the revocation goes first, and stays done whatever fails after it.
    session = None
    async with context.store.atomic() as store:
        if body.revoke_other_sessions:
            await store.delete_user_sessions(user["id"])
        await store.set_password(user["id"], new_hash)
        if body.revoke_other_sessions:
            session = await start_session(ctx, user, store=store)
    if session is None:
        return {"token": None, "user": user_out(ctx, user)}
    set_session_cookie(ctx, session, user)
    return {"token": session["token"], "user": user_out(ctx, user)}


class RequestResetBody(Body):
    email: Email
    redirect_to: str | None = PydanticField(None, alias="redirectTo")


_RESET_MESSAGE = "If this email exists in our system, check your email for the reset link"


async def request_password_reset(ctx: Ctx[RequestResetBody]) -> dict[str, Any]:
    options = ctx.options.email_and_password
    if options.send_reset_password is None:
        raise APIError(400, Code.RESET_PASSWORD_DISABLED)
    context = ctx.context
    await throttle_account(ctx, ctx.body.email)
    user = await context.store.find_user_by_email(ctx.body.email)
    if user is None:
        # The same work as for a known email, so the answer tells nothing (S7).
        await context.store.find_verification(f"reset-password:{generate_id(24)}")
        return {"status": True, "message": _RESET_MESSAGE}
    token = generate_id(24)
    await context.store.create_verification(
        f"reset-password:{token}", user["id"], options.reset_password_token_expires_in
    )
    redirect = quote(ctx.body.redirect_to, safe="") if ctx.body.redirect_to else ""
    url = f"{ctx.base_url}/reset-password/{token}?callbackURL={redirect}"
    link = EmailLink(user=user_out(ctx, user), url=url, token=token)
    # A mail that could not go is logged and answered as an unknown address is (S7).
    await send_or_log(options.send_reset_password, link, ctx.request, purpose="reset-password")
    return {"status": True, "message": _RESET_MESSAGE}


class ResetCallbackQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    callback_url: str = PydanticField(alias="callbackURL")


async def reset_password_callback(ctx: Ctx[Any]) -> None:
    """GET /reset-password/{token}: on to the app's page with `?token=`, or `?error=`.

    The token is only looked at, not consumed: the page posts it back with the new
    password. A relative callbackURL is resolved against the base URL, as `new URL(cb,
    baseURL)` does; an empty one sends the error to `{base}/error`.
    """
    token = ctx.params["token"]
    callback = ctx.query["callbackURL"]
    if not callback:
        raise Redirect(_with_query(f"{ctx.base_url}/error", {"error": "INVALID_TOKEN"}))
    target = urljoin(ctx.base_url, callback)
    row = await ctx.context.store.find_verification(f"reset-password:{token}")
    raise Redirect(_with_query(target, {"token": token} if row else {"error": "INVALID_TOKEN"}))


def _with_query(url: str, values: dict[str, str]) -> str:
    """`url` with each of `values` set (replacing the same name), as URLSearchParams.set."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in values]
    path = parts.path or ("/" if parts.netloc else "")
    return urlunsplit(parts._replace(path=path, query=urlencode([*query, *values.items()])))


class ResetPasswordBody(Body):
    new_password: str = PydanticField(alias="newPassword")
    token: str | None = None


async def reset_password(ctx: Ctx[ResetPasswordBody]) -> dict[str, Any]:
    """Set the password with a mailed token: checked first, consumed once (S8)."""
    context = ctx.context
    token = ctx.body.token or ctx.query.get("token")
    if not token or not isinstance(token, str):
        raise APIError(400, Code.INVALID_TOKEN)
    check_password_length(ctx, ctx.body.new_password)  # before the token is used (errata 12)
    identifier = f"reset-password:{token}"
    row = await context.store.find_verification(identifier)
    if row is None:
        raise APIError(400, Code.INVALID_TOKEN)
    user = await context.store.find_user_by_id(row["value"])
    if user is None:
        raise APIError(400, Code.USER_NOT_FOUND)
    password_hash = await context.hasher.hash(ctx.body.new_password)
    options = ctx.options.email_and_password
    # The token, the revocation and the new password together or not at all (S41): a
    # storage that fails gives the token back for another try; sessions already revoked
    # stay revoked.
    async with context.store.atomic() as store:
        if await store.consume_verification(identifier) is None:
            raise APIError(400, Code.INVALID_TOKEN)  # another request used it meanwhile
        if options.revoke_sessions_on_password_reset:
            await store.delete_user_sessions(user["id"])  # S17
        await store.set_password(user["id"], password_hash)
    if options.on_password_reset is not None:
        await call_user(options.on_password_reset, {"user": user}, ctx.request)
    return {"status": True}


class PasswordBody(Body):
    password: str


async def verify_password(ctx: Ctx[PasswordBody]) -> dict[str, Any]:
    assert ctx.session is not None
    context, user = ctx.context, ctx.session[1]
    check_password_not_too_long(ctx, ctx.body.password)
    account = await context.store.find_credential_account(user["id"])
    if account is None or not account.get("password"):
        await context.hasher.dummy_verify(ctx.body.password)
        raise APIError(400, Code.INVALID_PASSWORD)
    if not await context.hasher.verify(account["password"], ctx.body.password):
        raise APIError(400, Code.INVALID_PASSWORD)
    return {"status": True}


ENDPOINTS = (
    Endpoint(
        "/change-password",
        ("POST",),
        change_password,
        name="change_password",
        body=ChangePasswordBody,
        use=(sensitive_session,),
        tags=("change-password",),
        rate_limit=CREDENTIAL_RULE,
        operation_id="changePassword",
    ),
    Endpoint(
        "/request-password-reset",
        ("POST",),
        request_password_reset,
        name="request_password_reset",
        body=RequestResetBody,
        rate_limit=MAIL_RULE,
        operation_id="requestPasswordReset",
    ),
    Endpoint(
        "/reset-password/{token}",
        ("GET",),
        reset_password_callback,
        name="reset_password_callback",
        query=ResetCallbackQuery,
        use=(query_callback_url,),
        operation_id="resetPasswordCallback",
    ),
    Endpoint(
        "/reset-password",
        ("POST",),
        reset_password,
        name="reset_password",
        body=ResetPasswordBody,
        operation_id="resetPassword",
    ),
    Endpoint(
        "/verify-password",
        ("POST",),
        verify_password,
        name="verify_password",
        body=PasswordBody,
        use=(sensitive_session,),
        operation_id="verifyPassword",
    ),
)
