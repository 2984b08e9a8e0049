"""Session cookies of one Identity: their names, and the values it has already verified."""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .cookies import (
    cookie_name,
    join_chunks,
    parse_cookie_header,
    unsign_cookie_value,
    verify_cookie_cache,
)
from .crypto import HmacKey
from .db.types import utc_now
from .store import SessionWithUser, from_json_row, has_nested_values

__all__ = ["CachedSession", "SessionCookies"]


_MEMO_SIZE = 1024  # values of each kind remembered per Identity
# Whole Cookie headers remembered per Identity: one per active client, so more of them.
_HEADER_MEMO_SIZE = 10_000


@dataclass(slots=True)
class CachedSession:
    """A Cookie header's valid cookie cache: the session `token` it is for, and the session
    and user it holds (their public fields, as the cache holds them). Not changed once made
    (not frozen: a frozen dataclass pays a setattr call per field, on every verification)."""

    valid_until: float  # epoch seconds: when the cache or the session expires, if sooner
    token: str
    session: dict[str, Any]
    user: dict[str, Any]
    nested: bool  # some value is a dict or a list (a JSON or array field)

    def rows(self) -> SessionWithUser:
        """Copies of its own: a caller that edits its user must not edit what later requests
        are given."""
        if self.nested:
            return copy.deepcopy(self.session), copy.deepcopy(self.user)
        return dict(self.session), dict(self.user)


class SessionCookies:
    """One Identity's session cookies: their names, and the values it has already verified.

    The same cookies come back on every request of a session. Checking the HMAC of
    session_token, and decoding, HMAC-checking and parsing the ~800-character session_data,
    were most of a cached get-session's cost (docs/benchmarks.md), so a value that verified is
    remembered by its exact text: at most `_MEMO_SIZE` of each kind, oldest dropped first,
    and only values that verified (a forged one costs a full check every time). Everything
    that depends on the time — the cache's `expiresAt`, the session's — is still checked on
    every use, by the callers below. Above them, `read_header` remembers whole Cookie headers
    whose cache verified (`_HEADER_MEMO_SIZE`), until the cache or its session expires: the
    get-session endpoint, the guards that trust the cache and `Identity.get_session` read a
    session's cache with one look-up.
    """

    def __init__(
        self,
        secret: str,
        prefix: str,
        cache_version: str,
        dates: Mapping[str, set[str]],
        output: Mapping[str, set[str]],
        *,
        secure: bool,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._key = HmacKey(secret)
        self._version = cache_version
        self._dates = dates
        self._output = output
        self._now = now
        # The clock, read cheaply when it is the real one (tests move their own).
        self._seconds: Callable[[], float] = (
            time.time if now is utc_now else lambda: now().timestamp()
        )
        # session_token, session_data and dont_remember, named once.
        self.names: tuple[str, str, str] = (
            cookie_name(prefix, "session_token", secure=secure),
            cookie_name(prefix, "session_data", secure=secure),
            cookie_name(prefix, "dont_remember", secure=secure),
        )
        self._signed: OrderedDict[str, str] = OrderedDict()
        # session_data value -> (its expiresAt in ms, session, user, holds nested values)
        self._caches: OrderedDict[str, tuple[float, dict[str, Any], dict[str, Any], bool]] = (
            OrderedDict()
        )
        # Cookie header -> its valid cookie cache. A header with the same session cookies is
        # the same text, so one look-up stands for parsing it, checking the session_token's
        # signature, and verifying and parsing the session_data.
        self._headers: OrderedDict[str, CachedSession] = OrderedDict()

    def read_header(self, header: str) -> CachedSession | None:
        """The valid cookie cache of a Cookie header: a session_data cookie that verifies, is
        for the header's signed session_token, and has not expired, nor has its session.
        None when there is none; `resolve_session` then decides (storage, a cookie to clear).
        Remembered per header until the cache or the session expires."""
        found = self._headers.get(header)
        if found is not None:
            if self._seconds() < found.valid_until:
                return found
            del self._headers[header]
        if not header:
            return None
        token_name, data_name, _ = self.names
        cookies = parse_cookie_header(header)
        signed = cookies.get(token_name)
        token = None if signed is None else self.unsign(signed)
        if token is None:
            return None
        raw = join_chunks(cookies, data_name)
        if raw is None:
            return None
        now = self._now()
        verified = self._verified_cache(raw, int(now.timestamp() * 1000))
        if verified is None:
            return None
        cache_expires_ms, session, user, nested = verified
        expires_at: datetime = session["expiresAt"]
        if session.get("token") != token or not expires_at > now:
            return None
        # The rows of the value memo, shared: neither memo changes them or hands them out
        # (`rows()` copies). Filtered only when the cache holds more than the public fields.
        public_session, public_user = self._output["session"], self._output["user"]
        if not session.keys() <= public_session:
            session = {k: v for k, v in session.items() if k in public_session}
        if not user.keys() <= public_user:
            user = {k: v for k, v in user.items() if k in public_user}
        found = CachedSession(
            min(cache_expires_ms / 1000, expires_at.timestamp()), token, session, user, nested
        )
        _remember(self._headers, header, found, _HEADER_MEMO_SIZE)
        return found

    def unsign(self, raw: str) -> str | None:
        """`unsign_cookie_value` with this Identity's secret."""
        value = self._signed.get(raw)
        if value is None:
            value = unsign_cookie_value(self._key, raw)
            if value is not None:
                _remember(self._signed, raw, value, _MEMO_SIZE)
        return value

    def _verified_cache(
        self, raw: str, now_ms: int
    ) -> tuple[float, dict[str, Any], dict[str, Any], bool] | None:
        """The remembered verification of a session_data value: its expiresAt (ms), session,
        user, and whether they hold nested values. The rows are the memo's own: not to be
        changed, nor handed out."""
        found = self._caches.get(raw)
        if found is None:
            verified = verify_cookie_cache(self._key, raw)
            if verified is None:
                return None
            payload, expires_at = verified
            if expires_at < now_ms or payload.get("version") != self._version:
                return None
            session = from_json_row(payload["session"], self._dates["session"])
            user = from_json_row(payload["user"], self._dates["user"])
            nested = has_nested_values(session) or has_nested_values(user)
            found = (expires_at, session, user, nested)
            _remember(self._caches, raw, found, _MEMO_SIZE)
        return None if found[0] < now_ms else found


def _remember(memo: OrderedDict[str, Any], key: str, value: Any, size: int) -> None:
    if len(memo) >= size:
        # The oldest. An OrderedDict drops it at once; a dict's `next(iter())` walks past the
        # slots its earlier deletions left, ~0.5 µs on every miss of a full memo.
        memo.popitem(last=False)
    memo[key] = value
