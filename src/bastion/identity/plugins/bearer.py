"""The bearer plugin (spec §5.5): `Authorization: Bearer <token>` stands in for the cookie.

Before every endpoint, a valid bearer token becomes the session_token cookie; once the answer
is final and sets a session cookie, it carries `set-auth-token` for clients without cookies.
Decided last (`on_response`): an after-hook that signs the session out again leaves no token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from ..cookies import cookie_name, parse_cookie_header
from ..crypto import hmac_sign, hmac_verify
from ..endpoint import Ctx, Endpoint
from . import EndpointHook, Plugin

__all__ = ["bearer"]


def bearer(*, require_signature: bool = False) -> Plugin:
    """`require_signature`: refuse raw tokens, accept only `token.signature`."""

    async def before(ctx: Ctx[Any]) -> None:
        header = ctx.headers.get("authorization", "")
        if header[:7].lower() != "bearer ":
            return None
        token = header[7:].strip()
        secret = ctx.context.secret
        if "." in token:
            signed = unquote(token) if "%" in token else token
        elif require_signature:
            return None
        else:
            signed = f"{token}.{hmac_sign(secret, token)}"
        value, _, signature = signed.rpartition(".")
        if not value or not hmac_verify(secret, value, signature):
            return None
        name = cookie_name(
            ctx.options.advanced.cookie_prefix,
            "session_token",
            secure=ctx.context.secure_cookies,
        )
        cookies = {k: v for k, v in parse_cookie_header(ctx.headers.get("cookie", "")).items()}
        cookies[name] = quote(signed, safe="-_.!~*'()")
        ctx.replace_cookie_header("; ".join(f"{k}={v}" for k, v in cookies.items()))
        return None

    async def after(ctx: Ctx[Any]) -> None:
        if not ctx.set_cookies:  # most answers (a get-session) set no cookie
            return None
        name = cookie_name(
            ctx.options.advanced.cookie_prefix,
            "session_token",
            secure=ctx.context.secure_cookies,
        )
        last: str | None = None  # the browser keeps the last Set-Cookie of a name
        for line in ctx.set_cookies:
            if line.startswith(f"{name}="):
                last = line
        if last is None:
            return None
        head, _, rest = last.partition(";")
        value = head.partition("=")[2]
        if not value or any(a.strip().lower() == "max-age=0" for a in rest.split(";")):
            return None
        ctx.response_headers["set-auth-token"] = unquote(value)
        exposed = ctx.response_headers.get("access-control-expose-headers", "")
        names = [h.strip() for h in exposed.split(",") if h.strip()]
        if "set-auth-token" not in names:
            names.append("set-auth-token")
        ctx.response_headers["access-control-expose-headers"] = ", ".join(names)
        return None

    def every(_: Endpoint) -> bool:
        return True

    return Plugin(
        id="bearer",
        before=(EndpointHook(every, before),),
        on_response=(EndpointHook(every, after),),
    )
