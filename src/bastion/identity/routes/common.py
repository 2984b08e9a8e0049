"""What several routes share: password rules, user output, links, emails."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from ..email import EmailLink, call_sender
from ..endpoint import Ctx
from ..errors import APIError, Code

__all__ = [
    "check_password_length",
    "send_verification_email",
    "user_out",
    "verification_url",
]


def check_password_length(ctx: Ctx[Any], password: str) -> None:
    options = ctx.options.email_and_password
    length = len(password.encode("utf-16-le")) // 2  # JavaScript counts UTF-16 code units
    if length < options.min_password_length:
        raise APIError(400, Code.PASSWORD_TOO_SHORT)
    if length > options.max_password_length:
        raise APIError(400, Code.PASSWORD_TOO_LONG)


def user_out(ctx: Ctx[Any], user: dict[str, Any]) -> dict[str, Any]:
    return ctx.identity.public_row("user", user)


def session_out(ctx: Ctx[Any], session: dict[str, Any]) -> dict[str, Any]:
    return ctx.identity.public_row("session", session)


def verification_url(ctx: Ctx[Any], token: str, callback_url: str | None) -> str:
    query = urlencode({"token": token}) + "&callbackURL=" + quote(callback_url or "/", safe="")
    return f"{ctx.base_url}/verify-email?{query}"


async def send_verification_email(
    ctx: Ctx[Any], user: dict[str, Any], callback_url: str | None, **claims: Any
) -> None:
    """The stateless email-verification JWT (spec §7.4), mailed through the callback."""
    sender = ctx.options.email_verification.send_verification_email
    if sender is None:
        return
    token = ctx.identity.sign_jwt(
        {"email": user["email"].lower(), "userId": user["id"], **claims},
        ctx.options.email_verification.expires_in,
    )
    link = EmailLink(
        user=user_out(ctx, user), url=verification_url(ctx, token, callback_url), token=token
    )
    await call_sender(sender, link, ctx.request)
