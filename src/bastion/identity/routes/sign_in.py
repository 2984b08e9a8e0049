"""POST /sign-in/email (spec §3.2).

S7: an unknown email, a user without a credential password and a wrong password all get
the same 401 INVALID_EMAIL_OR_PASSWORD after one scrypt. S1: the password is compared
whole (no truncation); only its maximum length is checked (errata 3). S19: the
`form_csrf` guard refuses cross-site form posts (login CSRF) while letting clients that
send no Origin and no cookie (curl, servers) through. S5: on top of the per-IP limit, wrong
passwords are counted per account and client address (`guard_account`); a client that signs
in is remembered, so others' failures never lock it out.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field as PydanticField

from ..endpoint import JSON_OR_FORM, Ctx, Endpoint, SignInAnswered
from ..errors import APIError, Code
from ..ratelimit import CREDENTIAL_RULE
from ..security import form_csrf
from ..sessions import complete_sign_in
from ..validation import Body, is_email
from .common import (
    check_password_not_too_long,
    guard_account,
    send_verification_email,
    user_out,
)

__all__ = ["ENDPOINTS", "SignInBody"]


class SignInBody(Body):
    email: str
    password: str
    callback_url: str | None = PydanticField(None, alias="callbackURL")
    remember_me: bool | None = PydanticField(None, alias="rememberMe")


async def sign_in_email(ctx: Ctx[SignInBody]) -> dict[str, Any]:
    context, body = ctx.context, ctx.body
    options = ctx.options.email_and_password
    if not options.enabled:
        raise APIError(400, Code.EMAIL_PASSWORD_DISABLED)
    if not is_email(body.email):
        raise APIError(400, Code.INVALID_EMAIL)
    check_password_not_too_long(ctx, body.password)  # errata 3
    attempt = await guard_account(ctx, body.email)  # 429 before any password check
    user = await context.store.find_user_by_email(body.email)
    account = await context.store.find_credential_account(user["id"]) if user else None
    if user is None or account is None or not account.get("password"):
        await context.hasher.dummy_verify(body.password)  # same cost as a real check (S7)
        await attempt.count()  # an unknown account counts as a known one does (S7)
        raise APIError(401, Code.INVALID_EMAIL_OR_PASSWORD)
    if not await context.hasher.verify(account["password"], body.password):
        await attempt.count()
        raise APIError(401, Code.INVALID_EMAIL_OR_PASSWORD)
    if options.require_email_verification and not user["emailVerified"]:
        if ctx.options.email_verification.send_on_sign_in:
            await send_verification_email(ctx, user, body.callback_url)
        raise APIError(403, Code.EMAIL_NOT_VERIFIED)
    await attempt.remember_client()
    try:
        session = await complete_sign_in(ctx, user, dont_remember=body.remember_me is False)
    except SignInAnswered:  # a second factor is due: better-auth's answer keeps the Location
        if body.callback_url:
            ctx.response_headers["location"] = body.callback_url
        raise
    result: dict[str, Any] = {"redirect": False, "token": session["token"]}
    if body.callback_url:
        ctx.response_headers["location"] = body.callback_url
        result.update(redirect=True, url=body.callback_url)
    result["user"] = user_out(ctx, user)
    return result


ENDPOINTS = (
    Endpoint(
        "/sign-in/email",
        ("POST",),
        sign_in_email,
        name="sign_in_email",
        body=SignInBody,
        media_types=JSON_OR_FORM,
        tags=("sign-in",),
        use=(form_csrf,),
        rate_limit=CREDENTIAL_RULE,
        operation_id="signInEmail",
    ),
)
