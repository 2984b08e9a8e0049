"""better-auth's `username` plugin (1.7.25): sign in with a username, and `username` /
`displayUsername` on the user.

    Identity(email_and_password={"enabled": True}, plugins=[username()])

`POST /sign-in/username` answers as `/sign-in/email` does; `POST /is-username-available`
says whether a name is free. Sign-up and update-user take `username` and `displayUsername`:
the username is stored normalised (lower-cased by default) and unique, `displayUsername`
keeps the casing the user typed (at sign-up it defaults to the username as given, and a
sign-up with only a valid `displayUsername` takes it as the username too).

S7: an unknown username, a user without a password and a wrong password all answer the
same 401 INVALID_USERNAME_OR_PASSWORD after one password hash. S5: on top of the per-IP
rule (10 s / 3, as every /sign-in path), failures are counted per username and client
address (`guard_account`), as `/sign-in/email` counts them per address.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from pydantic import Field as PydanticField

from ..db import Field, TableSpec, eq
from ..endpoint import Ctx, Endpoint
from ..errors import APIError, ErrorCode
from ..ratelimit import CREDENTIAL_RULE
from ..routes.common import (
    check_password_not_too_long,
    guard_account,
    send_verification_email,
    user_out,
)
from ..sessions import complete_sign_in, resolve_session
from ..validation import Body
from . import EndpointHook, Plugin

__all__ = ["USERNAME_SCHEMA", "UsernameCode", "username"]


class UsernameCode(ErrorCode):
    """better-auth 1.7.25's USERNAME_ERROR_CODES."""

    INVALID_USERNAME_OR_PASSWORD = "Invalid username or password"
    EMAIL_NOT_VERIFIED = "Email not verified"
    UNEXPECTED_ERROR = "Unexpected error"
    USERNAME_IS_ALREADY_TAKEN = "Username is already taken. Please try another."
    USERNAME_TOO_SHORT = "Username is too short"
    USERNAME_TOO_LONG = "Username is too long"
    INVALID_USERNAME = "Username is invalid"
    INVALID_DISPLAY_USERNAME = "Display username is invalid"
    USERNAME_IS_IMMUTABLE = "Username cannot be updated"


USERNAME_SCHEMA = {
    "user": TableSpec(
        fields={
            "username": Field(type="string", required=False, unique=True, sortable=True),
            "displayUsername": Field(type="string", required=False),
        }
    )
}
"""The columns better-auth's migrator adds (`better-auth-ddl-plugins.sql`)."""

Validator = Callable[[str], bool | Awaitable[bool]]
Normalizer = Callable[[str], str]
Order = Literal["pre-normalization", "post-normalization"]

_DEFAULT_PATTERN = re.compile(r"[a-zA-Z0-9_.]+")


def _default_validator(name: str) -> bool:
    return _DEFAULT_PATTERN.fullmatch(name) is not None


async def _check(validator: Validator, value: str) -> bool:
    result = validator(value)
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


class SignInUsernameBody(Body):
    username: str
    password: str
    remember_me: bool | None = PydanticField(None, alias="rememberMe")
    callback_url: str | None = PydanticField(None, alias="callbackURL")


class UsernameBody(Body):
    username: str


