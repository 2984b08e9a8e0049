"""One cache of JSON Web Key Sets (and OIDC discovery documents) for every verifier.

What it does, and why (spec/security.md, "JWKS verifier"; S23, S24, S31):

- **Async, time-limited fetches** with httpx: one slow identity provider never blocks the
  event loop, and no fetch lasts longer than `timeout` seconds in total.
- **Single-flight**: concurrent misses for one URL share one fetch (one in-flight task per
  URL; waiters are shielded, so a cancelled request does not cancel the fetch for others).
- **TTL** = min(`ttl`, the response's `Cache-Control: max-age`), never below `min_ttl`;
  `ETag` is remembered and sent back as `If-None-Match`, a 304 renews the set.
- **Unknown `kid`**: at most one forced refetch per `cooldown` (30 s) per URL, and the
  cooldown also starts on a *failed* fetch; kids that a refetch did not bring are remembered
  in a bounded negative cache for `negative_ttl`. 1000 random kids cost at most one fetch.
- **Stale-if-error**: while the endpoint fails, the last good set is served for up to
  `stale_if_error` times the configured TTL past expiry. A failure or a miss never evicts
  known keys; only a successful fetch replaces the set (the issuer's JWKS is authoritative).
- **Bounded memory**: at most `max_issuers` URLs cached (least recently used dropped), at
  most `max_keys` keys per set, at most `max_bytes` per document.
- **Allow-list before any I/O**: a URL is fetched only if a key source registered it with
  `allow()` at construction (or it is in the fixed `allowed_urls`), or it is the `jwks_uri`
  of an allowed issuer's verified discovery document. Keys never come from a token (`jku`).

The state is plain data, so one cache may be shared across event loops (tests do); the
single-flight task is only shared within the loop that started it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ._discovery import validate_metadata
from ._errors import ConfigurationError, JWKSNotAllowed, JWKSUnavailable, KeyNotFound
from ._fetch import FetchFailed, fetch_document, max_age
from ._jwk import parse_jwk_set
from ._keys import KeySet, PublicKey
from ._urls import check_url

__all__ = ["JWKSCache", "default_jwks_cache"]

log = logging.getLogger("bastion.jose.jwks")

_Kind = Literal["jwks", "metadata"]


@dataclass
class _Entry:
    url: str
    kind: _Kind
    expected_issuer: str | None = None
    value: Any = None  # KeySet or metadata dict, from the last successful fetch
    etag: str | None = None
    ttl: float = 0.0
    expires_at: float = -math.inf
    stale_until: float = -math.inf
    last_attempt: float = -math.inf
    failed: bool = False
    error: str | None = None
    negative: OrderedDict[str, float] = field(default_factory=OrderedDict)


class JWKSCache:
    """Key sets and discovery documents by URL; see the module docstring."""

    def __init__(
        self,
        *,
        ttl: float = 600.0,
        min_ttl: float = 5.0,
        cooldown: float = 30.0,
        stale_if_error: float = 10.0,
        timeout: float = 5.0,
        max_issuers: int = 64,
        max_keys: int = 32,
        max_bytes: int = 256 * 1024,
        negative_ttl: float = 300.0,
        negative_size: int = 256,
        allowed_urls: Iterable[str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < min_ttl <= ttl:
            raise ConfigurationError("JWKSCache: need 0 < min_ttl <= ttl")
        if cooldown < 0 or stale_if_error < 0 or timeout <= 0:
            raise ConfigurationError("JWKSCache: cooldown, stale_if_error >= 0 and timeout > 0")
        if max_issuers < 1 or max_keys < 1 or max_bytes < 1024 or negative_size < 0:
            raise ConfigurationError("JWKSCache: limits must be positive")
        self.ttl = ttl
        self.min_ttl = min_ttl
        self.cooldown = cooldown
        self.stale_if_error = stale_if_error
        self.timeout = timeout
        self.max_issuers = max_issuers
        self.max_keys = max_keys
        self.max_bytes = max_bytes
        self.negative_ttl = negative_ttl
        self.negative_size = negative_size
        self._fixed = frozenset(allowed_urls) if allowed_urls is not None else None
        self._allowed: set[str] = set(self._fixed or ())
        self._discovered: set[str] = set()  # jwks_uris vouched for by an allowed issuer
        self._http_ok: set[str] = set()  # registered with allow_http=True
        self._client = http_client
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[None]] = {}

    # -- allow-list ----------------------------------------------------------------------

    def allow(self, url: str, *, allow_http: bool = False, what: str = "JWKS URL") -> str:
        """Register a URL a key source was configured with. With a fixed `allowed_urls`, a
        URL outside it is a ConfigurationError."""
        check_url(url, what=what, allow_http=allow_http)
        if self._fixed is not None and url not in self._fixed:
            raise ConfigurationError(f"{what} {url!r} is not in this JWKS cache's allowed_urls")
        self._allowed.add(url)
        if allow_http:
            self._http_ok.add(url)
        return url

    def _check_allowed(self, url: str) -> None:
        if url not in self._allowed and url not in self._discovered:
            raise JWKSNotAllowed(f"{url!r} is not an allowed JWKS or discovery URL")

    # -- public lookups ------------------------------------------------------------------

    async def get_key(self, url: str, kid: str | None, alg: str) -> PublicKey:
        """The key for a token's (kid, alg) from the JWKS at `url`."""
        self._check_allowed(url)
        entry = self._entry(url, "jwks")
        keys = await self._current_keys(entry)
        found = keys.find(kid, alg)
        if found is not None:
            return found
        now = self._clock()
        if kid is not None:
            until = entry.negative.get(kid)
            if until is not None and now < until:
                raise KeyNotFound("unknown kid (recently looked for)")
        if self._may_fetch(entry, forced=True, now=now) or url in self._inflight:
            await self._fetch_shared(entry)
            keys = await self._current_keys(entry)
            found = keys.find(kid, alg)
            if found is not None:
                return found
        if kid is not None:
            self._remember_missing(entry, kid, now)
        raise KeyNotFound("no key for this kid in the issuer's key set")

    async def get_metadata(self, url: str, expected_issuer: str) -> Mapping[str, Any]:
        """The discovery document at `url`, whose `issuer` must be `expected_issuer`."""
        self._check_allowed(url)
        entry = self._entry(url, "metadata", expected_issuer)
        metadata: Mapping[str, Any] = await self._current(entry)
        return metadata

    def stats(self, url: str) -> dict[str, Any]:
        """Diagnostics for one URL: cached, key count, TTL, last error."""
        entry = self._entries.get(url)
        if entry is None:
            return {"cached": False}
        now = self._clock()
        return {
            "cached": entry.value is not None,
            "keys": len(entry.value) if isinstance(entry.value, KeySet) else None,
            "ttl": entry.ttl,
            "fresh": now < entry.expires_at,
            "error": entry.error,
        }

    # -- internals -----------------------------------------------------------------------

    def _entry(self, url: str, kind: _Kind, expected_issuer: str | None = None) -> _Entry:
        entry = self._entries.get(url)
        if entry is None or entry.kind != kind or entry.expected_issuer != expected_issuer:
            entry = _Entry(url=url, kind=kind, expected_issuer=expected_issuer)
            self._entries[url] = entry
            while len(self._entries) > self.max_issuers:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(url)
        return entry

    def _may_fetch(self, entry: _Entry, *, forced: bool, now: float) -> bool:
        if entry.failed or forced:
            return now - entry.last_attempt >= self.cooldown
        return True  # plain TTL expiry after a successful fetch

    async def _current_keys(self, entry: _Entry) -> KeySet:
        keys = await self._current(entry)
        assert isinstance(keys, KeySet)
        return keys

    async def _current(self, entry: _Entry) -> Any:
        """The entry's value, refreshed when expired; stale while refetching fails."""
        now = self._clock()
        if entry.value is not None and now < entry.expires_at:
            return entry.value
        if entry.url in self._inflight or self._may_fetch(entry, forced=False, now=now):
            await self._fetch_shared(entry)
            now = self._clock()
            if entry.value is not None and now < entry.expires_at:
                return entry.value
        if entry.value is not None and now < entry.stale_until:
            return entry.value  # stale-if-error (S31)
        raise JWKSUnavailable(
            f"{entry.url}: {entry.error or 'not fetched'} (next attempt after the cooldown)",
            retry_after=max(0.0, entry.last_attempt + self.cooldown - now),
        )

    async def _fetch_shared(self, entry: _Entry) -> None:
        loop = asyncio.get_running_loop()
        task = self._inflight.get(entry.url)
        if task is None or task.done() or task.get_loop() is not loop:
            entry.last_attempt = self._clock()  # the cooldown starts now, success or not
            task = loop.create_task(self._fetch(entry))
            self._inflight[entry.url] = task
            task.add_done_callback(lambda done: self._forget(entry.url, done))
        await asyncio.shield(task)

    def _forget(self, url: str, task: asyncio.Task[None]) -> None:
        if self._inflight.get(url) is task:
            del self._inflight[url]

    async def _fetch(self, entry: _Entry) -> None:
        """One GET; updates the entry and never raises (failures are recorded)."""
        try:
            async with asyncio.timeout(self.timeout):
                status, headers, body = await fetch_document(
                    self._client,
                    entry.url,
                    etag=entry.etag if entry.value is not None else None,
                    http_timeout=self.timeout,
                    max_bytes=self.max_bytes,
                )
            if status == 304 and entry.value is not None:
                self._store(entry, entry.value, headers, entry.etag)
                return
            if status != 200:
                raise FetchFailed(f"HTTP {status}")
            document = json.loads(body)
            value: Any
            if entry.kind == "jwks":
                value = parse_jwk_set(document, max_keys=self.max_keys)
                if not len(value):
                    raise FetchFailed("the key set holds no usable signature key")
            else:
                assert entry.expected_issuer is not None
                value = validate_metadata(
                    document, entry.expected_issuer, allow_http=entry.url in self._http_ok
                )
                self._discovered.add(value["jwks_uri"])
            self._store(entry, value, headers, headers.get("etag"))
        except Exception as error:  # any failure is recorded; waiters then see the entry
            entry.failed = True
            entry.error = f"{type(error).__name__}: {error}" if str(error) else repr(error)
            expected = (TimeoutError, httpx.HTTPError, FetchFailed, ValueError, RecursionError)
            if isinstance(error, expected):
                log.warning("fetching %s failed: %s", entry.url, entry.error)
            else:
                log.exception("fetching %s failed unexpectedly", entry.url)

    def _store(self, entry: _Entry, value: Any, headers: httpx.Headers, etag: str | None) -> None:
        cached_for = max_age(headers)
        ttl = self.ttl if cached_for is None else min(self.ttl, cached_for)
        ttl = max(ttl, self.min_ttl)
        now = self._clock()
        if value is not entry.value:
            entry.negative.clear()  # a new set: earlier misses say nothing about it
        entry.value = value
        entry.etag = etag
        entry.ttl = ttl
        entry.expires_at = now + ttl
        # Measured in configured TTLs, not the response's max-age: Auth0 sends max-age=15,
        # and an outage should not be survived for only a few minutes because of that.
        entry.stale_until = entry.expires_at + self.stale_if_error * self.ttl
        entry.failed = False
        entry.error = None

    def _remember_missing(self, entry: _Entry, kid: str, now: float) -> None:
        if self.negative_size == 0:
            return
        entry.negative[kid] = now + self.negative_ttl
        entry.negative.move_to_end(kid)
        while len(entry.negative) > self.negative_size:
            entry.negative.popitem(last=False)


_default: JWKSCache | None = None


def default_jwks_cache() -> JWKSCache:
    """The cache every verifier shares unless given its own: one fetch per issuer however
    many providers (or sign-in methods) name it. Safe to lose (it is only a cache)."""
    global _default
    if _default is None:
        _default = JWKSCache()
    return _default
