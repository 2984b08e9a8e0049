"""better-auth's rate limiter (spec §6.5) and the client address it counts (security S5, S6).

    resolve = ClientIP(trusted_proxies=["10.0.0.0/8"])          # once, at start-up
    limiter = RateLimiter(storage="database", database=db)     # or secondary=…, or memory
    ...
    result = await limiter.check("/sign-in/email", resolve(request.headers, request.client.host))
    if not result.allowed:   # 429 {"message": …}, X-Retry-After: result.retry_after

The rule for a path is the default (10 s / 100), replaced by the rule its endpoint declares
(better-auth's: sign-in, sign-up, password and email changes 10 s / 3, `CREDENTIAL_RULE`;
reset and verification mails 60 s / 3, `MAIL_RULE`), then by the first matching plugin rule,
then by the first matching custom rule, which may also be `None`/`False` (no limit) or a
function of the path and the rule so far. With `declared_only`, paths whose endpoint declares
no rule are not limited (`bastion serve`'s embedded default).

Requests are counted per `"<ip>|<path>"`. A request whose client address is unknown counts in
one bucket per path shared by all such requests, `"no-trusted-ip|<path>"`: failing closed.

On top of that, per account (S5), without handing anyone a way to lock the owner out:

    attempt = await limiter.account_attempt("/sign-in/email", email, ip)  # counts nothing
    if not attempt.result.allowed:   # 429, before any password is checked
    ...
    await attempt.count()            # after a wrong password
    await attempt.remember_client()  # after a right one

Failures are counted per (account, client address) — 5 per 5 min for sign-in — and, from
clients not known for the account, per account — 50 per 15 min: a distributed guessing attack
trips the latter. A client that signed in to the account before (remembered for 30 days, by
hashes of the account and its address) is exempt from the per-account ceiling, so a third
party who fails on purpose locks out only the addresses it uses, never the owner's usual one.
Mail requests (reset, verification) count every request, since each costs a mail. See
`AccountRule`, `SIGN_IN_ACCOUNT_RULE` and `MAIL_ACCOUNT_RULE`.

Storages: memory and database slide the window from the last allowed request (see
`_slide`); a SecondaryStorage counts in a fixed window with `increment`. All three decide
atomically, so N concurrent requests never let more than `max` through.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Literal, Protocol, TypeAlias, TypeVar, runtime_checkable

from .._callbacks import call_user
from .crypto import sha256_base64url
from .db import Database, DatabaseError, Field, Row, TableSpec, UniqueViolation, eq, in_, lt
from .storage import SecondaryStorage

__all__ = [
    "CREDENTIAL_RULE",
    "DEFAULT_RULE",
    "KNOWN_CLIENT_TTL",
    "MAIL_ACCOUNT_RULE",
    "MAIL_RULE",
    "NO_TRUSTED_IP",
    "RATE_LIMIT_MODEL",
    "RATE_LIMIT_SCHEMA",
    "SIGN_IN_ACCOUNT_RULE",
    "AccountAttempt",
    "AccountRule",
    "AccountStorage",
    "ClientIP",
    "CustomRule",
    "DatabaseRateLimitStorage",
    "MemoryRateLimitStorage",
    "PathMatcher",
    "RateLimitResult",
    "RateLimitStorage",
    "RateLimiter",
    "RateRule",
    "RuleDecision",
    "RuleFunction",
    "SecondaryRateLimitStorage",
    "StorageKind",
    "client_ip",
    "normalize_ip",
    "normalize_path",
    "path_matcher",
]

logger = logging.getLogger(__name__)

NO_TRUSTED_IP = "no-trusted-ip"
"""The address part of the shared key for requests with no known client address."""


@dataclass(frozen=True, slots=True)
class RateRule:
    """At most `max` requests per `window` seconds."""

    window: int
    max: int

    def __post_init__(self) -> None:
        for name in ("window", "max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RateRule.{name} must be a positive whole number, not {value!r}")


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """`retry_after`: whole seconds until a refused request may be retried (0 if allowed)."""

    allowed: bool
    retry_after: int = 0


_ALLOWED = RateLimitResult(True)

PathMatcher: TypeAlias = Callable[[str], bool]
RuleDecision: TypeAlias = RateRule | Literal[False] | None
RuleFunction: TypeAlias = Callable[[str, RateRule], RuleDecision | Awaitable[RuleDecision]]
"""A custom rule computed per request from the path and the rule that would apply."""
CustomRule: TypeAlias = RateRule | Literal[False] | RuleFunction | None

DEFAULT_RULE = RateRule(window=10, max=100)


CREDENTIAL_RULE = RateRule(window=10, max=3)
"""better-auth's rule for sign-in, sign-up, password and email changes: endpoints declare it."""
MAIL_RULE = RateRule(window=60, max=3)
"""better-auth's rule for reset and verification mails: endpoints declare it."""


