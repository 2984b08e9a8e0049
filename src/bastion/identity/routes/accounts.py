"""A user's accounts (spec §3, better-auth 1.7.25's account routes): GET /list-accounts,
POST /unlink-account, POST /refresh-token, POST /get-access-token, GET /account-info.

Tokens leave the server only through refresh-token and get-access-token, to the session's
own user; list-accounts shows the accounts without them (`returned=False` columns).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr, model_validator
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from ..endpoint import Ctx, Endpoint
from ..errors import APIError, Code
from ..sessions import fresh_session, resolve_session, session_required
from ..social.client import ProviderError, Tokens
from ..social.provider import SocialProvider
from ..validation import Body
from .oauth_users import read_token, stored_token

__all__ = ["ENDPOINTS"]

logger = logging.getLogger("bastion.identity")


def _scopes(scope: str | None) -> list[str]:
    return [s.strip() for s in (scope or "").split(",") if s.strip()]


def _public(ctx: Ctx[Any], account: dict[str, Any]) -> dict[str, Any]:
    row = ctx.context.public_row("account", account)
    scope = row.pop("scope", None)
    return {**row, "scopes": _scopes(scope)}


async def list_accounts(ctx: Ctx[Any]) -> list[dict[str, Any]]:
    assert ctx.session is not None
    accounts = await ctx.context.store.list_accounts(ctx.session[1]["id"])
    return [_public(ctx, account) for account in accounts]


class UnlinkBody(Body):
    account_id: StrictStr = PydanticField(alias="accountId")


async def unlink_account(ctx: Ctx[UnlinkBody]) -> dict[str, Any]:
    assert ctx.session is not None
    store = ctx.context.store
    accounts = await store.list_accounts(ctx.session[1]["id"])
    if len(accounts) == 1 and not ctx.options.account.account_linking.allow_unlinking_all:
        raise APIError(400, Code.FAILED_TO_UNLINK_LAST_ACCOUNT)
    account = next((a for a in accounts if a["id"] == ctx.body.account_id), None)
    if account is None:
        raise APIError(400, Code.ACCOUNT_NOT_FOUND)
    await store.delete_account(account["id"])
    return {"status": True}


def _selection_problem(data: Mapping[str, Any]) -> str | None:
    """better-auth 1.7.25's `accountSelectionSchema`, a union of two strict objects,
    `{accountId: string, userId?: string}` | `{useAccountCookie: true, userId?: string}`:
    None when `data` is one of them, else zod's message for the union. Unknown keys alone
    do not rule a branch out: when they spoil the only branch left, zod names them."""
    user_ok = "userId" not in data or isinstance(data["userId"], str)
    spoilt: list[list[str]] = []
    for key, ok in (
        ("accountId", isinstance(data.get("accountId"), str)),
        ("useAccountCookie", data.get("useAccountCookie") is True),
    ):
        if not (ok and user_ok):
            continue
        unknown = [name for name in data if name not in (key, "userId")]
        if not unknown:
            return None
        spoilt.append(unknown)
    if len(spoilt) == 1:
        keys = spoilt[0]
        plural = "s" if len(keys) > 1 else ""
        return f"Unrecognized key{plural}: " + ", ".join(f'"{name}"' for name in keys)
    return "Invalid input"


def _check_selection(data: Any) -> Any:
    if isinstance(data, Mapping):
        problem = _selection_problem(data)
        if problem is not None:
            raise PydanticCustomError("invalid_union", "{problem}", {"problem": problem})
    return data


class AccountSelection(Body):
    """Which account: its local id (`accountId`), or the signed account cookie
    (`useAccountCookie: true`, which Bastion does not set: always ACCOUNT_NOT_FOUND)."""

    expects = ()  # a union of objects: zod says "[body] Invalid input"

    account_id: StrictStr | None = PydanticField(None, alias="accountId")
    use_account_cookie: bool | None = PydanticField(None, alias="useAccountCookie")
    user_id: StrictStr | None = PydanticField(None, alias="userId")

    @model_validator(mode="before")
    @classmethod
    def _one_selection(cls, data: Any) -> Any:
        return _check_selection(data)


class AccountQuery(BaseModel):
    """account-info's query: the same union (over HTTP only `?accountId=` can match it)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    account_id: StrictStr | None = PydanticField(None, alias="accountId")
    user_id: StrictStr | None = PydanticField(None, alias="userId")

    @model_validator(mode="before")
    @classmethod
    def _one_selection(cls, data: Any) -> Any:
        return _check_selection(data)


