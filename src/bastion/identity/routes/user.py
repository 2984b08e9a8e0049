"""The signed-in user: update, change email, delete (spec §3.2)."""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from ..crypto import LOWER_ALPHANUMERIC, random_string
from ..email import EmailLink, call_sender
from ..endpoint import Ctx, Endpoint, Redirect
from ..errors import APIError, Code
from ..security import query_callback_url
from ..sessions import (
    clear_session_cookies,
    remembered,
    resolve_session,
    sensitive_session,
    session_required,
    set_session_cookie,
)
from ..validation import Body, Email
from .common import send_verification_email, user_out

__all__ = ["ENDPOINTS"]


async def update_user(ctx: Ctx[Any]) -> dict[str, Any]:
    assert ctx.session is not None
    raw = ctx.raw_body
    if not isinstance(raw, dict):
        raise APIError(400, Code.BODY_MUST_BE_AN_OBJECT)
    if "email" in raw:
        raise APIError(400, Code.EMAIL_CAN_NOT_BE_UPDATED)
    values = ctx.identity.input_fields("user", raw)
    if "name" in values and values["name"] is not None:
        values["name"] = str(values["name"])  # better-auth stores {"name": 42} as "42" (errata 4)
    if not values:
        raise APIError(400, None, "No fields to update")
    session, _ = ctx.session
    user = await ctx.identity.store.update_user(session["userId"], values)
    if user is None:
        raise APIError(400, Code.FAILED_TO_UPDATE_USER)
    set_session_cookie(ctx, session, user, dont_remember=_dont_remember(ctx))
    ctx.new_session = None
    return {"status": True}


def _dont_remember(ctx: Ctx[Any]) -> bool:
    return not remembered(ctx)


class ChangeEmailBody(Body):
    new_email: Email = PydanticField(alias="newEmail")
    callback_url: str | None = PydanticField(None, alias="callbackURL")


async def change_email(ctx: Ctx[ChangeEmailBody]) -> dict[str, Any]:
    assert ctx.session is not None
    options = ctx.options.user.change_email
    if not options.enabled:
        raise APIError(400, Code.CHANGE_EMAIL_DISABLED)
    session, user = ctx.session
    new_email = ctx.body.new_email.lower()
    if new_email == user["email"]:
        raise APIError(400, None, "Email is the same")
    store = ctx.identity.store
    if await store.find_user_by_email(new_email) is not None:
        ctx.identity.sign_jwt({"email": user["email"], "updateTo": new_email}, 60)  # timing
        return {"status": True}
    callback = ctx.body.callback_url
    if not user["emailVerified"] and options.update_email_without_verification:
        updated = await store.update_user(user["id"], {"email": new_email})
        if updated is not None:
            set_session_cookie(ctx, session, updated, dont_remember=_dont_remember(ctx))
            ctx.new_session = None
            await send_verification_email(ctx, updated, callback)
        return {"status": True}
    expires_in = ctx.options.email_verification.expires_in
    if user["emailVerified"] and options.send_change_email_confirmation is not None:
        token = ctx.identity.sign_jwt(
            {
                "email": user["email"],
                "updateTo": new_email,
                "requestType": "change-email-confirmation",
            },
            expires_in,
        )
        url = _verify_url(ctx, token, callback)
        link = EmailLink(user=user_out(ctx, user), url=url, token=token, new_email=new_email)
        await call_sender(options.send_change_email_confirmation, link, ctx.request)
        return {"status": True}
    if ctx.options.email_verification.send_verification_email is None:
        raise APIError(400, Code.VERIFICATION_EMAIL_NOT_ENABLED)
    await send_verification_email(
        ctx,
        {**user, "email": new_email},
        callback,
        updateTo=new_email,
        requestType="change-email-verification",
    )
    return {"status": True}


def _verify_url(ctx: Ctx[Any], token: str, callback: str | None) -> str:
    return (
        f"{ctx.base_url}/verify-email?token={quote(token, safe='')}"
        f"&callbackURL={quote(callback or '/', safe='')}"
    )


