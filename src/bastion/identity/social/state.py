"""The OAuth `state` of a redirect flow, as better-auth 1.7.25 keeps it (S19).

A random 32-character state names what the callback needs: where to go after, the PKCE
verifier, the ID token's nonce, the account to link. None of it leaves the server, and
the state works once, for ten minutes, in the browser that started the flow:

* "database" (the default): a verification row `auth-state:<state>` holds the data as
  JSON, and the signed cookie `<prefix>.state` (5 minutes) holds the state itself. The
  callback requires both, deletes the row and expires the cookie.
* "cookie": the data, with the state, encrypted into the cookie `<prefix>.oauth_state`
  (10 minutes) with a key derived for that purpose alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..cookies import sign_cookie_value
from ..crypto import URL_SAFE, random_string
from ..endpoint import Ctx
from ..sessions import auth_cookie, cookie_attributes, expire_auth_cookie
from ..symmetric import DecryptionFailed, decrypt, encrypt, purpose_key

__all__ = ["StateError", "begin", "finish"]

STATE_LIFETIME = 600  # seconds
_STATE_COOKIE_AGE = 300
_IDENTIFIER = "auth-state:"
_COOKIE_PURPOSE = "oauth-state-cookie"


class StateError(Exception):
    """The callback's state is missing, unknown, expired or not this browser's. `code` is
    the redirect error; `error_url` the flow's own error page once the state was read."""

    def __init__(self, code: str, error_url: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.error_url = error_url


@dataclass(frozen=True, slots=True)
class Started:
    state: str
    code_verifier: str


# What the flow itself keeps in a state. A client's `additionalData` rides along, but never
# under these names: better-auth assigns every one of them after spreading it.
INTERNAL_KEYS = frozenset(
    {
        "callbackURL",
        "codeVerifier",
        "errorURL",
        "newUserURL",
        "link",
        "serverContext",
        "expiresAt",
        "requestSignUp",
        "idTokenNonce",
        "oauthState",
    }
)


async def begin(
    ctx: Ctx[Any], flow: dict[str, Any], additional_data: dict[str, Any] | None = None
) -> Started:
    """Make a state for `flow` (callbackURL, errorURL, link, …; None values left out) and a
    client's `additional_data`, keep it as configured and set its cookie. The PKCE verifier
    is made here: 128 characters, as better-auth's."""
    unknown = set(flow) - INTERNAL_KEYS
    if unknown:
        raise ValueError(f"not a state field: {sorted(unknown)}")
    context = ctx.context
    code_verifier = random_string(128, URL_SAFE)
    state = random_string(32, URL_SAFE)
    now_ms = int(context.now().timestamp() * 1000)
    payload = {
        **{k: v for k, v in (additional_data or {}).items() if k not in INTERNAL_KEYS},
        **{k: v for k, v in flow.items() if v is not None},
        "codeVerifier": code_verifier,
        "expiresAt": now_ms + STATE_LIFETIME * 1000,
        "oauthState": state,
    }
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if ctx.options.account.store_state_strategy == "cookie":
        sealed = encrypt(purpose_key(context.secret, _COOKIE_PURPOSE), text)
        ctx.set_cookie(
            auth_cookie(ctx, "oauth_state"), sealed, cookie_attributes(ctx, STATE_LIFETIME)
        )
    else:
        await context.store.create_verification(_IDENTIFIER + state, text, STATE_LIFETIME)
        ctx.set_cookie(
            auth_cookie(ctx, "state"),
            sign_cookie_value(context.secret, state),
            cookie_attributes(ctx, _STATE_COOKIE_AGE),
        )
    return Started(state, code_verifier)


async def finish(ctx: Ctx[Any], state: str) -> dict[str, Any]:
    """The data of `state`, consumed: it cannot be used again. StateError when it is
    unknown, expired, or arrives without the cookie of the browser that started it."""
    context = ctx.context
    if ctx.options.account.store_state_strategy == "cookie":
        name = auth_cookie(ctx, "oauth_state")
        sealed = ctx.cookies.get(name)
        if not sealed:
            raise StateError("state_mismatch")
        try:
            data = _object(decrypt(purpose_key(context.secret, _COOKIE_PURPOSE), sealed))
        except (DecryptionFailed, ValueError):
            raise StateError("state_invalid") from None
        if data.get("oauthState") != state:
            raise StateError("state_mismatch", _error_url(data))
        expire_auth_cookie(ctx, name)
    else:
        row = await context.store.consume_verification(_IDENTIFIER + state)
        if row is None:
            raise StateError("state_mismatch")
        try:
            data = _object(row["value"])
        except ValueError:
            raise StateError("state_invalid") from None
        if data.get("oauthState", state) != state:
            raise StateError("state_mismatch", _error_url(data))
        name = auth_cookie(ctx, "state")
        cookie = ctx.cookies.get(name)
        bound = cookie is not None and context.session_cookies.unsign(cookie) == state
        if not bound and not ctx.options.account.skip_state_cookie_check:
            raise StateError("state_mismatch", _error_url(data))
        expire_auth_cookie(ctx, name)
    expires_at = data.get("expiresAt")
    now_ms = context.now().timestamp() * 1000
    if not isinstance(expires_at, int | float) or expires_at < now_ms:
        raise StateError("state_mismatch", _error_url(data))
    if not isinstance(data.get("callbackURL"), str) or not isinstance(
        data.get("codeVerifier"), str
    ):
        raise StateError("state_invalid", _error_url(data))
    return data


def _object(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the state is not an object")
    return data


def _error_url(data: dict[str, Any]) -> str | None:
    url = data.get("errorURL")
    return url if isinstance(url, str) and url else None
