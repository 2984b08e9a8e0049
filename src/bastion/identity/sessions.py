"""Session cookies and the get-session algorithm (spec §5.3), and the guards built on it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ._session_cookies import CachedSession
from .cookies import (
    CookieAttributes,
    chunk_cookie,
    cookie_name,
    encode_cookie_cache,
    join_chunks,
    serialize_cookie,
    sign_cookie_value,
)
from .endpoint import Ctx, SignInAnswered
from .errors import APIError, Code
from .store import SessionWithUser, Store, to_json_row

__all__ = [
    "auth_cookie",
    "clear_session_cookies",
    "complete_sign_in",
    "cookie_attributes",
    "create_session_for",
    "expire_auth_cookie",
    "fresh_session",
    "remembered",
    "resolve_session",
    "sensitive_session",
    "session_required",
    "session_token_from_cookie",
    "set_session_cookie",
    "start_session",
]


def _names(ctx: Ctx[Any]) -> tuple[str, str, str]:
    return ctx.context.session_cookies.names


def cookie_attributes(ctx: Ctx[Any], max_age: int | None) -> CookieAttributes:
    """The attributes of the Identity's own cookies (better-auth's `createAuthCookie`)."""
    return CookieAttributes(
        max_age=max_age,
        secure=ctx.context.secure_cookies,
        domain=ctx.options.advanced.cookie_domain,
    )


_attributes = cookie_attributes


def auth_cookie(ctx: Ctx[Any], name: str) -> str:
    """The full name of the Identity's cookie `name`: `<prefix>.<name>`, `__Secure-` first
    when the cookies are secure."""
    return cookie_name(ctx.options.advanced.cookie_prefix, name, ctx.context.secure_cookies)


def expire_auth_cookie(ctx: Ctx[Any], name: str) -> None:
    """Expire the cookie `name` (a full name), dropping what this response set for it."""
    _expire(ctx, name)


def set_session_cookie(
    ctx: Ctx[Any], session: dict[str, Any], user: dict[str, Any], *, dont_remember: bool = False
) -> None:
    """Set the signed session_token cookie (and dont_remember, and the cookie cache)."""
    token_name, _, remember_name = _names(ctx)
    secret = ctx.context.secret
    max_age = None if dont_remember else ctx.options.session.expires_in
    ctx.set_cookie(
        token_name, sign_cookie_value(secret, session["token"]), _attributes(ctx, max_age)
    )
    if dont_remember:
        ctx.set_cookie(remember_name, sign_cookie_value(secret, "true"), _attributes(ctx, None))
    elif remember_name in ctx.cookies:
        # A remembered session now: a dont_remember cookie left from an earlier sign-in would
        # stop every refresh of this one.
        _expire(ctx, remember_name)
    _write_cookie_cache(ctx, session, user, dont_remember=dont_remember)
    ctx.new_session = (session, user)


def _write_cookie_cache(
    ctx: Ctx[Any], session: dict[str, Any], user: dict[str, Any], *, dont_remember: bool
) -> None:
    cache = ctx.options.session.cookie_cache
    if not cache.enabled:
        return
    _, data_name, _ = _names(ctx)
    now_ms = int(ctx.context.now().timestamp() * 1000)
    value = encode_cookie_cache(
        ctx.context.secret,
        to_json_row(ctx.context.public_row("session", session)),
        to_json_row(ctx.context.public_row("user", user)),
        _DONT_REMEMBER_CACHE_AGE if dont_remember else cache.max_age,
        now_ms,
    )
    attrs = _attributes(ctx, None if dont_remember else cache.max_age)
    # Each whole Set-Cookie line within _COOKIE_BYTES, as better-auth sizes its chunks.
    room = _COOKIE_BYTES - len(serialize_cookie(f"{data_name}.99", "", attrs))
    try:
        parts = chunk_cookie(data_name, value, room)
    except ValueError:  # over 100 chunks: no cache (better-auth skips it too)
        parts = []
    written = {name for name, _ in parts}
    for name in _data_cookies(ctx, data_name):
        if name not in written:  # chunks of a longer value, or the whole of a chunked one
            _expire(ctx, name)
    for name, part in parts:
        ctx.set_cookie(name, part, attrs)


_DONT_REMEMBER_CACHE_AGE = 60  # better-auth's cache lifetime when the cookie has no Max-Age
_COOKIE_BYTES = 4050  # better-auth's ceiling for one cookie; Safari keeps about 4093 (S18)


def _data_cookies(ctx: Ctx[Any], data_name: str) -> list[str]:
    """The request's session_data cookie and its `session_data.<n>` chunks."""
    prefix = data_name + "."
    return [
        name
        for name in ctx.cookies
        if name == data_name or (name.startswith(prefix) and name[len(prefix) :].isdigit())
    ]


