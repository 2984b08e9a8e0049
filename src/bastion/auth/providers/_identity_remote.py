"""Remote sessions: ask a better-auth-compatible server (Bastion's Identity or TypeScript
better-auth) `GET {url}/get-session` with the request's credential.

What is forwarded: the session cookies of the request (`<prefix>.session_token`,
`session_data` and its chunks, `dont_remember`, with or without `__Secure-`), nothing else;
when there is no session cookie, the bearer token, as `Authorization: Bearer` (read by the
server's bearer plugin) and, when it is signed (`token.signature`), also as the session cookie
under both names, which any better-auth server reads, bearer plugin or not.

Answers are kept for a few seconds, keyed by a SHA-256 of what was forwarded (never the
token itself), so a burst of requests costs one round trip; concurrent identical misses
share one. The price: a session revoked on the server still passes here until its entry
expires (`ttl`, 5 s by default; a refusal is kept `negative_ttl`, 1 s).

A server that does not answer, answers 5xx or 429, redirects, or answers 200 with something
that is not JSON cannot say whether the session is valid: `ProviderUnavailable` (a 503 for
the client, with the server's own `Retry-After` when it sent a usable one), and nothing is
kept. Only a real answer (a session, `null`, a 4xx refusal) decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from bastion.identity.cookies import SECURE_PREFIX, cookie_name, parse_cookie_header

from ..._url_masking import mask_userinfo
from ..errors import ProviderUnavailable

__all__ = ["RemoteSessions", "Resolution", "TTLCache"]

logger = logging.getLogger("bastion.auth.identity")

_COOKIE_SAFE = "-_.!~*'()"
_MISSING: Any = object()
IDENTITY_SERVER = "The identity server"  # what a 503 names
_MAX_RETRY_AFTER = 3600


@dataclass(slots=True)
class Resolution:
    """A session (`{"session", "user"}`) or None, and the `Set-Cookie` lines the client
    should receive (a refreshed session, a rewritten cookie cache, cookies to clear)."""

    user: dict[str, Any] | None
    set_cookies: Sequence[str] = ()


class TTLCache:
    """At most `max_entries` values, each for its own number of seconds; the oldest entry
    makes room for a new one. Per instance, safe to lose."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._entries: OrderedDict[bytes, tuple[float, Any]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Any:
        """The value, or `_MISSING` when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return _MISSING
        if entry[0] <= self._clock():
            del self._entries[key]
            return _MISSING
        return entry[1]

    def set(self, key: bytes, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        entries = self._entries
        entries.pop(key, None)
        if len(entries) >= self._max:
            entries.popitem(last=False)
        entries[key] = (self._clock() + ttl, value)

    def clear(self) -> None:
        self._entries.clear()


@dataclass(slots=True)
class _Answer:
    user: dict[str, Any] | None
    set_cookies: list[str] = field(default_factory=list)
    # The server could not say (down, 5xx, ...): seconds to wait, None when it said.
    unavailable: int | None = None


class RemoteSessions:
    def __init__(
        self,
        url: str,
        *,
        cookie_prefix: str = "better-auth",
        timeout: float = 5.0,
        ttl: float = 5.0,
        negative_ttl: float = 1.0,
        max_entries: int = 10_000,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"url must be an http(s) URL such as https://host/api/auth: {mask_userinfo(url)!r}"
            )
        if ttl < 0 or negative_ttl < 0 or timeout <= 0:
            raise ValueError("ttl and negative_ttl must be >= 0, timeout > 0")
        self.endpoint = url.rstrip("/") + "/get-session"
        self._shown = mask_userinfo(self.endpoint)  # for the log
        self.session_cookie_name = cookie_name(
            cookie_prefix, "session_token", secure=parts.scheme == "https"
        )
        plain_token = cookie_name(cookie_prefix, "session_token")
        self._token_names = (plain_token, SECURE_PREFIX + plain_token)
        self._data_name = cookie_name(cookie_prefix, "session_data")
        remember = cookie_name(cookie_prefix, "dont_remember")
        self._exact = {*self._token_names, remember, SECURE_PREFIX + remember}
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        # The system's clocks: the monotonic one for the cache's lifetimes, which a change of
        # the wall clock must not stretch; a given clock (a test's) serves both.
        self._now: Callable[[], float] = clock or time.time
        self._cache = TTLCache(max_entries, clock or time.monotonic)
        self._inflight: dict[bytes, asyncio.Task[_Answer]] = {}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        )

    async def resolve(self, token: str, cookie_header: str) -> Resolution:
        cookies = parse_cookie_header(cookie_header) if cookie_header else {}
        forwarded = [(n, v) for n, v in cookies.items() if self._forwards(n)]
        authorization: str | None = None
        from_bearer = not any(n in self._token_names for n, _ in forwarded)
        if from_bearer:
            if token[:7].lower() == "bearer ":
                token = token[7:]
            token = token.strip()
            if not token:
                return Resolution(None)
            if "." in token:
                signed = unquote(token) if "%" in token else token
                value = quote(signed, safe=_COOKIE_SAFE)
                forwarded += [(name, value) for name in self._token_names]
            authorization = f"Bearer {token}"
        cookie = "; ".join(f"{n}={v}" for n, v in forwarded)
        key = hashlib.sha256(f"{cookie}\n{authorization or ''}".encode()).digest()
        cached = self._cache.get(key)
        if cached is not _MISSING:
            return Resolution(_copy(cached))
        task = self._inflight.get(key)
        leader = task is None
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(key, cookie, authorization))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # Shielded: a caller that goes away (client disconnect) does not cancel the others'.
        answer = await asyncio.shield(task)
        if answer.unavailable is not None:
            raise ProviderUnavailable(IDENTITY_SERVER, retry_after=answer.unavailable)
        set_cookies = answer.set_cookies if leader and not from_bearer else []
        return Resolution(_copy(answer.user), list(set_cookies))

    def _forwards(self, name: str) -> bool:
        if name in self._exact:
            return True
        bare = name.removeprefix(SECURE_PREFIX)
        if bare == self._data_name:
            return True
        head, dot, index = bare.rpartition(".")
        return bool(dot) and head == self._data_name and index.isdigit()

    async def _fetch(self, key: bytes, cookie: str, authorization: str | None) -> _Answer:
        headers = {"accept": "application/json"}
        if cookie:
            headers["cookie"] = cookie
        if authorization is not None:
            headers["authorization"] = authorization
        try:
            response = await self._client.get(self.endpoint, headers=headers)
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            # The server is down, slow, or not a better-auth server: it cannot say, and
            # nothing is kept, so the next request asks again. The credential is not logged.
            logger.warning("session check at %s failed: %s", self._shown, type(exc).__name__)
            return _Answer(None, unavailable=ProviderUnavailable.DEFAULT_RETRY_AFTER)
        set_cookies = [
            line
            for line in response.headers.get_list("set-cookie")
            if self._forwards(line.split("=", 1)[0].strip())
        ]
        status = response.status_code
        if status >= 500 or status == 429 or 300 <= status < 400:
            logger.warning("session check at %s answered %d", self._shown, status)
            return _Answer(None, unavailable=_retry_after(response.headers.get("retry-after")))
        user = _session_of(body)
        if user is None:
            self._cache.set(key, None, self._negative_ttl)
        else:
            self._cache.set(key, user, min(self._ttl, _seconds_left(user, self._now())))
        return _Answer(user, set_cookies)

    async def aclose(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._cache.clear()
        if self._owns_client:
            await self._client.aclose()


def _retry_after(value: str | None) -> int:
    """The server's `Retry-After` in seconds when it sent a small whole number, else ours."""
    if value is not None and value.strip().isascii() and value.strip().isdigit():
        return min(int(value.strip()), _MAX_RETRY_AFTER)
    return ProviderUnavailable.DEFAULT_RETRY_AFTER


def _session_of(body: Any) -> dict[str, Any] | None:
    """`{"session", "user"}` from a get-session answer; None for `null` or anything else."""
    if not isinstance(body, dict):
        return None
    session, user = body.get("session"), body.get("user")
    if not isinstance(session, dict) or not isinstance(user, dict):
        return None
    return {"session": session, "user": user}


def _seconds_left(user: dict[str, Any], now: float) -> float:
    """Until the session's `expiresAt` from `now` (epoch seconds); an entry must not
    outlive the session."""
    expires = user["session"].get("expiresAt")
    if not isinstance(expires, str):
        return 0.0
    try:
        moment = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - now


def _copy(user: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy per request: a handler that edits its user must not edit the cached one."""
    if user is None:
        return None
    return {"session": dict(user["session"]), "user": dict(user["user"])}