@dataclass(frozen=True, slots=True)
class AccountRule:
    """How the failures about one account are limited (S5), on top of the per-IP rule.

    `per_client`: failures of the account from one client address (its rate-limit bucket).
    `per_account`: failures of the account from all the clients not known for it: what stops
    a guessing attack spread over many addresses. A client that signed in to the account
    before is known, and only its own `per_client` limit applies to it.
    """

    per_client: RateRule
    per_account: RateRule


SIGN_IN_ACCOUNT_RULE = AccountRule(
    per_client=RateRule(window=300, max=5), per_account=RateRule(window=900, max=50)
)
MAIL_ACCOUNT_RULE = AccountRule(
    per_client=RateRule(window=900, max=5), per_account=RateRule(window=3600, max=20)
)
"""Sign-in: 5 failures per 5 min from one address, 50 per 15 min from unknown ones (about
5,000 guesses a day at most against one account, wherever they come from). Mails: every
request counts, 5 per 15 min from one address, 20 an hour from unknown ones, so a victim's
inbox is not flooded (better-auth's per-IP 3 a minute still applies per address)."""

KNOWN_CLIENT_TTL = 30 * 86400
"""Seconds a client stays known for an account after it signed in to it."""


def normalize_path(path: str) -> str:
    """The path as rules see it: no query, no trailing slashes (`/sign-in/email/?x` →
    `/sign-in/email`), relative to the auth base path (the caller strips that)."""
    path = path.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return path or "/"


def path_matcher(pattern: str) -> PathMatcher:
    """A matcher for a path pattern, as better-auth's `wildcardMatch` reads one.

    Without wildcards the pattern is an exact path. `*` matches any characters within one
    segment (`/two-factor/*` matches `/two-factor/verify-totp`, not `/two-factor/a/b`), `**`
    any characters across segments, `?` one character other than `/`.
    """
    if not pattern.startswith("/") and not pattern.startswith("*"):
        raise ValueError(f"a path pattern starts with '/': {pattern!r}")
    if not any(c in pattern for c in "*?"):
        exact = normalize_path(pattern)
        return lambda path: path == exact
    parts = re.split(r"(\*\*|\*|\?)", pattern.rstrip("/") or "/")
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    regex = re.compile("".join(wild.get(p) or re.escape(p) for p in parts))
    return lambda path: regex.fullmatch(path) is not None


# -- client address (security S6) -------------------------------------------------------

_IPAddress: TypeAlias = IPv4Address | IPv6Address
_IPNetwork: TypeAlias = IPv4Network | IPv6Network