def _expire(ctx: Ctx[Any], name: str) -> None:
    """Expire a cookie, first dropping what this response already set for it (or for its
    chunks), as better-auth's expireCookie does: a valid value must not go out beside its
    expiry, where a proxy log or a server-side client could pick it up."""
    ctx.set_cookies[:] = [
        line for line in ctx.set_cookies if not line.startswith((f"{name}=", f"{name}."))
    ]
    ctx.set_cookie(name, "", _attributes(ctx, 0))


def clear_session_cookies(ctx: Ctx[Any]) -> None:
    """Expire session_token, session_data (and its chunks) and dont_remember."""
    token_name, data_name, remember_name = _names(ctx)
    for name in (token_name, data_name, remember_name):
        _expire(ctx, name)
    for name in _data_cookies(ctx, data_name):
        if name != data_name:
            _expire(ctx, name)


def remembered(ctx: Ctx[Any]) -> bool:
    """False when the request carries a valid dont_remember cookie (rememberMe: false)."""
    _, _, remember_name = _names(ctx)
    raw = ctx.cookies.get(remember_name)
    return raw is None or ctx.context.session_cookies.unsign(raw) != "true"


def session_token_from_cookie(ctx: Ctx[Any]) -> str | None:
    token_name, _, _ = _names(ctx)
    raw = ctx.cookies.get(token_name)
    return None if raw is None else ctx.context.session_cookies.unsign(raw)


def cookie_cache(ctx: Ctx[Any]) -> CachedSession | None:
    """The request's valid cookie cache, when the cookie cache is enabled: the usual read of
    a session, one look-up for a Cookie header whose cache verified before. Its rows are the
    public fields (as get-session answers them). None leaves it to `resolve_session`."""
    if not ctx.options.session.cookie_cache.enabled:
        return None
    return ctx.context.session_cookies.read_header(ctx.headers.get("cookie", ""))


async def resolve_session(
    ctx: Ctx[Any],
    *,
    disable_cookie_cache: bool = False,
    disable_refresh: bool = False,
    verify_cache: bool = False,
) -> SessionWithUser | None:
    """The request's session, refreshed as better-auth refreshes it; None if there is none.

    `verify_cache`: a valid cookie cache is still checked against storage, so a revoked
    session is refused at once (S16). A session that storage confirms is answered as a cache
    hit is (no refresh, no cookie written), so the answer stays better-auth's.
    """
    if not disable_cookie_cache and not verify_cache:
        verified = cookie_cache(ctx)
        if verified is not None:
            return verified.rows()
    token = session_token_from_cookie(ctx)
    if token is None:
        return None
    context = ctx.context
    options = ctx.options.session
    now = context.now()
    cached = False  # a valid cookie cache, to be confirmed by storage
    if options.cookie_cache.enabled and not disable_cookie_cache:
        # Without verify_cache the cache was read above, and is not valid.
        cached = verify_cache and cookie_cache(ctx) is not None
        if not cached:
            _, data_name, _ = _names(ctx)
            if join_chunks(ctx.cookies, data_name) is not None:
                _expire(ctx, data_name)  # expired, forged, or for another session
    found = await context.store.find_session(token)
    if cached and found is not None and found[0]["expiresAt"] > now:
        return found
    if found is None or found[0]["expiresAt"] <= now:
        clear_session_cookies(ctx)
        if found is not None:
            await context.store.delete_session(token)
        return None
    session, user = found
    if not remembered(ctx) or disable_refresh:
        return found
    expires_in = timedelta(seconds=options.expires_in)
    last_extended = session["expiresAt"] - expires_in
    if not options.disable_session_refresh and (
        last_extended + timedelta(seconds=options.update_age) <= now
    ):
        updated = await context.store.update_session(
            token, {"expiresAt": now + expires_in, "updatedAt": now}
        )
        if updated is None:  # deleted meanwhile
            clear_session_cookies(ctx)
            raise APIError(401, Code.FAILED_TO_GET_SESSION)
        session = updated
        set_session_cookie(ctx, session, user)
        ctx.new_session = None  # a refresh is not a new sign-in
        return session, user
    _write_cookie_cache(ctx, session, user, dont_remember=False)
    return session, user