async def _user_id(ctx: Ctx[Any], given: str | None) -> str:
    """The session's user; a server-side call (`identity.api`, no request) may name one."""
    found = await resolve_session(ctx, disable_cookie_cache=True)
    if found is not None:
        return str(found[1]["id"])
    if ctx.request is not None or ctx.headers:
        raise APIError(401)  # an empty body, as better-auth's ctx.error("UNAUTHORIZED")
    if not given:
        raise APIError(400, Code.USER_ID_OR_SESSION_REQUIRED)
    return given


async def _account(ctx: Ctx[Any], user_id: str, account_id: str | None) -> dict[str, Any]:
    """The user's account by its local id."""
    for account in await ctx.context.store.list_accounts(user_id):
        if account_id is not None and account["id"] == account_id:
            return account
    raise APIError(400, Code.ACCOUNT_NOT_FOUND)


def _provider(ctx: Ctx[Any], account: dict[str, Any], code: Code) -> SocialProvider:
    provider = ctx.context.social_providers.get(account["providerId"])
    if provider is None:
        message = (
            f"Provider {account['providerId']} is not supported."
            if code is Code.PROVIDER_NOT_SUPPORTED
            else None
        )
        raise APIError(400, code, message)
    return provider


async def _refreshed(
    ctx: Ctx[Any], provider: SocialProvider, account: dict[str, Any], refresh_token: str
) -> tuple[Tokens, dict[str, Any]]:
    """New tokens from the provider, stored on the account (the refresh token kept when the
    provider sends none)."""
    tokens = await ctx.context.oauth.refresh(provider, refresh_token, ctx.context.now())
    values: dict[str, Any] = {
        "accessToken": stored_token(ctx, tokens.access_token),
        "accessTokenExpiresAt": tokens.access_token_expires_at,
        "refreshToken": stored_token(ctx, tokens.refresh_token)
        if tokens.refresh_token
        else account.get("refreshToken"),
        "refreshTokenExpiresAt": tokens.refresh_token_expires_at
        or account.get("refreshTokenExpiresAt"),
        "idToken": tokens.id_token or account.get("idToken"),
    }
    updated = await ctx.context.store.update_account(account["id"], values)
    return tokens, updated or {**account, **values}


async def refresh_token(ctx: Ctx[AccountSelection]) -> dict[str, Any]:
    body = ctx.body
    user_id = await _user_id(ctx, body.user_id)
    account = await _account(ctx, user_id, body.account_id)
    provider = _provider(ctx, account, Code.PROVIDER_NOT_SUPPORTED)
    stored = account.get("refreshToken")
    if not stored:
        raise APIError(400, Code.REFRESH_TOKEN_NOT_FOUND)
    current = read_token(ctx, stored)
    if current is None:
        raise APIError(400, Code.FAILED_TO_REFRESH_ACCESS_TOKEN)
    try:
        tokens, updated = await _refreshed(ctx, provider, account, current)
    except ProviderError as error:
        logger.warning("refresh-token with %s: %s", provider.id, error.detail)
        raise APIError(400, Code.FAILED_TO_REFRESH_ACCESS_TOKEN) from None
    return {
        "accessToken": tokens.access_token,
        "refreshToken": tokens.refresh_token or current,
        "accessTokenExpiresAt": tokens.access_token_expires_at,
        "refreshTokenExpiresAt": updated.get("refreshTokenExpiresAt"),
        "scope": updated.get("scope"),
        "idToken": updated.get("idToken"),
        "providerId": account["providerId"],
        "accountId": account["id"],
    }


