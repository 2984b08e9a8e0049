"""Session cookies of one Identity: their names, and the values it has already verified."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from .cookies import cookie_name, unsign_cookie_value, verify_cookie_cache
from .crypto import HmacKey
from .store import SessionWithUser, from_json_row, has_nested_values

__all__ = ["SessionCookies"]


_MEMO_SIZE = 1024  # values of each kind remembered per Identity


class SessionCookies:
    """One Identity's session cookies: their names, and the values it has already verified.

    The same cookies come back on every request of a session. Checking the HMAC of
    session_token, and decoding, HMAC-checking and parsing the ~800-character session_data,
    were most of a cached get-session's cost (docs/benchmarks.md), so a value that verified is
    remembered by its exact text: at most `_MEMO_SIZE` of each kind, oldest dropped first,
    and only values that verified (a forged one costs a full check every time). Everything
    that depends on the time — the cache's `expiresAt`, the session's — is still checked on
    every use, by the callers below.
    """

    def __init__(
        self,
        secret: str,
        prefix: str,
        cache_version: str,
        dates: Mapping[str, set[str]],
        *,
        secure: bool,
    ) -> None:
        self._key = HmacKey(secret)
        self._version = cache_version
        self._dates = dates
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

    def unsign(self, raw: str) -> str | None:
        """`unsign_cookie_value` with this Identity's secret."""
        value = self._signed.get(raw)
        if value is None:
            value = unsign_cookie_value(self._key, raw)
            if value is not None:
                _remember(self._signed, raw, value)
        return value

    def read_cache(self, raw: str, now_ms: int) -> SessionWithUser | None:
        """The rows of a session_data value that verifies, has not expired and has the
        configured version (`decode_cookie_cache`), dates as datetimes; fresh copies."""
        found = self.read_cache_until(raw, now_ms)
        return None if found is None else found[0]

    def read_cache_until(self, raw: str, now_ms: int) -> tuple[SessionWithUser, float] | None:
        """`read_cache`, with the cache's own `expiresAt` (epoch ms)."""
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
            _remember(self._caches, raw, found)
        expires_at, session, user, nested = found
        if expires_at < now_ms:
            return None
        if nested:  # a caller may change what it is given; the memo must not change
            return (copy.deepcopy(session), copy.deepcopy(user)), expires_at
        return (dict(session), dict(user)), expires_at


def _remember(memo: OrderedDict[str, Any], key: str, value: Any) -> None:
    if len(memo) >= _MEMO_SIZE:
        # The oldest. An OrderedDict drops it at once; a dict's `next(iter())` walks past the
        # slots its earlier deletions left, ~0.5 µs on every miss of a full memo.
        memo.popitem(last=False)
    memo[key] = value