def _parse_ip(text: str) -> _IPAddress | None:
    """An address from a header or socket: `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        port = text[end + 1 :] if end > 0 else "?"
        if port and not (port[:1] == ":" and port[1:].isascii() and port[1:].isdigit()):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not (port.isascii() and port.isdigit()):
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1
    return address


def _bucket(address: _IPAddress, ipv6_subnet: int) -> str:
    """IPv4 as is; IPv6 as its /`ipv6_subnet` network, written out in full as better-auth
    does (`2001:0db8:0000:0000:0000:0000:0000:0000`): one host owns a whole /64, so counting
    single addresses would hand it 2^64 buckets."""
    if isinstance(address, IPv4Address):
        return str(address)
    drop = 128 - ipv6_subnet
    return IPv6Address(int(address) >> drop << drop).exploded


def _check_subnet(ipv6_subnet: int) -> None:
    if isinstance(ipv6_subnet, bool) or not 1 <= ipv6_subnet <= 128:
        raise ValueError(f"ipv6_subnet must be a prefix length from 1 to 128, not {ipv6_subnet!r}")


def normalize_ip(text: str, *, ipv6_subnet: int = 64) -> str | None:
    """The rate-limit bucket of an address (see `_bucket`); None if it is not an address."""
    address = _parse_ip(text)
    return None if address is None else _bucket(address, ipv6_subnet)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Every value of a header, joined with commas, as a proxy that adds a second
    X-Forwarded-For line instead of appending to the first means it."""
    getlist = getattr(headers, "getlist", None)  # Starlette's Headers, multidicts
    if callable(getlist):
        values = [str(v) for v in getlist(name)]
        return ",".join(values) if values else None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    found = [v for k, v in headers.items() if k.lower() == lowered]
    return ",".join(found) if found else None


@dataclass(frozen=True, slots=True)
class ClientIP:
    """How to find a request's client address. Build it once; call it per request.

    Security item S6. The direct peer (the TCP connection's address) is the client, unless
    it is one of `trusted_proxies` (addresses or CIDR ranges): then the client is the
    right-most address in the first `ip_headers` header that is not itself a trusted proxy.

    This is stricter than better-auth, which without `trustedProxies` believes a single-value
    X-Forwarded-For from anyone, and maps a multi-hop one to no address. Both are bad for a
    limiter: a client that connects directly can write any X-Forwarded-For, so a fresh made-up
    address per request would give it a fresh bucket per request (unlimited password guesses);
    and "no address" puts every proxied client into one shared bucket that one attacker can
    fill for everyone. The peer address cannot be forged, and a forwarded header is only as
    honest as the hop that wrote it, so only headers delivered by a trusted proxy count, and
    only the part of the chain that trusted proxies appended: whatever the client wrote
    itself is on the left of the first untrusted address.

    Returns None when IP tracking is disabled, when the peer is unknown or not an address,
    or when a trusted proxy forwarded no usable address (a malformed hop fails closed; so
    does a chain of trusted proxies only). IPv6 addresses are bucketed by /`ipv6_subnet`.
    """

    ip_headers: Sequence[str] = ("x-forwarded-for",)
    trusted_proxies: Sequence[str] = ()
    disable_ip_tracking: bool = False
    ipv6_subnet: int = 64
    _networks: tuple[_IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.ip_headers, str) or isinstance(self.trusted_proxies, str):
            raise TypeError("ip_headers and trusted_proxies are sequences of strings")
        _check_subnet(self.ipv6_subnet)
        networks: list[_IPNetwork] = []
        for entry in self.trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"trusted proxy {entry!r} is not an address or range") from None
        object.__setattr__(self, "ip_headers", tuple(h.lower() for h in self.ip_headers))
        object.__setattr__(self, "trusted_proxies", tuple(self.trusted_proxies))
        object.__setattr__(self, "_networks", tuple(networks))

    def __call__(self, headers: Mapping[str, str], peer: str | None) -> str | None:
        if self.disable_ip_tracking or peer is None:
            return None
        address = _parse_ip(peer)
        if address is None:
            return None
        if not self._trusted(address):
            return _bucket(address, self.ipv6_subnet)
        for name in self.ip_headers:
            value = _header(headers, name)
            if value is not None:
                found = self._from_chain(value)
                if found is not None:
                    return found
        return None

    def _trusted(self, address: _IPAddress) -> bool:
        return any(address in network for network in self._networks)

    def _from_chain(self, value: str) -> str | None:
        for hop in reversed([h for h in value.split(",") if h.strip()]):
            address = _parse_ip(hop)
            if address is None:
                return None
            if not self._trusted(address):
                return _bucket(address, self.ipv6_subnet)
        return None


