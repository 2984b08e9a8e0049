"""The signed-in user: update, change email, delete (spec §3.2).

S3: changing the email needs a session read from storage (`sensitive_session`) and proof
of the new address (a link mailed to it), unless the current one was never verified and
`update_email_without_verification` allows it; with `send_change_email_confirmation` the
current address must approve first. Where S3 asks more: like better-auth, the session
need not be *fresh* for change-email (deletion does need the password, a fresh session or
a mailed link). S7: change-email answers a taken address exactly as a free one. S17:
deleting a user deletes all of its sessions.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from ..._callbacks import call_user
from ..crypto import LOWER_ALPHANUMERIC, random_string
from ..db import CORE_SCHEMA
from ..email import EmailLink, send_or_log
from ..endpoint import Ctx, Endpoint, Redirect
from ..errors import APIError, Code, ErrorCode
from ..ratelimit import CREDENTIAL_RULE
from ..security import query_callback_url
from ..sessions import (
    clear_session_cookies,
    remembered,
    resolve_session,
    sensitive_session,
    session_required,
    set_session_cookie,
)
from ..validation import Body, Email, js_type
from .common import (
    check_password_not_too_long,
    coerce_field,
    send_verification_email,
    user_input,
    user_out,
    verification_url,
)

__all__ = ["ENDPOINTS"]


class _Codes(ErrorCode):
    NOT_FOUND = "Not found"  # /delete-user/callback when deletion is disabled


_CORE_USER = CORE_SCHEMA.fields("user")


async def _record_body(ctx: Ctx[Any]) -> None:
    """update-user's body is any JSON object (zod's `z.record`), checked before the session
    as a schema is: 400 before 401."""
    raw = ctx.raw_body
    if not isinstance(raw, dict):
        received = "undefined" if raw is None else js_type(raw)
        raise APIError(
            400,
            Code.VALIDATION_ERROR,
            f"[body] Invalid input: expected record, received {received}",
        )


async def update_user(ctx: Ctx[Any]) -> dict[str, Any]:
    """`name`, `image` and the additional fields; other keys are ignored, `email` refused."""
    assert ctx.session is not None
    raw = ctx.raw_body
    if raw.get("email"):  # better-auth tests truthiness: {"email": ""} is just ignored
        raise APIError(400, Code.EMAIL_CAN_NOT_BE_UPDATED)
    values = {
        name: coerce_field(name, _CORE_USER[name], raw[name])
        for name in ("name", "image")
        if name in raw
    }
    values.update(user_input(ctx, raw, create=False))
    if not values:
        raise APIError(400, None, "No fields to update")
    session, _ = ctx.session
    user = await ctx.context.store.update_user(session["userId"], values)
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
    """The flows of spec §3.2, chosen before the new address is looked up (S7)."""
    assert ctx.session is not None
    options = ctx.options.user.change_email
    if not options.enabled:
        raise APIError(400, Code.CHANGE_EMAIL_DISABLED)
    session, user = ctx.session
    new_email = ctx.body.new_email.lower()
    if new_email == user["email"]:
        raise APIError(400, None, "Email is the same")
    can_send = ctx.options.email_verification.send_verification_email is not None
    update_now = not user["emailVerified"] and options.update_email_without_verification
    confirm_first = (
        can_send and user["emailVerified"] and options.send_change_email_confirmation is not None
    )
    if not (update_now or can_send):
        # Before the lookup: a taken address must not answer differently (S7).
        raise APIError(400, None, "Verification email isn't enabled")
    store = ctx.context.store
    claims = {
        "email": user["email"],
        "updateTo": new_email,
        "requestType": "change-email-verification",
        "userId": user["id"],
    }
    expires_in = ctx.options.email_verification.expires_in
    if await store.find_user_by_email(new_email) is not None:
        ctx.context.sign_jwt(claims, expires_in)  # the work a free address costs
        return {"status": True}
    callback = ctx.body.callback_url
    if update_now:
        updated = await store.update_user(user["id"], {"email": new_email})
        if updated is not None:
            set_session_cookie(ctx, session, updated, dont_remember=_dont_remember(ctx))
            ctx.new_session = None
            await send_verification_email(ctx, updated, callback)
        return {"status": True}
    if confirm_first:
        # The current address approves first; /verify-email then mails the new one.
        token = ctx.context.sign_jwt(
            {**claims, "requestType": "change-email-confirmation"}, expires_in
        )
        link = EmailLink(
            user=user_out(ctx, user),
            url=verification_url(ctx, token, callback),
            token=token,
            new_email=new_email,
        )
        assert options.send_change_email_confirmation is not None
        sender = options.send_change_email_confirmation
        await send_or_log(sender, link, ctx.request, purpose="change-email confirmation")
        return {"status": True}
    await send_verification_email(ctx, {**user, "email": new_email}, callback, claims=claims)
    return {"status": True}


class DeleteUserBody(Body):
    callback_url: str | None = PydanticField(None, alias="callbackURL")
    password: str | None = None
    token: str | None = None


async def delete_user(ctx: Ctx[DeleteUserBody]) -> dict[str, Any]:
    """Deletion needs the password, a fresh session, or a token mailed to the user (S3)."""
    options = ctx.options.user.delete_user
    if not options.enabled:
        raise APIError(404)  # an empty body, as APIError.fromStatus("NOT_FOUND")
    assert ctx.session is not None
    session, user = ctx.session
    body = ctx.body
    context = ctx.context
    if body.password:
        check_password_not_too_long(ctx, body.password)
        account = await context.store.find_credential_account(user["id"])
        if account is None or not account.get("password"):
            raise APIError(400, Code.CREDENTIAL_ACCOUNT_NOT_FOUND)
        if not await context.hasher.verify(account["password"], body.password):
            raise APIError(400, Code.INVALID_PASSWORD)
    if body.token:
        await _delete_with_token(ctx, body.token)
        return {"success": True, "message": "User deleted"}
    if options.send_delete_account_verification is not None:
        token = random_string(32, LOWER_ALPHANUMERIC)
        await context.store.create_verification(
            f"delete-account-{token}", user["id"], options.delete_token_expires_in
        )
        url = (
            f"{ctx.base_url}/delete-user/callback?token={token}"
            f"&callbackURL={quote(body.callback_url or '/', safe='')}"
        )
        link = EmailLink(user=user_out(ctx, user), url=url, token=token)
        sender = options.send_delete_account_verification
        await send_or_log(sender, link, ctx.request, purpose="delete-account")
        return {"success": True, "message": "Verification email sent"}
    if not body.password:
        fresh_age = ctx.options.session.fresh_age
        age = (context.now() - session["createdAt"]).total_seconds()
        if fresh_age and age >= fresh_age:
            raise APIError(400, Code.SESSION_EXPIRED)
    await _delete(ctx, user)
    return {"success": True, "message": "User deleted"}


async def _delete(ctx: Ctx[Any], user: dict[str, Any]) -> None:
    """The user, its accounts and all its sessions (S17), and this request's cookies."""
    options = ctx.options.user.delete_user
    if options.before_delete is not None:
        await call_user(options.before_delete, user, ctx.request)
    await ctx.context.store.delete_user(user["id"])
    clear_session_cookies(ctx)
    if options.after_delete is not None:
        await call_user(options.after_delete, user, ctx.request)


class DeleteCallbackQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    token: str
    callback_url: str | None = PydanticField(None, alias="callbackURL")


async def delete_user_callback(ctx: Ctx[Any]) -> dict[str, Any]:
    """The mailed link: deletes only when opened in a session of the token's user."""
    if not ctx.options.user.delete_user.enabled:
        raise APIError(404, _Codes.NOT_FOUND)
    ctx.session = await resolve_session(ctx, disable_cookie_cache=True)
    if ctx.session is None:
        raise APIError(404, Code.FAILED_TO_GET_USER_INFO)  # errata 10
    await _delete_with_token(ctx, ctx.query["token"])
    callback = ctx.query.get("callbackURL")
    if callback:
        raise Redirect(callback)
    return {"success": True, "message": "User deleted"}


async def _delete_with_token(ctx: Ctx[Any], token: str) -> None:
    """Consumed at once (single use, S8) and bound to the signed-in user."""
    assert ctx.session is not None
    user = ctx.session[1]
    row = await ctx.context.store.consume_verification(f"delete-account-{token}")
    if row is None or row["value"] != user["id"]:
        raise APIError(404, Code.INVALID_TOKEN)
    await _delete(ctx, user)


ENDPOINTS = (
    Endpoint(
        "/update-user",
        ("POST",),
        update_user,
        name="update_user",
        use=(_record_body, session_required),
        operation_id="updateUser",
    ),
    Endpoint(
        "/change-email",
        ("POST",),
        change_email,
        name="change_email",
        body=ChangeEmailBody,
        use=(sensitive_session,),
        rate_limit=CREDENTIAL_RULE,
        operation_id="changeEmail",
    ),
    Endpoint(
        "/delete-user",
        ("POST",),
        delete_user,
        name="delete_user",
        body=DeleteUserBody,
        use=(sensitive_session,),
        operation_id="deleteUser",
    ),
    Endpoint(
        "/delete-user/callback",
        ("GET",),
        delete_user_callback,
        name="delete_user_callback",
        query=DeleteCallbackQuery,
        use=(query_callback_url,),
    ),
)
