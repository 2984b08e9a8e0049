"""better-auth's `magicLink` plugin (1.7.25): sign in with a link mailed to the address.

    Identity(plugins=[magic_link(send_magic_link=magic_link_sender(SMTPMailer(...)))])

`POST /sign-in/magic-link {email, name?, callbackURL?, newUserCallbackURL?,
errorCallbackURL?, metadata?}` stores a token and calls `send_magic_link(MagicLinkEmail,
request)` with the link `<base>/magic-link/verify?token=…&callbackURL=…`; it answers
`{"status": true}` whether or not the address has an account (S7). Opening the link
(`GET /magic-link/verify`) consumes the token, finds the user by address or creates one
(verified, unless `disable_sign_up`), makes a session and redirects to `callbackURL`
(`newUserCallbackURL` for a new user); a bad link redirects to `errorCallbackURL` (else
`callbackURL`) with `?error=INVALID_TOKEN`. Without `callbackURL` it answers `{token, user,
session}` as JSON.

S13 and S8, as far as a database shared with better-auth allows: the token is 32 letters
from a CSPRNG (~182 bits), single use (consumed atomically: a second click is
INVALID_TOKEN), lives `expires_in` seconds (300), and is stored as it is by default, or as
its SHA-256 with `store_token="hashed"` (better-auth reads both). A link is not bound to
the browser that asked for it (it is meant to be opened from the mail, on any device);
`invalidate_on_password_change=True` refuses a link asked for before the account's last
password change (better-auth has no such check, so it is off by default). An unverified
account that a link signs in to loses its password, its linked accounts and its sessions
first: whatever was attached before the owner of the address proved it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from ..._callbacks import call_user
from ..crypto import LETTERS, random_string, sha256_base64url
from ..email import Mailer
from ..endpoint import Ctx, Endpoint, Redirect
from ..errors import APIError, Code
from ..ratelimit import RateRule
from ..routes.common import MailCode, session_out, throttle_account, user_out
from ..security import form_csrf
from ..sessions import complete_sign_in
from ..validation import Body, Email, is_email
from . import Plugin
from ._passwordless import compose, form_encode, js_url, revoke_unproven_account_access, with_query

__all__ = ["MagicLinkEmail", "magic_link", "magic_link_sender"]


@dataclass(frozen=True, slots=True)
class MagicLinkEmail:
    """What `send_magic_link` gets (better-auth's `{email, url, token, metadata}`): the
    address as the client typed it, the link to mail, the bare token in it, and the
    `metadata` object the client sent, if any."""

    email: str
    url: str
    token: str
    metadata: Mapping[str, Any] | None = field(default=None)


MagicLinkSender = Callable[[MagicLinkEmail, Any], Awaitable[None] | None]


def magic_link_sender(
    mailer: Mailer, app_name: str = "Bastion"
) -> Callable[[MagicLinkEmail, Any], Awaitable[None]]:
    """A `send_magic_link` callback that mails the link with `mailer`."""

    async def send(data: MagicLinkEmail, request: Any = None) -> None:
        await compose(
            mailer,
            data.email,
            f"Sign in to {app_name}",
            [
                "Hello,",
                f"To sign in to {app_name}, open this link. It works once, for a few minutes:",
                data.url,
                "If you did not ask for it, you can ignore this email.",
                app_name,
            ],
        )

    return send


class SignInMagicLinkBody(Body):
    email: Email
    name: str | None = None
    callback_url: str | None = PydanticField(None, alias="callbackURL")
    new_user_callback_url: str | None = PydanticField(None, alias="newUserCallbackURL")
    error_callback_url: str | None = PydanticField(None, alias="errorCallbackURL")
    metadata: dict[str, Any] | None = None


class VerifyQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    token: str
    callback_url: str | None = PydanticField(None, alias="callbackURL")
    error_callback_url: str | None = PydanticField(None, alias="errorCallbackURL")
    new_user_callback_url: str | None = PydanticField(None, alias="newUserCallbackURL")


def _identifier(stored: str) -> str:
    return f"magic-link:{stored}"


def _record(value: str) -> dict[str, Any] | None:
    """The stored `{type: "magic-link", email, name?}`, checked as strictly as 1.7.25 does."""
    try:
        record = json.loads(value)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("type") != "magic-link":
        return None
    if set(record) - {"type", "email", "name"}:
        return None
    email, name = record.get("email"), record.get("name")
    if not isinstance(email, str) or not is_email(email):
        return None
    if name is not None and not isinstance(name, str):
        return None
    return record


async def _query_urls(ctx: Ctx[Any]) -> None:
    """The three URLs of the link must be trusted (relative paths are). better-auth checks
    each with the callbackURL check: all three answer 403 INVALID_CALLBACK_URL."""
    if ctx.request is None or ctx.options.advanced.disable_origin_check:
        return
    trusted = await ctx.trusted_origins()
    for name in ("callbackURL", "newUserCallbackURL", "errorCallbackURL"):
        url = ctx.query.get(name)
        if url and not trusted.is_trusted(url, allow_relative=True):
            raise APIError(403, Code.INVALID_CALLBACK_URL)


def magic_link(
    *,
    send_magic_link: MagicLinkSender,
    expires_in: int = 300,
    disable_sign_up: bool = False,
    store_token: Literal["plain", "hashed"] | Mapping[str, Any] = "plain",
    generate_token: Callable[[str], str | Awaitable[str]] | None = None,
    rate_limit: Mapping[str, int] | None = None,
    invalidate_on_password_change: bool = False,
) -> Plugin:
    """better-auth's `magicLink()`. `send_magic_link(MagicLinkEmail, request)`, sync or
    async (`magic_link_sender(mailer)` makes one). `store_token`: "plain", "hashed"
    (SHA-256, base64url) or `{"type": "custom-hasher", "hash": fn}`. `generate_token(email)`
    replaces the random token. `rate_limit`: `{"window": 60, "max": 5}` per IP on both
    paths."""
    if expires_in <= 0:
        raise ValueError("expires_in must be positive")
    rule = RateRule(
        window=(rate_limit or {}).get("window") or 60, max=(rate_limit or {}).get("max") or 5
    )

    async def stored(token: str) -> str:
        if store_token == "hashed":
            return sha256_base64url(token)
        if isinstance(store_token, Mapping) and store_token.get("type") == "custom-hasher":
            return str(await call_user(store_token["hash"], token))
        return token

    async def sign_in_magic_link(ctx: Ctx[SignInMagicLinkBody]) -> dict[str, Any]:
        body = ctx.body
        await throttle_account(ctx, body.email)
        if generate_token is not None:
            token = str(await call_user(generate_token, body.email))
        else:
            token = random_string(32, LETTERS)
        record: dict[str, Any] = {"type": "magic-link", "email": body.email}
        if body.name is not None:
            record["name"] = body.name
        identifier = _identifier(await stored(token))
        value = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        await ctx.context.store.create_verification(identifier, value, expires_in)
        query = [("token", token), ("callbackURL", body.callback_url or "/")]
        if body.new_user_callback_url:
            query.append(("newUserCallbackURL", body.new_user_callback_url))
        if body.error_callback_url:
            query.append(("errorCallbackURL", body.error_callback_url))
        url = f"{ctx.base_url}/magic-link/verify?{form_encode(query)}"
        data = MagicLinkEmail(email=body.email, url=url, token=token, metadata=body.metadata)
        try:
            await call_user(send_magic_link, data, ctx.request)
        except Exception as exc:
            # better-auth answers a 500; the link is dropped and the client told to retry.
            await ctx.context.store.delete_verification(identifier)
            raise APIError(502, MailCode.FAILED_TO_SEND_EMAIL) from exc
        return {"status": True}

    async def magic_link_verify(ctx: Ctx[Any]) -> dict[str, Any]:
        query, store = ctx.query, ctx.context.store
        callback = js_url(query.get("callbackURL") or "/", ctx.base_url)
        on_error = js_url(query.get("errorCallbackURL") or callback, ctx.base_url)
        new_user = js_url(query.get("newUserCallbackURL") or callback, ctx.base_url)

        def fail(error: str, description: str | None = None) -> Redirect:
            values = {"error": error}
            if description:
                values["error_description"] = description
            return Redirect(with_query(on_error, values))

        identifier = _identifier(await stored(query["token"]))
        pending = await store.find_verification(identifier, include_expired=True)
        if pending is None or _record(pending["value"]) is None:
            raise fail("INVALID_TOKEN")
        row = await store.consume_verification(identifier)  # None when expired
        record = _record(row["value"]) if row is not None else None
        if row is None or record is None:
            raise fail("INVALID_TOKEN")
        email = record["email"].lower()
        user = await store.find_user_by_email(email)
        is_new = False
        if user is None:
            if disable_sign_up:
                raise fail("new_user_signup_disabled")
            try:
                user = await store.create_user(
                    {"email": email, "emailVerified": True, "name": record.get("name") or ""}
                )
            except APIError as exc:
                if exc.code is None:
                    raise
                raise fail(exc.code.name, exc.message) from None
            is_new = True
        elif invalidate_on_password_change and await _password_changed_since(ctx, user, row):
            raise fail("INVALID_TOKEN")
        if not user["emailVerified"]:
            user = await revoke_unproven_account_access(ctx, user)
            if user is None:
                raise fail("user_not_found")
        session = await complete_sign_in(ctx, user)
        if not query.get("callbackURL"):
            return {
                "token": session["token"],
                "user": user_out(ctx, user),
                "session": session_out(ctx, session),
            }
        raise Redirect(new_user if is_new else callback)

    return Plugin(
        id="magic-link",
        endpoints=(
            Endpoint(
                "/sign-in/magic-link",
                ("POST",),
                sign_in_magic_link,
                name="sign_in_magic_link",
                body=SignInMagicLinkBody,
                use=(form_csrf,),
                tags=("magic-link",),
                rate_limit=rule,
                operation_id="signInWithMagicLink",
            ),
            Endpoint(
                "/magic-link/verify",
                ("GET",),
                magic_link_verify,
                name="magic_link_verify",
                query=VerifyQuery,
                use=(_query_urls,),
                tags=("sign-in",),
                rate_limit=rule,
                operation_id="verifyMagicLink",
            ),
        ),
    )


async def _password_changed_since(ctx: Ctx[Any], user: Mapping[str, Any], row: Any) -> bool:
    account = await ctx.context.store.find_credential_account(user["id"])
    return account is not None and account["updatedAt"] > row["createdAt"]
