"""What several routes share: password rules, user input and output, links, emails."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from ..db import CORE_SCHEMA, NOW, Field
from ..email import EmailLink, send_or_log
from ..endpoint import Ctx
from ..errors import APIError, Code, ErrorCode, too_many_requests
from ..ratelimit import MAIL_ACCOUNT_RULE, SIGN_IN_ACCOUNT_RULE, AccountAttempt, AccountRule
from ..validation import (
    MAX_EMAIL_LENGTH,
    MAX_FIELD_LENGTH,
    MAX_IMAGE_LENGTH,
    MAX_NAME_LENGTH,
    js_type,
)

__all__ = [
    "MailCode",
    "additional_input",
    "check_password_length",
    "check_password_not_too_long",
    "coerce_field",
    "guard_account",
    "send_verification_email",
    "synthetic_user",
    "throttle_account",
    "user_input",
    "user_out",
    "verification_url",
]


class MailCode(ErrorCode):
    """Bastion's own: 502, the mail service (this server's upstream) failed, not this one."""

    FAILED_TO_SEND_EMAIL = "The email could not be sent. Try again later."


_CORE_FIELDS = {model: frozenset(CORE_SCHEMA.fields(model)) for model in CORE_SCHEMA}


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2  # JavaScript counts UTF-16 code units


def check_password_length(ctx: Ctx[Any], password: str) -> None:
    """The min and max length, in UTF-16 code units as JavaScript counts (spec §7.1).

    Nothing else: no composition rules, no truncation, no case folding (S1).
    """
    if _utf16_length(password) < ctx.options.email_and_password.min_password_length:
        raise APIError(400, Code.PASSWORD_TOO_SHORT)
    check_password_not_too_long(ctx, password)


def check_password_not_too_long(ctx: Ctx[Any], password: str) -> None:
    """The max length only: what sign-in and the current-password checks enforce (errata 3),
    so that no one makes the server scrypt a megabyte."""
    if _utf16_length(password) > ctx.options.email_and_password.max_password_length:
        raise APIError(400, Code.PASSWORD_TOO_LONG)


async def guard_account(
    ctx: Ctx[Any], account: str, rule: AccountRule = SIGN_IN_ACCOUNT_RULE
) -> AccountAttempt:
    """The per-account limit (S5) of an attempt about `account` from this client, on top
    of the per-IP one: 429 when refused, before any password is checked, counting nothing.
    The caller then counts a failure or remembers a successful client (see AccountRule: a
    third party's failures never lock the owner out of a place they signed in from). On
    when rate limiting is."""
    limiter = ctx.context.rate_limiter
    if limiter is None:
        return AccountAttempt()
    attempt = await limiter.account_attempt(
        ctx.endpoint.path, account, ctx.client_ip, declared=ctx.endpoint.rate_limit, rule=rule
    )
    if not attempt.result.allowed:
        raise too_many_requests(attempt.result.retry_after)
    return attempt


async def throttle_account(ctx: Ctx[Any], account: str) -> None:
    """The per-account limit of a request that mails `account` (reset, verification):
    every such request counts, known or not to exist (S7), since each may cost a mail."""
    attempt = await guard_account(ctx, account, MAIL_ACCOUNT_RULE)
    await attempt.count()


def coerce_field(name: str, spec: Field, value: Any) -> Any:
    """A client's value for a string, number or boolean column, or 400 VALIDATION_ERROR.

    A number for a string column becomes its text, as a SQL database stores it
    (`{"name": 42}` is stored as "42", errata 4); other mismatches, and null for a required
    column, are refused here rather than failing in the database (a 500). Strings, and json
    or array values as JSON text, have a maximum length (`MAX_*_LENGTH`): every
    get-session returns them.
    """
    if value is None:
        if spec.required:
            _invalid(name, spec.type, value)
        return None
    if spec.type == "string":
        if isinstance(value, str):
            return _bounded(name, value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _bounded(name, _js_number_text(value))
        _invalid(name, "string", value)
    if spec.type in ("json", "string[]", "number[]") and len(json.dumps(value)) > MAX_FIELD_LENGTH:
        raise APIError(
            400,
            Code.VALIDATION_ERROR,
            f"[body.{name}] Too big: expected JSON to have <={MAX_FIELD_LENGTH} characters",
        )
    if spec.type == "number" and (not isinstance(value, int | float) or isinstance(value, bool)):
        _invalid(name, "number", value)
    if spec.type == "boolean" and not isinstance(value, bool):
        _invalid(name, "boolean", value)
    return value


_MAX_LENGTHS = {"name": MAX_NAME_LENGTH, "email": MAX_EMAIL_LENGTH, "image": MAX_IMAGE_LENGTH}


def _bounded(name: str, value: str) -> str:
    limit = _MAX_LENGTHS.get(name, MAX_FIELD_LENGTH)
    if len(value) > limit:
        raise APIError(
            400,
            Code.VALIDATION_ERROR,
            f"[body.{name}] Too big: expected string to have <={limit} characters",
        )
    return value


def _js_number_text(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # String(42.0) is "42" in JavaScript
    return str(value)


def _invalid(name: str, expected: str, value: Any) -> None:
    raise APIError(
        400,
        Code.VALIDATION_ERROR,
        f"[body.{name}] Invalid input: expected {expected}, received {js_type(value)}",
    )


def user_input(ctx: Ctx[Any], raw: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
    return additional_input(ctx, "user", raw, create=create)


def additional_input(
    ctx: Ctx[Any], model: str, raw: Mapping[str, Any], *, create: bool
) -> dict[str, Any]:
    """The additional fields (options and plugins) of `model` that `raw` sets, as
    better-auth's `parseUserInput` / `parseSessionInput` read them.

    Core fields (`emailVerified`, `createdAt`, ...) and unknown keys are dropped silently:
    `{"emailVerified": true}` at sign-up is ignored, not refused (better-auth 1.7.25). An
    `input=False` field is refused with FIELD_NOT_ALLOWED when given a truthy value, except
    on create when it has a default, which then applies. On create, a required field with
    no default must be given (MISSING_FIELD).
    """
    core = _CORE_FIELDS.get(model, frozenset())
    out: dict[str, Any] = {}
    for name, spec in ctx.context.schema.fields(model).items():
        if name in core:
            continue
        if name in raw:
            value = raw[name]
            if not spec.input:
                if create and spec.default is not None:
                    continue  # the database applies the default
                if value:
                    raise APIError(400, Code.FIELD_NOT_ALLOWED, f"{name} is not allowed to be set")
                continue
            out[name] = coerce_field(name, spec, value)
        elif create and spec.required and spec.default is None:
            raise APIError(400, Code.MISSING_FIELD, f"{name} is required")
    return out


def synthetic_user(ctx: Ctx[Any], given: Mapping[str, Any], user_id: str) -> dict[str, Any]:
    """A user as sign-up would return it had it been created: the same keys in the same
    order, defaults filled in, nothing stored (S7: a duplicate sign-up must not show)."""
    now = ctx.context.now()
    row: dict[str, Any] = {"id": user_id}
    for name, spec in ctx.context.schema.fields("user").items():
        value = given.get(name)
        if value is None:  # as the database fills a row in (Database.create)
            if spec.default is NOW or spec.on_update is NOW:
                value = now
            elif callable(spec.default):
                value = spec.default()
            else:
                value = spec.default
        row[name] = value
    return user_out(ctx, row)


def user_out(ctx: Ctx[Any], user: Mapping[str, Any]) -> dict[str, Any]:
    return ctx.context.public_row("user", user)


def session_out(ctx: Ctx[Any], session: dict[str, Any]) -> dict[str, Any]:
    return ctx.context.public_row("session", session)


def verification_url(ctx: Ctx[Any], token: str, callback_url: str | None) -> str:
    query = urlencode({"token": token}) + "&callbackURL=" + quote(callback_url or "/", safe="")
    return f"{ctx.base_url}/verify-email?{query}"


async def send_verification_email(
    ctx: Ctx[Any],
    user: Mapping[str, Any],
    callback_url: str | None,
    *,
    claims: Mapping[str, Any] | None = None,
) -> bool:
    """Mail `user` (at `user["email"]`) a link to `/verify-email` with the stateless JWT
    (spec §7.4) through `send_verification_email`; nothing when that is not configured.
    False when the callback failed (logged by `send_or_log`, as better-auth does).

    The claims default to `{email, userId}` of `user` (errata 11); the change-email flows
    pass their own (`email` is then the current address, `updateTo` the new one).
    """
    sender = ctx.options.email_verification.send_verification_email
    if sender is None:
        return True
    if claims is None:
        claims = {"email": str(user["email"]).lower(), "userId": user["id"]}
    token = ctx.context.sign_jwt(claims, ctx.options.email_verification.expires_in)
    link = EmailLink(
        user=user_out(ctx, user), url=verification_url(ctx, token, callback_url), token=token
    )
    return await send_or_log(sender, link, ctx.request, purpose="verification")