def username(
    *,
    min_username_length: int = 3,
    max_username_length: int = 30,
    username_validator: Validator | None = None,
    display_username_validator: Validator | None = None,
    username_normalization: Normalizer | Literal[False] | None = None,
    display_username_normalization: Normalizer | None = None,
    validation_order: Mapping[str, Order] | None = None,
    immutable_username: bool = False,
    display_username: bool = True,
) -> Plugin:
    """better-auth's `username()`. `username_validator(name) -> bool` (sync or async)
    replaces the default `^[a-zA-Z0-9_.]+$`; `username_normalization` replaces lower-casing
    (False keeps names as typed); `validation_order={"username": "post-normalization"}`
    validates the normalised name instead of the typed one (likewise `"displayUsername"`);
    `immutable_username` refuses to change a username once set; `display_username=False`
    leaves out the `displayUsername` column."""
    min_length = min_username_length or 3
    max_length = max_username_length or 30
    validator = username_validator or _default_validator
    order = dict(validation_order or {})

    def normalize(name: str) -> str:
        if username_normalization is False:
            return name
        if username_normalization is not None:
            return username_normalization(name)
        return name.lower()

    def normalize_display(name: str) -> str:
        return display_username_normalization(name) if display_username_normalization else name

    async def problem(name: str) -> UsernameCode | None:
        """What is wrong with `name` as a username, before any lookup."""
        checked = normalize(name) if order.get("username") == "post-normalization" else name
        if len(checked) < min_length:
            return UsernameCode.USERNAME_TOO_SHORT
        if len(checked) > max_length:
            return UsernameCode.USERNAME_TOO_LONG
        if not await _check(validator, checked):
            return UsernameCode.INVALID_USERNAME
        return None

    async def find_by_username(ctx: Ctx[Any], name: str) -> dict[str, Any] | None:
        return await ctx.context.store.db.find_one("user", eq("username", normalize(name)))

    # -- endpoints -----------------------------------------------------------------------

    async def sign_in_username(ctx: Ctx[SignInUsernameBody]) -> dict[str, Any]:
        body, context = ctx.body, ctx.context
        if not body.username or not body.password:
            raise APIError(401, UsernameCode.INVALID_USERNAME_OR_PASSWORD)
        wrong = await problem(body.username)
        if wrong is not None:
            raise APIError(422, wrong)
        check_password_not_too_long(ctx, body.password)
        attempt = await guard_account(ctx, f"username:{normalize(body.username)}")
        user = await find_by_username(ctx, body.username)
        account = await context.store.find_credential_account(user["id"]) if user else None
        if user is None or account is None or not account.get("password"):
            # better-auth hashes for an unknown name only; the same cost for all three (S7).
            await context.hasher.dummy_verify(body.password)
            await attempt.count()
            raise APIError(401, UsernameCode.INVALID_USERNAME_OR_PASSWORD)
        if not await context.hasher.verify(account["password"], body.password):
            await attempt.count()
            raise APIError(401, UsernameCode.INVALID_USERNAME_OR_PASSWORD)
        if ctx.options.email_and_password.require_email_verification and not user["emailVerified"]:
            verification = ctx.options.email_verification
            if verification.send_verification_email is not None and verification.send_on_sign_in:
                await send_verification_email(ctx, user, body.callback_url)
            raise APIError(403, UsernameCode.EMAIL_NOT_VERIFIED)
        await attempt.remember_client()
        session = await complete_sign_in(ctx, user, dont_remember=body.remember_me is False)
        result: dict[str, Any] = {"redirect": bool(body.callback_url), "token": session["token"]}
        if body.callback_url:
            ctx.response_headers["location"] = body.callback_url
            result["url"] = body.callback_url
        result["user"] = user_out(ctx, user)
        return result

    async def is_username_available(ctx: Ctx[UsernameBody]) -> dict[str, Any]:
        name = ctx.body.username
        if not name:
            raise APIError(422, UsernameCode.INVALID_USERNAME)
        wrong = await problem(name)
        if wrong is not None:
            raise APIError(422, wrong)
        return {"available": await find_by_username(ctx, name) is None}

    # -- sign-up and update-user ---------------------------------------------------------

    async def before_sign_up_or_update(ctx: Ctx[Any]) -> None:
        raw = ctx.raw_body
        if not isinstance(raw, dict):
            return None  # the body's own validation answers
        sign_up = ctx.endpoint.path == "/sign-up/email"
        display = raw.get("displayUsername")
        # A sign-up with only a display name takes it as the username when it is valid.
        if sign_up and isinstance(display, str) and "username" not in raw:  # noqa: SIM102
            if await problem(display) is None:
                raw["username"] = display
        name = raw.get("username")
        if isinstance(name, str):
            wrong = await problem(name)
            if wrong is not None:
                raise APIError(400, wrong)
            normalized = normalize(name)
            session = None
            if not sign_up:
                session = await resolve_session(ctx, disable_refresh=True)
            if not sign_up and immutable_username and session is not None:
                current = session[1].get("username")
                if current and current != normalized:
                    raise APIError(400, UsernameCode.USERNAME_IS_IMMUTABLE)
            taken = await ctx.context.store.db.find_one("user", eq("username", normalized))
            if taken is not None and (session is None or taken["id"] != session[1]["id"]):
                raise APIError(400, UsernameCode.USERNAME_IS_ALREADY_TAKEN)
        if display_username:
            display = raw.get("displayUsername")
            if isinstance(display, str) and order.get("displayUsername") == "post-normalization":
                display = normalize_display(display)
            if (
                isinstance(display, str)
                and display_username_validator is not None
                and not await _check(display_username_validator, display)
            ):
                raise APIError(400, UsernameCode.INVALID_DISPLAY_USERNAME)
            if sign_up and raw.get("username") and not raw.get("displayUsername"):
                raw["displayUsername"] = raw["username"]
        return None

    async def on_create(user: dict[str, Any], _: Any) -> dict[str, Any] | None:
        name = user.get("username")
        display = user.get("displayUsername")
        data: dict[str, Any] = {}
        if isinstance(name, str) and name:
            data["username"] = normalize(name)
            if display_username:
                data["displayUsername"] = normalize_display(display) if display else name
        elif display_username and isinstance(display, str) and display:
            data["displayUsername"] = normalize_display(display)
        return {"data": data} if data else None

    async def on_update(user: dict[str, Any], _: Any) -> dict[str, Any] | None:
        name = user.get("username")
        display = user.get("displayUsername")
        data: dict[str, Any] = {}
        if isinstance(name, str) and name:
            data["username"] = normalize(name)
        if display_username and isinstance(display, str) and display:
            data["displayUsername"] = normalize_display(display)
        return {"data": data} if data else None

    schema = USERNAME_SCHEMA
    if not display_username:
        fields = {"username": USERNAME_SCHEMA["user"].fields["username"]}
        schema = {"user": TableSpec(fields=fields)}

    return Plugin(
        id="username",
        endpoints=(
            Endpoint(
                "/sign-in/username",
                ("POST",),
                sign_in_username,
                name="sign_in_username",
                body=SignInUsernameBody,
                tags=("sign-in",),
                rate_limit=CREDENTIAL_RULE,  # better-auth's rule for every /sign-in path
            ),
            Endpoint(
                "/is-username-available",
                ("POST",),
                is_username_available,
                name="is_username_available",
                body=UsernameBody,
            ),
        ),
        schema=schema,
        before=(
            EndpointHook(
                lambda e: e.path in ("/sign-up/email", "/update-user"), before_sign_up_or_update
            ),
        ),
        error_codes=UsernameCode,
        database_hooks={"user": {"create": {"before": on_create}, "update": {"before": on_update}}},
    )