class DeleteUserBody(Body):
    callback_url: str | None = PydanticField(None, alias="callbackURL")
    password: str | None = None
    token: str | None = None


async def delete_user(ctx: Ctx[Any]) -> dict[str, Any]:
    options = ctx.options.user.delete_user
    if not options.enabled:
        raise APIError(404)
    await sensitive_session(ctx)
    assert ctx.session is not None
    session, user = ctx.session
    body = DeleteUserBody.model_validate(ctx.raw_body if isinstance(ctx.raw_body, dict) else {})
    identity = ctx.identity
    if body.password is not None:
        account = await identity.store.find_credential_account(user["id"])
        if account is None or not account.get("password"):
            raise APIError(400, Code.CREDENTIAL_ACCOUNT_NOT_FOUND)
        if not await identity.hasher.verify(account["password"], body.password):
            raise APIError(400, Code.INVALID_PASSWORD)
    if body.token is not None:
        return await _delete_with_token(ctx, body.token, None)
    if options.send_delete_account_verification is not None:
        token = random_string(32, LOWER_ALPHANUMERIC)
        await identity.store.create_verification(
            f"delete-account-{token}", user["id"], options.delete_token_expires_in
        )
        url = (
            f"{ctx.base_url}/delete-user/callback?token={token}"
            f"&callbackURL={quote(body.callback_url or '/', safe='')}"
        )
        link = EmailLink(user=user_out(ctx, user), url=url, token=token)
        await call_sender(options.send_delete_account_verification, link, ctx.request)
        return {"success": True, "message": "Verification email sent"}
    if body.password is None:
        fresh_age = ctx.options.session.fresh_age
        age = (identity.now() - session["createdAt"]).total_seconds()
        if fresh_age and age >= fresh_age:
            raise APIError(400, Code.SESSION_EXPIRED)
    await _delete(ctx, user)
    return {"success": True, "message": "User deleted"}


async def _delete(ctx: Ctx[Any], user: dict[str, Any]) -> None:
    options = ctx.options.user.delete_user
    if options.before_delete is not None:
        await _maybe_await(options.before_delete(user, ctx.request))
    await ctx.identity.store.delete_user(user["id"])
    clear_session_cookies(ctx)
    if options.after_delete is not None:
        await _maybe_await(options.after_delete(user, ctx.request))


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class DeleteCallbackQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    token: str
    callback_url: str | None = PydanticField(None, alias="callbackURL")


async def delete_user_callback(ctx: Ctx[Any]) -> dict[str, Any]:
    if not ctx.options.user.delete_user.enabled:
        raise APIError(404)
    ctx.session = await resolve_session(ctx, disable_cookie_cache=True)
    if ctx.session is None:
        raise APIError(404, Code.FAILED_TO_GET_USER_INFO)  # errata 10
    return await _delete_with_token(ctx, ctx.query["token"], ctx.query.get("callbackURL"))


async def _delete_with_token(ctx: Ctx[Any], token: str, callback: str | None) -> dict[str, Any]:
    assert ctx.session is not None
    user = ctx.session[1]
    row = await ctx.identity.store.consume_verification(f"delete-account-{token}")
    if row is None or row["value"] != user["id"]:
        raise APIError(404, Code.INVALID_TOKEN)
    await _delete(ctx, user)
    if callback:
        raise Redirect(callback)
    return {"success": True, "message": "User deleted"}


ENDPOINTS = (
    Endpoint("/update-user", ("POST",), update_user, name="update_user", use=(session_required,)),
    Endpoint(
        "/change-email",
        ("POST",),
        change_email,
        name="change_email",
        body=ChangeEmailBody,
        use=(sensitive_session,),
    ),
    Endpoint("/delete-user", ("POST",), delete_user, name="delete_user"),
    Endpoint(
        "/delete-user/callback",
        ("GET",),
        delete_user_callback,
        name="delete_user_callback",
        query=DeleteCallbackQuery,
        use=(query_callback_url,),
    ),
)
