"""In-process sessions: the request's session, resolved as the Identity's get-session resolves
it, with the common outcomes answered on a short path.

The Identity's `resolve_session` is the one definition of what a session is (cookie cache,
expiry, sliding refresh, cookies to clear). This module answers without it only where the
answer is a pure read that `resolve_session` would give as well:

* a valid cookie cache (`session_data`) on a request allowed to trust it: verified once per
  Cookie header, then remembered (per instance, bounded) until the cache or the session
  expires; a request that may not trust it takes the same remembered verification, and
  storage confirms the session (S16);
* a session found in storage, unexpired, needing no refresh and no cookie cache to be written
  (a bearer client keeps none; with `trust_cookie_cache="never"` the provider does not
  rewrite a cache it ignores).

Everything else (an expired row to delete, a refresh, a cookie cache to rewrite, a
verification that fails) is handed to `resolve_session`, so those rare cases cost one more
lookup, never a different answer.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, unquote

from bastion.identity.cookies import (
    CookieNames,
    decode_cookie_cache,
    decode_cookie_value,
    join_chunks,
    parse_cookie_header,
    sign_cookie_value,
)
from bastion.identity.crypto import decode_base64_any
from bastion.identity.db.types import utc_now
from bastion.identity.sessions import clear_session_cookies, resolve_session
from bastion.identity.store import from_json_row

from ._identity_db import SessionWithUser, session_lookup

if TYPE_CHECKING:
    from bastion.identity import Identity
    from bastion.identity.endpoint import Ctx

__all__ = ["LocalSessions", "Resolution", "TrustCookieCache"]

# When a valid cookie cache may stand for the session without asking storage:
# "reads" (GET, HEAD, OPTIONS; as the Identity's own guards), "always" (as better-auth's
# get-session), "never" (every request reads storage: revocation shows at once).
TrustCookieCache = Literal["reads", "always", "never"]
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_COOKIE_SAFE = "-_.!~*'()"  # encodeURIComponent's unescaped punctuation


@dataclass(slots=True)
class Resolution:
    """A session (`{"session", "user"}`) or None, and the `Set-Cookie` lines the client
    should receive (a refreshed session, a rewritten cookie cache, cookies to clear)."""

    user: dict[str, Any] | None
    set_cookies: Sequence[str] = ()


_NONE = Resolution(None)


@dataclass(slots=True, frozen=True)
class _Remembered:
    """A cookie cache that verified, for the session `token`."""

    valid_until: float  # epoch seconds: when the cache or the session expires, if sooner
    token: str
    session: dict[str, Any]
    user: dict[str, Any]
    nested: bool  # some value is a dict or a list (a JSON or array field)

    def answer(self) -> dict[str, Any]:
        """The get-session answer, a copy of its own: a handler that edits its user must
        not edit what later requests are given."""
        if self.nested:
            return {"session": copy.deepcopy(self.session), "user": copy.deepcopy(self.user)}
        return {"session": dict(self.session), "user": dict(self.user)}


class LocalSessions:
    def __init__(
        self,
        identity: Identity,
        *,
        trust_cookie_cache: TrustCookieCache = "reads",
        require_signature: bool = False,
        memo_size: int = 10_000,
    ) -> None:
        if trust_cookie_cache not in ("reads", "always", "never"):
            raise ValueError(
                f"trust_cookie_cache: 'reads', 'always' or 'never', not {trust_cookie_cache!r}"
            )
        if memo_size < 0:
            raise ValueError("memo_size must be >= 0")
        options = identity.options
        assert options.secret is not None  # IdentityOptions.resolve fills it
        self._identity = identity
        self._secret: str = options.secret
        # The Identity's own check of signed cookies, which remembers the values that verified.
        self._unsign = identity.context.session_cookies.unsign
        self._endpoint = identity.endpoints["get_session"]
        self.names = CookieNames.create(
            options.advanced.cookie_prefix, secure=identity.context.secure_cookies
        )
        session_options = options.session
        self._cache_enabled: bool = session_options.cookie_cache.enabled
        self._cache_version: str = session_options.cookie_cache.version
        self._expires_in = timedelta(seconds=session_options.expires_in)
        self._update_age = timedelta(seconds=session_options.update_age)
        self._refresh: bool = not session_options.disable_session_refresh
        self._trust = trust_cookie_cache
        self._trust_all = self._cache_enabled and trust_cookie_cache == "always"
        self._trust_reads = self._cache_enabled and trust_cookie_cache == "reads"
        self._require_signature = require_signature
        self._find = session_lookup(identity)
        # Cookie caches that verified, keyed by the whole Cookie header. Only a header with a
        # session cookie is remembered, and that cookie wins over the bearer token, so the
        # header alone decides the answer: any other session cookie, cache or chunk is another
        # key. Consulted by every method: a request that must not trust the cache still
        # confirms the remembered session with storage (S16).
        self._memo: dict[str, _Remembered] = {}
        self._memo_size = memo_size if self._cache_enabled and trust_cookie_cache != "never" else 0
        # The Identity's clock, read cheaply when it is the real one (tests move their own).
        self._seconds: Callable[[], float] = (
            time.time if identity.now is utc_now else lambda: identity.now().timestamp()
        )

    def remembered(self, cookie_header: str, method: str) -> dict[str, Any] | None:
        """The answer when it is a remembered cookie cache, still valid, that this request
        may trust: no I/O and no cookie to set, so no coroutine either (the usual read).
        None otherwise, and `resolve` answers."""
        if not self._memo_size or not self._trusts(method):
            return None
        entry = self._memo.get(cookie_header)
        if entry is None or self._seconds() >= entry.valid_until:
            return None
        return entry.answer()

    async def resolve(self, token: str, cookie_header: str, method: str) -> Resolution:
        """The session of a request with this credential, Cookie header and method."""
        if self._memo_size:
            entry = self._memo.get(cookie_header)
            if entry is not None:
                if self._seconds() < entry.valid_until:
                    return await self._from_cache(entry, cookie_header, method)
                del self._memo[cookie_header]

        cookies = parse_cookie_header(cookie_header) if cookie_header else {}
        names = self.names
        from_bearer = False
        if names.session_token not in cookies:
            # Mastra's fix for #13639 and #19110: the bearer token becomes the session
            # cookie (a raw one signed with the secret), unless a session cookie is there.
            signed = self._signed(token)
            if signed is None:
                return _NONE
            cookies[names.session_token] = quote(signed, safe=_COOKIE_SAFE)
            cookie_header = "; ".join(f"{n}={v}" for n, v in cookies.items())
            from_bearer = True
        session_token = self._unsign(cookies[names.session_token])
        if session_token is None:
            return _NONE  # badly signed: not a session, and nothing to ask storage

        now = self._identity.now()
        if from_bearer or not self._cache_enabled or self._trust == "never":
            # Storage alone: no cookie cache to read, or to rewrite (a bearer client keeps
            # none; with "never" this provider does not refresh a cache it ignores).
            found = await self._find(session_token)
            if found is None:
                ctx = self._ctx(cookie_header)
                clear_session_cookies(ctx)
                return Resolution(None, [] if from_bearer else list(ctx.set_cookies))
            session = found[0]
            if session["expiresAt"] > now and not self._needs_refresh(session, cookies, now):
                return Resolution(self._public(found))
            return await self._resolve_session(cookie_header, method, from_bearer=from_bearer)
        cached = self._read_cookie_cache(cookies, session_token, now)
        if cached is None:
            return await self._resolve_session(cookie_header, method)
        if self._memo_size:
            self._remember(cookie_header, cached)
        return await self._from_cache(cached, cookie_header, method)

    async def _from_cache(self, cached: _Remembered, cookie_header: str, method: str) -> Resolution:
        """The answer for a request whose cookie cache is valid."""
        if self._trusts(method):
            return Resolution(cached.answer())
        # A request that must not trust the cache alone (S16): storage confirms it.
        found = await self._find(cached.token)
        if found is not None and found[0]["expiresAt"] > self._identity.now():
            return Resolution(self._public(found))
        return await self._resolve_session(cookie_header, method)

    async def _resolve_session(
        self, cookie_header: str, method: str, *, from_bearer: bool = False
    ) -> Resolution:
        """The Identity's own answer, for every case the short paths leave."""
        ctx = self._ctx(cookie_header)
        resolved = await resolve_session(
            ctx, disable_cookie_cache=self._trust == "never", verify_cache=not self._trusts(method)
        )
        set_cookies = [] if from_bearer else list(ctx.set_cookies)
        return Resolution(None if resolved is None else self._public(resolved), set_cookies)

    async def aclose(self) -> None:
        """Close the lookup's own database connections (PostgreSQL)."""
        await self._find.aclose()
        self._memo.clear()

    def _trusts(self, method: str) -> bool:
        """Whether a valid cookie cache may stand for the session without storage."""
        return self._trust_all or (self._trust_reads and method in _READS)

    def _signed(self, token: str) -> str | None:
        """`token.signature` for a bearer token, or None when there is none to use."""
        if token[:7].lower() == "bearer ":
            token = token[7:]
        token = token.strip()
        if not token:
            return None
        if "." in token:
            return unquote(token) if "%" in token else token
        if self._require_signature:
            return None
        return unquote(sign_cookie_value(self._secret, token))

    def _needs_refresh(
        self, session: Mapping[str, Any], cookies: Mapping[str, str], now: datetime
    ) -> bool:
        if not self._refresh:
            return False
        raw = cookies.get(self.names.dont_remember)
        if raw is not None and self._unsign(raw) == "true":
            return False  # rememberMe: false sessions are never extended
        expires: datetime = session["expiresAt"]
        return expires - self._expires_in + self._update_age <= now

    def _read_cookie_cache(
        self, cookies: Mapping[str, str], token: str, now: datetime
    ) -> _Remembered | None:
        """The session in a valid `session_data` cookie for `token` (the checks of the
        Identity's get-session), or None; a bad one is left for `resolve_session` to expire."""
        raw = join_chunks(cookies, self.names.session_data)
        if raw is None:
            return None
        now_ms = int(now.timestamp() * 1000)
        payload = decode_cookie_cache(self._secret, raw, now_ms)
        if payload is None or payload.get("version") != self._cache_version:
            return None
        identity = self._identity
        session = from_json_row(payload["session"], identity.context.date_fields("session"))
        if session.get("token") != token or not session["expiresAt"] > now:
            return None
        user = from_json_row(payload["user"], identity.context.date_fields("user"))
        valid_until = min(_cache_expiry(raw), session["expiresAt"].timestamp())
        session = identity.context.public_row("session", session)
        user = identity.context.public_row("user", user)
        nested = any(isinstance(v, dict | list) for v in (*session.values(), *user.values()))
        return _Remembered(valid_until, token, session, user, nested)

    def _remember(self, key: str, entry: _Remembered) -> None:
        memo = self._memo
        if len(memo) >= self._memo_size:
            del memo[next(iter(memo))]  # the oldest; all live at most one cookie-cache age
        memo[key] = entry

    def _public(self, found: SessionWithUser) -> dict[str, Any]:
        identity = self._identity
        return {
            "session": identity.context.public_row("session", found[0]),
            "user": identity.context.public_row("user", found[1]),
        }

    def _ctx(self, cookie_header: str) -> Ctx[Any]:
        return self._identity.runner.new_ctx(
            self._endpoint, method="GET", headers={"cookie": cookie_header}
        )


def _cache_expiry(raw: str) -> float:
    """The `expiresAt` (epoch seconds) of a `session_data` value `decode_cookie_cache` has
    just accepted."""
    body = json.loads(decode_base64_any(decode_cookie_value(raw)))
    return float(body["expiresAt"]) / 1000