def client_ip(
    headers: Mapping[str, str],
    peer: str | None,
    *,
    ip_headers: Sequence[str] = ("x-forwarded-for",),
    trusted_proxies: Sequence[str] = (),
    disable_ip_tracking: bool = False,
    ipv6_subnet: int = 64,
) -> str | None:
    """`ClientIP(...)(headers, peer)` in one call; build a ClientIP to parse the options once."""
    resolve = ClientIP(
        ip_headers=ip_headers,
        trusted_proxies=trusted_proxies,
        disable_ip_tracking=disable_ip_tracking,
        ipv6_subnet=ipv6_subnet,
    )
    return resolve(headers, peer)


# -- storages -------------------------------------------------------------------------------


@runtime_checkable
class RateLimitStorage(Protocol):
    """Counts one request under `key` and decides it, atomically (better-auth's
    `customStorage.consume`). `now` is the time in milliseconds since the epoch."""

    async def consume(self, key: str, rule: RateRule, now: int) -> RateLimitResult: ...


@runtime_checkable
class AccountStorage(RateLimitStorage, Protocol):
    """What the per-account limits need beyond `consume` (all three built-in storages).

    `peek` decides as `consume` would, counting nothing; `remember` keeps `key` for
    `seconds`; `remembers` says whether it is still kept. A storage of your own without
    these keeps the per-account state in this process's memory.
    """

    async def peek(self, key: str, rule: RateRule, now: int) -> RateLimitResult: ...

    async def remember(self, key: str, seconds: int, now: int) -> None: ...

    async def remembers(self, key: str, now: int) -> bool: ...


_State: TypeAlias = tuple[int, int]  # (count, lastRequest in ms)


