"""Passwords: change, reset by email, verify (spec §3.2)."""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from ..crypto import generate_id
from ..email import EmailLink, call_sender
from ..endpoint import Ctx, Endpoint, Redirect
from ..errors import APIError, Code
from ..security import query_callback_url
from ..sessions import create_session_for, sensitive_session
from ..validation import Body
from .common import check_password_length, user_out

__all__ = ["ENDPOINTS"]


class ChangePasswordBody(Body):
    new_password: str = PydanticField(alias="newPassword")
    current_password: str = PydanticField(alias="currentPassword")
    revoke_other_sessions: bool | None = PydanticField(None, alias="revokeOtherSessions")


async def change_password(ctx: Ctx[ChangePasswordBody]) -> dict[str, Any]:
    assert ctx.session is not None
    identity, body = ctx.identity, ctx.body
    user = ctx.session[1]
    check_password_length(ctx, body.new_password)
    account = await identity.store.find_credential_account(user["id"])
    if account is None or not account.get("password"):
        raise APIError(400, Code.CREDENTIAL_ACCOUNT_NOT_FOUND)
    if not await identity.hasher.verify(account["password"], body.current_password):
        raise APIError(400, Code.INVALID_PASSWORD)  # S3: the current password is required
    await identity.store.set_password(user["id"], await identity.hasher.hash(body.new_password))
    token = None
    if body.revoke_other_sessions:
        await identity.store.delete_user_sessions(user["id"])
        token = (await create_session_for(ctx, user))["token"]
    return {"token": token, "user": user_out(ctx, user)}


class RequestResetBody(Body):
    email: str
    redirect_to: str | None = PydanticField(None, alias="redirectTo")


_RESET_MESSAGE = "If this email exists in our system, check your email for the reset link"


async def request_password_reset(ctx: Ctx[RequestResetBody]) -> dict[str, Any]:
    options = ctx.options.email_and_password
    if options.send_reset_password is None:
        raise APIError(400, Code.RESET_PASSWORD_DISABLED)
    identity = ctx.identity
    user = await identity.store.find_user_by_email(ctx.body.email)
    if user is None:
        # The same work as for a known email, so the answer tells nothing (S7).
        await identity.store.find_verification(f"reset-password:{generate_id(24)}")
        return {"status": True, "message": _RESET_MESSAGE}
    token = generate_id(24)
    await identity.store.create_verification(
        f"reset-password:{token}", user["id"], options.reset_password_token_expires_in
    )
    redirect = quote(ctx.body.redirect_to, safe="") if ctx.body.redirect_to else ""
    url = f"{ctx.base_url}/reset-password/{token}?callbackURL={redirect}"
    link = EmailLink(user=user_out(ctx, user), url=url, token=token)
    await call_sender(options.send_reset_password, link, ctx.request)
    return {"status": True, "message": _RESET_MESSAGE}


class ResetCallbackQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    callback_url: str = PydanticField(alias="callbackURL")


async def reset_password_callback(ctx: Ctx[Any]) -> None:
    """GET /reset-password/{token}: on to the app's page, with the token or an error."""
    token = ctx.params["token"]
    callback = ctx.query["callbackURL"]
    if not callback.startswith(("http://", "https://")):
        callback = urljoin(ctx.base_url + "/", callback)
    row = await ctx.identity.store.find_verification(f"reset-password:{token}")
    raise Redirect(_with_query(callback, {"token": token} if row else {"error": "INVALID_TOKEN"}))


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *extra.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


class ResetPasswordBody(Body):
    new_password: str = PydanticField(alias="newPassword")
    token: str | None = None


async def reset_password(ctx: Ctx[ResetPasswordBody]) -> dict[str, Any]:
    identity = ctx.identity
    token = ctx.body.token or ctx.query.get("token")
    if not token or not isinstance(token, str):
        raise APIError(400, Code.INVALID_TOKEN)
    check_password_length(ctx, ctx.body.new_password)  # before consuming (errata 12)
    row = await identity.store.consume_verification(f"reset-password:{token}")
    if row is None:
        raise APIError(400, Code.INVALID_TOKEN)
    user_id = row["value"]
    await identity.store.set_password(user_id, await identity.hasher.hash(ctx.body.new_password))
    options = ctx.options.email_and_password
    user = await identity.store.find_user_by_id(user_id)
    if options.on_password_reset is not None and user is not None:
        result = options.on_password_reset({"user": user}, ctx.request)
        if inspect.isawaitable(result):
            await result
    if options.revoke_sessions_on_password_reset:
        await identity.store.delete_user_sessions(user_id)
    return {"status": True}


class PasswordBody(Body):
    password: str


async def verify_password(ctx: Ctx[PasswordBody]) -> dict[str, Any]:
    assert ctx.session is not None
    identity, user = ctx.identity, ctx.session[1]
    account = await identity.store.find_credential_account(user["id"])
    if account is None or not account.get("password"):
        await identity.hasher.dummy_verify(ctx.body.password)
        raise APIError(400, Code.INVALID_PASSWORD)
    if not await identity.hasher.verify(account["password"], ctx.body.password):
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
        kind="change-password",
    ),
    Endpoint(
        "/request-password-reset",
        ("POST",),
        request_password_reset,
        name="request_password_reset",
        body=RequestResetBody,
    ),
    Endpoint(
        "/reset-password/{token}",
        ("GET",),
        reset_password_callback,
        name="reset_password_callback",
        query=ResetCallbackQuery,
        use=(query_callback_url,),
    ),
    Endpoint(
        "/reset-password",
        ("POST",),
        reset_password,
        name="reset_password",
        body=ResetPasswordBody,
    ),
    Endpoint(
        "/verify-password",
        ("POST",),
        verify_password,
        name="verify_password",
        body=PasswordBody,
        use=(sensitive_session,),
    ),
)
