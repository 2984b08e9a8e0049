"""Reading the session of a request from outside the endpoints: `Identity.get_session`.

`resolve_session` (sessions.py) is the one definition of what a session is (cookie cache,
expiry, sliding refresh, cookies to clear); the get-session endpoint and the guards run it
on their request. This module serves callers that hold only headers (an auth provider, a
plugin's middleware) and answers without it only where the answer is a pure read that
`resolve_session` would give as well:

* a valid cookie cache (`session_data`) on a request allowed to trust it: verified once per
  Cookie header, then remembered (bounded) until the cache or the session expires, by the
  Identity's `SessionCookies.read_header`, which the get-session endpoint reads too; a request
  that may not trust it takes the same remembered verification, and storage confirms the
  session (S16);
* a session found in storage, unexpired, needing no refresh and no cookie cache to be written
  (a bearer client keeps none; with `trust_cookie_cache="never"` no cache is rewritten that
  the caller ignores).

Everything else (an expired row to delete, a refresh, a cookie cache to rewrite, a
verification that fails) is handed to `resolve_session` on a context made for the purpose,
so those rare cases cost one more lookup, never a different answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, unquote

from ._session_cookies import CachedSession
from .cookies import parse_cookie_header, sign_cookie_value
from .crypto import HmacKey
from .sessions import clear_session_cookies, resolve_session
from .store import SessionWithUser

if TYPE_CHECKING:
    from ._runner import Runner
    from .context import AuthContext
    from .endpoint import Ctx, Endpoint

__all__ = ["SessionReader", "SessionResult", "TrustCookieCache"]

# When a valid cookie cache may stand for the session without asking storage:
# "reads" (GET, HEAD, OPTIONS; as the Identity's own guards), "always" (as better-auth's
# get-session), "never" (every request reads storage: revocation shows at once).
TrustCookieCache = Literal["reads", "always", "never"]
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_COOKIE_SAFE = "-_.!~*'()"  # encodeURIComponent's unescaped punctuation


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The request's session and user as the get-session endpoint answers them (public
    fields only), or None for both; and the `Set-Cookie` lines the client should receive (a
    refreshed session, a rewritten cookie cache, the cookies of a dead session to clear)."""

    session: dict[str, Any] | None
    user: dict[str, Any] | None
    set_cookies: tuple[str, ...] = ()


_NONE = SessionResult(None, None)