async def session_required(ctx: Ctx[Any]) -> None:
    """A session. On a request that changes something the cookie cache is checked against
    storage, so a signed-out session replayed with its cache cannot act within the cache's
    lifetime (S16); reads trust the cache for its lifetime, as better-auth does."""
    ctx.session = await resolve_session(ctx, verify_cache=ctx.method not in _READS)
    if ctx.session is None:
        raise APIError(401, Code.UNAUTHORIZED)


_READS = frozenset({"GET", "HEAD", "OPTIONS"})


async def sensitive_session(ctx: Ctx[Any]) -> None:
    """A session read from storage, never from the cookie cache (revocation must show)."""
    ctx.session = await resolve_session(ctx, disable_cookie_cache=True)
    if ctx.session is None:
        raise APIError(401, Code.UNAUTHORIZED)


async def fresh_session(ctx: Ctx[Any]) -> None:
    """A session created under `fresh_age` ago, checked against storage (it guards
    list-sessions, which a revoked session must not read through its cookie cache)."""
    ctx.session = await resolve_session(ctx, verify_cache=True)
    if ctx.session is None:
        raise APIError(401, Code.UNAUTHORIZED)
    fresh_age = ctx.options.session.fresh_age
    created = ctx.session[0]["createdAt"]
    if fresh_age and ctx.context.now() - created >= timedelta(seconds=fresh_age):
        raise APIError(403, Code.SESSION_NOT_FRESH)


async def complete_sign_in(
    ctx: Ctx[Any], user: dict[str, Any], *, dont_remember: bool = False
) -> dict[str, Any]:
    """What every sign-in ends with once it has proved who `user` is (a password, and soon
    a social callback, a magic link, a code, a passkey): the plugins' sign-in checks, then a
    new session with its cookies. A check that answers (a second factor is due) stops it
    here, before any session or cookie exists (S11)."""
    for check in ctx.context.sign_in_checks:
        answer = await check(ctx, user)
        if answer is not None:
            raise SignInAnswered(answer)
    return await create_session_for(ctx, user, dont_remember=dont_remember)


async def create_session_for(
    ctx: Ctx[Any], user: dict[str, Any], *, dont_remember: bool = False
) -> dict[str, Any]:
    """A new session for `user`, with its cookies set: what every sign-in ends with."""
    session = await start_session(ctx, user, dont_remember=dont_remember)
    set_session_cookie(ctx, session, user, dont_remember=dont_remember)
    return session


async def start_session(
    ctx: Ctx[Any], user: dict[str, Any], *, dont_remember: bool = False, store: Store | None = None
) -> dict[str, Any]:
    """A new session for `user`, no cookie set yet. Given the `store` of an `atomic()` block,
    the session is part of that all-or-nothing step: set its cookies (`set_session_cookie`)
    once the block is done, so that a failed step sends none."""
    expires_in = 86400 if dont_remember else ctx.options.session.expires_in
    return await (store or ctx.context.store).create_session(
        user,
        expires_in=expires_in,
        ip_address=ctx.client_ip or "",
        user_agent=ctx.headers.get("user-agent", ""),
    )