async def _valid_access_token(
    ctx: Ctx[Any], provider: SocialProvider, account: dict[str, Any]
) -> dict[str, Any]:
    """The account's access token, refreshed first when it expires within 5 seconds."""
    expires: datetime | None = account.get("accessTokenExpiresAt")
    stored_refresh = account.get("refreshToken")
    try:
        if (
            stored_refresh
            and expires is not None
            and expires - ctx.context.now() < timedelta(seconds=5)
        ):
            current = read_token(ctx, stored_refresh)
            if current is None:
                raise APIError(400, Code.FAILED_TO_GET_ACCESS_TOKEN)
            tokens, updated = await _refreshed(ctx, provider, account, current)
            return {
                "accessToken": tokens.access_token,
                "accessTokenExpiresAt": tokens.access_token_expires_at or expires,
                "scopes": _scopes(account.get("scope")),
                "idToken": updated.get("idToken"),
            }
    except ProviderError as error:
        logger.warning("get-access-token with %s: %s", provider.id, error.detail)
        raise APIError(400, Code.FAILED_TO_GET_ACCESS_TOKEN) from None
    stored = account.get("accessToken")
    access_token = read_token(ctx, stored)
    if stored and access_token is None:  # not this secret's: better-auth's decrypt throws
        raise APIError(400, Code.FAILED_TO_GET_ACCESS_TOKEN)
    answer = {
        "accessToken": access_token or "",
        "accessTokenExpiresAt": expires,
        "scopes": _scopes(account.get("scope")),
        "idToken": account.get("idToken"),
    }
    return {k: v for k, v in answer.items() if v is not None}


async def get_access_token(ctx: Ctx[AccountSelection]) -> dict[str, Any]:
    body = ctx.body
    user_id = await _user_id(ctx, body.user_id)
    account = await _account(ctx, user_id, body.account_id)
    provider = _provider(ctx, account, Code.PROVIDER_NOT_SUPPORTED)
    return await _valid_access_token(ctx, provider, account)


async def account_info(ctx: Ctx[Any]) -> dict[str, Any]:
    query = ctx.query
    user_id = await _user_id(ctx, query.get("userId"))
    account = await _account(ctx, user_id, query.get("accountId"))
    provider = _provider(ctx, account, Code.PROVIDER_NOT_CONFIGURED)
    tokens = await _valid_access_token(ctx, provider, account)
    if not tokens.get("accessToken"):
        raise APIError(400, Code.ACCESS_TOKEN_NOT_FOUND)
    client = ctx.context.oauth
    try:
        profile = await client.profile(
            provider,
            Tokens(access_token=tokens["accessToken"], id_token=tokens.get("idToken")),
            nonce=None,
            stored_id_token=True,
        )
    except ProviderError as error:
        logger.warning("account-info with %s: %s", provider.id, error.detail)
        raise APIError(401, Code.FAILED_TO_GET_USER_INFO) from None
    return {
        "user": profile.user,
        "data": dict(profile.raw),
        "account": {
            "id": account["id"],
            "providerId": account["providerId"],
            "accountId": account["accountId"],
        },
    }


ENDPOINTS = (
    Endpoint(
        "/list-accounts",
        ("GET",),
        list_accounts,
        name="list_user_accounts",
        use=(session_required,),
        operation_id="listUserAccounts",
    ),
    Endpoint(
        "/unlink-account",
        ("POST",),
        unlink_account,
        name="unlink_account",
        body=UnlinkBody,
        use=(fresh_session,),
    ),
    Endpoint(
        "/refresh-token", ("POST",), refresh_token, name="refresh_token", body=AccountSelection
    ),
    Endpoint(
        "/get-access-token",
        ("POST",),
        get_access_token,
        name="get_access_token",
        body=AccountSelection,
    ),
    Endpoint("/account-info", ("GET",), account_info, name="account_info", query=AccountQuery),
)