def _slide(
    current: _State | None, rule: RateRule, now: int
) -> tuple[RateLimitResult, _State | None]:
    """better-auth's algorithm: the decision and the new state (None: nothing to write).

    1. A window or more since the last allowed request (or none yet): start again at 1.
    2. Else at `max` already: refuse, until a window after the last allowed request.
    3. Else count it, and the window now runs from this request.
    """
    window = rule.window * 1000
    if current is None or now - current[1] >= window:
        return _ALLOWED, (1, now)
    count, last = current
    if count >= rule.max:
        return RateLimitResult(False, -((now - last - window) // 1000)), None  # ceil
    return _ALLOWED, (count + 1, now)


class MemoryRateLimitStorage:
    """Counters in this process, for this limiter only. A decision awaits nothing, so it is
    atomic for one event loop. Entries expire a window after their last allowed request;
    past `max_entries` the least recently counted are dropped."""

    def __init__(self, *, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: dict[str, tuple[int, int, int]] = {}  # key -> count, last, expires
        # Known clients apart from the counters: a flood of fresh counter keys (an attacker
        # can make those, a known client it cannot) must not evict them.
        self._known: dict[str, int] = {}  # key -> expires

    async def consume(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        result, state = _slide(self._current(key, now), rule, now)
        if state is not None:
            if self._entries.pop(key, None) is None and len(self._entries) >= self._max_entries:
                _make_room(self._entries, self._max_entries, lambda e: e[2] <= now)
            self._entries[key] = (*state, state[1] + rule.window * 1000)
        return result

    async def peek(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        return _slide(self._current(key, now), rule, now)[0]

    async def remember(self, key: str, seconds: int, now: int) -> None:
        if self._known.pop(key, None) is None and len(self._known) >= self._max_entries:
            _make_room(self._known, self._max_entries, lambda expires: expires <= now)
        self._known[key] = now + seconds * 1000

    async def remembers(self, key: str, now: int) -> bool:
        return now < self._known.get(key, now)

    def __len__(self) -> int:
        return len(self._entries)

    def _current(self, key: str, now: int) -> _State | None:
        entry = self._entries.get(key)
        return entry[:2] if entry is not None and now < entry[2] else None


_V = TypeVar("_V")


def _make_room(entries: dict[str, _V], max_entries: int, expired: Callable[[_V], bool]) -> None:
    """Drop the expired entries, then the least recently written, to make room for one."""
    for key in [k for k, e in entries.items() if expired(e)]:
        del entries[key]
    overflow = len(entries) - max_entries + 1
    for key in list(entries)[: max(overflow, 0)]:
        del entries[key]


RATE_LIMIT_MODEL = "rateLimit"

RATE_LIMIT_SCHEMA: Mapping[str, TableSpec] = {
    RATE_LIMIT_MODEL: TableSpec(
        fields={
            "key": Field(type="string", unique=True),
            "count": Field(type="number"),
            "lastRequest": Field(type="number", bigint=True),
        }
    )
}
"""better-auth's `rateLimit` table (§8.2): `Database(url, schema=CORE_SCHEMA.extend(this))`."""


class DatabaseRateLimitStorage:
    """Counters in the `rateLimit` table (add RATE_LIMIT_SCHEMA to the schema), shared by
    every process using the database.

    Each decision is one transaction that first locks the key's row, then reads and writes
    it, so concurrent requests queue and none is lost. A key's first request inserts the
    row; when two race, the unique key lets one win, and the loser counts against its row.
    Rows idle for `retention` seconds (or the longest window seen, if longer) are deleted,
    at most once per `prune_interval` seconds. A remembered key's row holds its expiry in
    `lastRequest` (a time to come), so the same pruning removes it only once it expired.
    """

    _ATTEMPTS = 4

    def __init__(self, db: Database, *, retention: int = 3600, prune_interval: int = 300) -> None:
        if RATE_LIMIT_MODEL not in db.schema:
            raise ValueError(
                "the database schema has no rateLimit table: "
                "use CORE_SCHEMA.extend(RATE_LIMIT_SCHEMA)"
            )
        self.db = db
        self.retention = retention
        self.prune_interval = prune_interval
        self._next_prune: int | None = None

    async def consume(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        self.retention = max(self.retention, rule.window)
        for _ in range(self._ATTEMPTS):
            result = await self._consume_once(key, rule, now)
            if result is not None:
                await self._maybe_prune(now)
                return result
        # Only reachable if the row vanished (pruned) between each of our steps, repeatedly.
        logger.warning("rate limit for %r undecided after %d attempts", key, self._ATTEMPTS)
        return RateLimitResult(False, rule.window)

    async def peek(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        row = await self.db.find_one(RATE_LIMIT_MODEL, eq("key", key), select=_COLUMNS)
        return _slide(None if row is None else _state(row), rule, now)[0]

    async def remember(self, key: str, seconds: int, now: int) -> None:
        values = {"count": 1, "lastRequest": now + seconds * 1000}
        for _ in range(self._ATTEMPTS):
            if await self.db.update_many(RATE_LIMIT_MODEL, eq("key", key), values):
                return
            try:
                await self.db.create(RATE_LIMIT_MODEL, {"key": key, **values})
                return
            except UniqueViolation:
                continue  # created meanwhile: update that row

    async def remembers(self, key: str, now: int) -> bool:
        row = await self.db.find_one(RATE_LIMIT_MODEL, eq("key", key), select=_COLUMNS)
        return row is not None and now < int(row["lastRequest"])

    async def _consume_once(self, key: str, rule: RateRule, now: int) -> RateLimitResult | None:
        where = eq("key", key)
        row = await self.db.find_one(RATE_LIMIT_MODEL, where, select=("count", "lastRequest"))
        if row is not None:
            result, state = _slide(_state(row), rule, now)
            if state is None:
                # A refusal writes nothing, so it may be decided on this plain read: the
                # count only grows until a window has passed, and a window has not.
                return result
            async with self.db.transaction() as tx:
                # Lock the row with a write that changes nothing, then read it: the read sees
                # what the lock's previous holder committed (PostgreSQL's READ COMMITTED
                # reads afresh per statement; InnoDB's REPEATABLE READ takes its snapshot at
                # the first plain read, after the lock; SQLite has one writer).
                if await tx.update_many(RATE_LIMIT_MODEL, where, {"key": key}):
                    row = await tx.find_one(
                        RATE_LIMIT_MODEL, where, select=("count", "lastRequest")
                    )
                    if row is not None:
                        result, state = _slide(_state(row), rule, now)
                        if state is not None:
                            values = {"count": state[0], "lastRequest": state[1]}
                            await tx.update_many(RATE_LIMIT_MODEL, where, values)
                        return result
        try:
            await self.db.create(RATE_LIMIT_MODEL, {"key": key, "count": 1, "lastRequest": now})
        except UniqueViolation:
            return None  # a concurrent request created it: count against that row
        return _ALLOWED

    async def _maybe_prune(self, now: int) -> None:
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + self.prune_interval * 1000
        cutoff = now - self.retention * 1000
        try:
            for _ in range(20):
                # Found with a plain read, deleted by key: only those rows are locked.
                rows = await self.db.find_many(
                    RATE_LIMIT_MODEL, lt("lastRequest", cutoff), select=("key",), limit=500
                )
                keys = [r["key"] for r in rows]
                if keys:
                    stale = in_("key", keys) & lt("lastRequest", cutoff)
                    await self.db.delete_many(RATE_LIMIT_MODEL, stale)
                if len(keys) < 500:
                    break
        except DatabaseError:
            logger.exception("pruning the rateLimit table failed")


_COLUMNS = ("count", "lastRequest")


def _state(row: Row) -> _State:
    return int(row["count"]), int(row["lastRequest"])


class SecondaryRateLimitStorage:
    """Counters in a SecondaryStorage: a fixed window opened by the first request
    (`increment(key, ttl=window)`); over `max`, refused for `window` seconds."""

    def __init__(self, storage: SecondaryStorage) -> None:
        self.storage = storage

    async def consume(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        count = await self.storage.increment(key, rule.window)
        return _ALLOWED if count <= rule.max else RateLimitResult(False, rule.window)

    async def peek(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        value = await self.storage.get(key)
        count = int(value) if value is not None and value.isdigit() else 0
        # The window's end is not known here: a whole window, as `consume` answers.
        return _ALLOWED if count < rule.max else RateLimitResult(False, rule.window)

    async def remember(self, key: str, seconds: int, now: int) -> None:
        await self.storage.set(key, "1", ttl=seconds)

    async def remembers(self, key: str, now: int) -> bool:
        return await self.storage.get(key) is not None


# -- the limiter ----------------------------------------------------------------------------


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


StorageKind: TypeAlias = Literal["memory", "database", "secondary-storage"]


@dataclass(frozen=True, slots=True)
class _AccountKeys:
    storage: AccountStorage
    rule: AccountRule
    client: str  # failures of the account from this client
    account: str  # failures of the account from clients not known for it
    known: str | None  # marks this client as known for the account; None: it cannot be
    is_known: bool
    now_ms: Callable[[], int]


@dataclass(frozen=True, slots=True)
class AccountAttempt:
    """One attempt about an account, from `RateLimiter.account_attempt`: `result` says
    whether it may go on (decided before any password is checked, counting nothing); then
    `count()` after a failure, or `remember_client()` after a successful sign-in.

    Deciding first and counting after lets a few concurrent guesses pass the check
    together before any is counted; the per-IP rule of the path bounds how many one
    address has in flight (3 per 10 s for sign-in).
    """

    result: RateLimitResult = _ALLOWED
    _keys: _AccountKeys | None = None  # None: not limited (`AccountAttempt()`)

    async def count(self) -> None:
        """Count a failure (a wrong password; any request for a mail) against the client
        and, unless the client is known for the account, the account."""
        keys = self._keys
        if keys is None:
            return
        now = keys.now_ms()
        await keys.storage.consume(keys.client, keys.rule.per_client, now)
        if not keys.is_known:
            await keys.storage.consume(keys.account, keys.rule.per_account, now)

    async def remember_client(self) -> None:
        """The client signed in to the account: known for it for KNOWN_CLIENT_TTL seconds."""
        keys = self._keys
        if keys is not None and keys.known is not None:
            await keys.storage.remember(keys.known, KNOWN_CLIENT_TTL, keys.now_ms())


class RateLimiter:
    """better-auth's rate limiter: `await check(path, ip)` before running an endpoint.

    `window`/`max` make the default rule. `storage` is better-auth's choice, "memory" (this
    process), "database" (the `rateLimit` table of `database`) or "secondary-storage"
    (`secondary`, fixed windows), or a RateLimitStorage of your own; by default secondary
    storage when `secondary` is given, else the database when `database` is, else memory.
    `plugin_rules` are `(matcher, rule)` pairs, a matcher being a predicate on the path or a
    `path_matcher` pattern. `custom_rules` map exact paths or wildcard patterns to a rule (or
    `{"window", "max"}`), to `None`/`False` (no limit) or to a function `(path, rule) -> rule |
    None | False`, sync or async. `account_rules` map paths or patterns to an AccountRule (or
    `{"per_client": {"window", "max"}, "per_account": {...}}`), before the caller's default.
    `declared_only`: limit only requests whose endpoint declares a rule.
    `now_ms` is the clock, in milliseconds since the epoch.
    """

    def __init__(
        self,
        *,
        window: int = DEFAULT_RULE.window,
        max: int = DEFAULT_RULE.max,
        storage: StorageKind | RateLimitStorage | None = None,
        database: Database | None = None,
        secondary: SecondaryStorage | None = None,
        enabled: bool = True,
        plugin_rules: Sequence[tuple[PathMatcher | str, RateRule]] = (),
        custom_rules: Mapping[str, CustomRule | Mapping[str, int]] | None = None,
        account_rules: Mapping[str, AccountRule | Mapping[str, Mapping[str, int]]] | None = None,
        ipv6_subnet: int = 64,
        declared_only: bool = False,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        _check_subnet(ipv6_subnet)
        self.default = RateRule(window=window, max=max)
        self.storage = _storage(storage, database, secondary)
        self._accounts: AccountStorage = (
            self.storage if isinstance(self.storage, AccountStorage) else MemoryRateLimitStorage()
        )
        self._account_rules = [
            (path_matcher(pattern), _account_rule(pattern, rule))
            for pattern, rule in (account_rules or {}).items()
        ]
        self.declared_only = declared_only
        self.enabled = enabled
        self.ipv6_subnet = ipv6_subnet
        self._now_ms = now_ms
        self._plugin_rules = [
            (path_matcher(m) if isinstance(m, str) else m, rule) for m, rule in plugin_rules
        ]
        self._custom_rules: list[tuple[PathMatcher, CustomRule]] = []
        for pattern, custom in (custom_rules or {}).items():
            if isinstance(custom, Mapping):  # {"window": 10, "max": 3}, as in better-auth
                custom = RateRule(**custom)
            elif not (custom is None or custom is False or isinstance(custom, RateRule)) and (
                not callable(custom)
            ):
                raise TypeError(f"custom rule for {pattern!r} is not a RateRule: {custom!r}")
            self._custom_rules.append((path_matcher(pattern), custom))

    async def check(
        self, path: str, ip: str | None, declared: RateRule | None = None
    ) -> RateLimitResult:
        """Count this request to `path` (relative to the base path) from client `ip` (from
        ClientIP; None if unknown) and say whether it may go on. `declared`: the rule the
        path's endpoint declares."""
        if not self.enabled:
            return _ALLOWED
        path = normalize_path(path)
        rule = await self.rule_for(path, declared)
        if rule is None:
            return _ALLOWED
        bucket = normalize_ip(ip, ipv6_subnet=self.ipv6_subnet) if ip else None
        key = f"{bucket or NO_TRUSTED_IP}|{path}"
        return await self.storage.consume(key, rule, self._now_ms())

    async def account_attempt(
        self,
        path: str,
        account: str,
        ip: str | None,
        *,
        declared: RateRule | None = None,
        rule: AccountRule = SIGN_IN_ACCOUNT_RULE,
    ) -> AccountAttempt:
        """Decide an attempt at `path` about `account` (an email) from client `ip`, counting
        nothing (S5; see AccountRule). Refused while the client has had `per_client`
        failures of this account, or, when it is not known for the account, while the
        account has had `per_account` failures from unknown clients. Off where the path is
        not limited. `declared` is the endpoint's per-IP rule; `rule` applies unless an
        `account_rules` pattern matches the path. The keys hold hashes of the account and
        address, not them."""
        if not self.enabled:
            return AccountAttempt()
        path = normalize_path(path)
        if await self.rule_for(path, declared) is None:
            return AccountAttempt()
        rule = next((r for matches, r in self._account_rules if matches(path)), rule)
        bucket = normalize_ip(ip, ipv6_subnet=self.ipv6_subnet) if ip else None
        account_hash = sha256_base64url(account.strip().lower())
        client_hash = sha256_base64url(f"{account_hash}|{bucket or NO_TRUSTED_IP}")
        # A request without a known address is never a known client: failing closed.
        known = None if bucket is None else f"known:{client_hash}"
        storage, now = self._accounts, self._now_ms()
        is_known = known is not None and await storage.remembers(known, now)
        keys = _AccountKeys(
            storage=storage,
            rule=rule,
            client=f"account:{client_hash}|{path}",
            account=f"account:{account_hash}|{path}",
            known=known,
            is_known=is_known,
            now_ms=self._now_ms,
        )
        result = await storage.peek(keys.client, rule.per_client, now)
        if result.allowed and not is_known:
            result = await storage.peek(keys.account, rule.per_account, now)
        return AccountAttempt(result, keys)

    async def rule_for(self, path: str, declared: RateRule | None = None) -> RateRule | None:
        """The rule for a (normalized) path whose endpoint declares `declared`, or None when
        it is not limited."""
        if declared is None and self.declared_only:
            return None
        rule = declared or self.default
        for matches, plugin_rule in self._plugin_rules:
            if matches(path):
                rule = plugin_rule
                break
        for matches, custom in self._custom_rules:
            if matches(path):
                decided = await call_user(custom, path, rule) if callable(custom) else custom
                if decided is None or decided is False:
                    return None
                if not isinstance(decided, RateRule):
                    raise TypeError(f"custom rule for {path!r} returned {decided!r}")
                return decided
        return rule


def _account_rule(pattern: str, rule: AccountRule | Mapping[str, Mapping[str, int]]) -> AccountRule:
    if isinstance(rule, AccountRule):
        return rule
    if isinstance(rule, Mapping) and set(rule) == {"per_client", "per_account"}:
        return AccountRule(
            per_client=RateRule(**rule["per_client"]), per_account=RateRule(**rule["per_account"])
        )
    raise TypeError(f"account rule for {pattern!r} is not an AccountRule: {rule!r}")


def _storage(
    storage: StorageKind | RateLimitStorage | None,
    database: Database | None,
    secondary: SecondaryStorage | None,
) -> RateLimitStorage:
    if storage is None:
        if secondary is not None:
            storage = "secondary-storage"
        else:
            storage = "database" if database is not None else "memory"
    if storage == "memory":
        return MemoryRateLimitStorage()
    if storage == "database":
        if database is None:
            raise ValueError('storage="database" needs database=')
        return DatabaseRateLimitStorage(database)
    if storage == "secondary-storage":
        if secondary is None:
            raise ValueError('storage="secondary-storage" needs secondary=')
        return SecondaryRateLimitStorage(secondary)
    if isinstance(storage, RateLimitStorage):
        return storage
    raise TypeError(f"not a rate-limit storage: {storage!r}")
