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

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .._callbacks import call_user
from ._client_ip import ClientIP, check_subnet, client_ip, normalize_ip
from ._ratelimit_storage import (
    ALLOWED,
    RATE_LIMIT_MODEL,
    RATE_LIMIT_SCHEMA,
    AccountStorage,
    DatabaseRateLimitStorage,
    MemoryRateLimitStorage,
    RateLimitResult,
    RateLimitStorage,
    RateRule,
    SecondaryRateLimitStorage,
)
from .crypto import sha256_base64url
from .db import Database
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

    result: RateLimitResult = ALLOWED
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
        check_subnet(ipv6_subnet)
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
            return ALLOWED
        path = normalize_path(path)
        rule = await self.rule_for(path, declared)
        if rule is None:
            return ALLOWED
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