class SessionReader:
    """One Identity's session reads by headers; built once per Identity."""

    def __init__(
        self,
        context: AuthContext,
        runner: Runner,
        endpoint: Endpoint,
    ) -> None:
        self._context = context
        self._runner = runner
        self._endpoint = endpoint  # get-session: what the context of `resolve_session` serves
        self._key = HmacKey(context.secret)
        # The Identity's own checks of signed cookies and cookie caches, which remember what
        # verified: the same Cookie header is one look-up on every request after the first.
        self._unsign = context.session_cookies.unsign
        self._read_header = context.session_cookies.read_header
        self._token_name, _, self._remember_name = context.session_cookies.names
        session_options = context.options.session
        self._cache_enabled: bool = session_options.cookie_cache.enabled
        self._expires_in = timedelta(seconds=session_options.expires_in)
        self._update_age = timedelta(seconds=session_options.update_age)
        self._refresh: bool = not session_options.disable_session_refresh
        self._find = context.store.find_session
        self._revocations = context.store.revocations
        # Kept while a cookie cache made before a revocation could still be presented.
        self._revocations.retention = max(
            self._revocations.retention, session_options.cookie_cache.max_age
        )

    @property
    def session_cookie_name(self) -> str:
        return self._token_name

    async def read(
        self,
        headers: Mapping[str, Any],
        *,
        method: str = "GET",
        bearer: str | None = None,
        trust_cookie_cache: TrustCookieCache = "reads",
        require_signature: bool = False,
    ) -> SessionResult:
        """The session of a request with these headers (see `Identity.get_session`)."""
        cookie_header = _header(headers, "cookie", "; ")
        # A cookie cache that verified: the same Cookie header carries the same session
        # cookies, and that cookie wins over the bearer token, so the header alone decides.
        rows = self.cached(cookie_header, method, trust_cookie_cache)
        if rows is not None:
            return SessionResult(*rows)  # the usual read: no I/O, no cookie
        never = trust_cookie_cache == "never"
        trusts = self._cache_enabled and _trusts(trust_cookie_cache, method)
        if self._cache_enabled and not never:
            cached = self._read_header(cookie_header)
            if cached is not None:  # not to be trusted alone here: storage confirms it
                return await self._confirm(cached, cookie_header)

        cookies = parse_cookie_header(cookie_header) if cookie_header else {}
        from_bearer = False
        if self._token_name not in cookies:
            # Mastra's fix for #13639 and #19110: the bearer token becomes the session
            # cookie (a raw one signed with the secret), unless a session cookie is there.
            if bearer is None:
                bearer = _bearer(_header(headers, "authorization", ", "))
            signed = self._signed(bearer, require_signature)
            if signed is None:
                return _NONE
            cookies[self._token_name] = quote(signed, safe=_COOKIE_SAFE)
            cookie_header = "; ".join(f"{n}={v}" for n, v in cookies.items())
            from_bearer = True
        session_token = self._unsign(cookies[self._token_name])
        if session_token is None:
            return _NONE  # badly signed: not a session, and nothing to ask storage

        now = self._context.now()
        if from_bearer or not self._cache_enabled or never:
            # Storage alone: no cookie cache to read, or to rewrite (a bearer client keeps
            # none; with "never" no cache is refreshed that the caller ignores).
            found = await self._find(session_token)
            if found is None:
                if from_bearer:
                    return _NONE
                ctx = self._ctx(cookie_header)
                clear_session_cookies(ctx)
                return SessionResult(None, None, tuple(ctx.set_cookies))
            session = found[0]
            if session["expiresAt"] > now and not self._needs_refresh(session, cookies, now):
                return self._public(found)
            return await self._resolve(
                cookie_header, never=never, trusts=trusts, from_bearer=from_bearer
            )
        # The cookie cache is missing or not valid (read_header said so above).
        return await self._resolve(cookie_header, never=never, trusts=trusts)

    def cached(
        self, cookie_header: str, method: str, trust_cookie_cache: TrustCookieCache
    ) -> SessionWithUser | None:
        """`read`'s usual answer, without I/O: copies of the session and user (public
        fields) of the header's valid cookie cache, on a request that may trust it and
        whose session this process has not revoked since. None leaves it to the rest of
        `read`."""
        # `_trusts`, spelled out: this runs on every request of an auth provider.
        if trust_cookie_cache == "reads":
            if method not in _READS and method.upper() not in _READS:
                return None
        elif trust_cookie_cache != "always":
            if trust_cookie_cache != "never":
                raise _bad_trust(trust_cookie_cache)
            return None
        if not self._cache_enabled:
            return None
        cached = self._read_header(cookie_header)
        if cached is None or (self._revocations.recorded and self._revoked(cached)):
            return None
        return cached.rows()

    def _revoked(self, cached: CachedSession) -> bool:
        """Revoked by this process since the cache was made: storage decides (S16)."""
        session = cached.session
        return self._revocations.covers(
            cached.token, session.get("userId"), session.get("createdAt")
        )

    async def _confirm(self, cached: CachedSession, cookie_header: str) -> SessionResult:
        """A valid cookie cache on a request that must not trust it alone (S16): storage
        confirms the session."""
        found = await self._find(cached.token)
        if found is not None and found[0]["expiresAt"] > self._context.now():
            return self._public(found)
        return await self._resolve(cookie_header, never=False, trusts=False)

    async def _resolve(
        self, cookie_header: str, *, never: bool, trusts: bool, from_bearer: bool = False
    ) -> SessionResult:
        """`resolve_session`'s own answer, for every case the short paths leave."""
        ctx = self._ctx(cookie_header)
        resolved = await resolve_session(ctx, disable_cookie_cache=never, verify_cache=not trusts)
        set_cookies = () if from_bearer else tuple(ctx.set_cookies)
        if resolved is None:
            return SessionResult(None, None, set_cookies)
        public = self._public(resolved)
        return SessionResult(public.session, public.user, set_cookies)

    def _signed(self, token: str, require_signature: bool) -> str | None:
        """`token.signature` for a bearer token, or None when there is none to use."""
        if token[:7].lower() == "bearer ":
            token = token[7:]
        token = token.strip()
        if not token:
            return None
        if "." in token:
            return unquote(token) if "%" in token else token
        if require_signature:
            return None
        return unquote(sign_cookie_value(self._key, token))

    def _needs_refresh(
        self, session: Mapping[str, Any], cookies: Mapping[str, str], now: datetime
    ) -> bool:
        if not self._refresh:
            return False
        raw = cookies.get(self._remember_name)
        if raw is not None and self._unsign(raw) == "true":
            return False  # rememberMe: false sessions are never extended
        expires: datetime = session["expiresAt"]
        return expires - self._expires_in + self._update_age <= now

    def _public(self, found: SessionWithUser) -> SessionResult:
        context = self._context
        return SessionResult(
            context.public_row("session", found[0]), context.public_row("user", found[1])
        )

    def _ctx(self, cookie_header: str) -> Ctx[Any]:
        return self._runner.new_ctx(self._endpoint, method="GET", headers={"cookie": cookie_header})


def _bad_trust(trust_cookie_cache: object) -> ValueError:
    return ValueError(
        f"trust_cookie_cache: 'reads', 'always' or 'never', not {trust_cookie_cache!r}"
    )


def _trusts(trust_cookie_cache: TrustCookieCache, method: str) -> bool:
    """Whether a valid cookie cache may stand for the session, without storage."""
    return trust_cookie_cache == "always" or (
        trust_cookie_cache == "reads" and method.upper() in _READS
    )


def _header(headers: Mapping[str, Any], name: str, separator: str) -> str:
    """The header `name` (lower-case), whatever the case of the mapping's keys; values sent
    apart (HTTP/2 splits Cookie) or given as a list are joined."""
    if type(headers) is dict:  # the usual case, and fast: a lower-case key
        value = headers.get(name)
        if isinstance(value, str):
            return value
    getlist = getattr(headers, "getlist", None) or getattr(headers, "get_list", None)
    if callable(getlist):  # Starlette's and httpx's Headers: case-insensitive, every value
        values: list[Any] = list(getlist(name))
    else:
        values = []
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == name:
                values.extend(value if isinstance(value, list | tuple) else [value])
    return separator.join(str(v) for v in values)


def _bearer(authorization: str) -> str:
    """The token of an `Authorization: Bearer` header ("" for none or another scheme)."""
    if authorization[:7].lower() == "bearer ":
        return authorization[7:]
    return ""
