"""The rate limiter (spec §6.5) on every storage, and the client address it counts (S5, S6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio
from starlette.datastructures import Headers

from bastion.identity import Identity
from bastion.identity.db import CORE_SCHEMA, Database, migrate
from bastion.identity.ratelimit import (
    CREDENTIAL_RULE,
    MAIL_RULE,
    NO_TRUSTED_IP,
    RATE_LIMIT_SCHEMA,
    ClientIP,
    DatabaseRateLimitStorage,
    MemoryRateLimitStorage,
    RateLimiter,
    RateLimitResult,
    RateRule,
    client_ip,
    normalize_ip,
    path_matcher,
)
from bastion.identity.storage import MemoryStorage, RedisStorage
from tests.identity.test_storage import advance_redis, redis_scratch

SCHEMA = CORE_SCHEMA.extend(RATE_LIMIT_SCHEMA)
START = 1_700_000_000_000  # ms; beyond 32 bits, so lastRequest must be a bigint
IP = "198.51.100.7"
SIGN_IN = "/sign-in/email"
REFUSED_NOW = RateLimitResult(False, 10)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@dataclass
class Backend:
    """One storage under test, a clock, and a way to let time pass for both."""

    name: str
    clock: Clock
    storage: dict[str, Any]  # RateLimiter's storage arguments
    sliding: bool  # memory and database slide; secondary storage counts fixed windows
    redis: tuple[redis.asyncio.Redis, str] | None = None

    def limiter(self, **options: Any) -> RateLimiter:
        return RateLimiter(now_ms=self.clock, **self.storage, **options)

    async def advance(self, seconds: float) -> None:
        self.clock.now += round(seconds * 1000)
        if self.redis is not None:
            await advance_redis(*self.redis, seconds)


@pytest.fixture(params=["memory", "database", "secondary-memory", "secondary-redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    clock = Clock()
    if request.param == "memory":
        yield Backend("memory", clock, {"storage": "memory"}, sliding=True)
    elif request.param == "database":
        async with Database("sqlite://", schema=SCHEMA) as db:
            await migrate(db)
            yield Backend("database", clock, {"storage": "database", "database": db}, True)
    elif request.param == "secondary-memory":
        storage = MemoryStorage(clock=lambda: clock.now / 1000)
        yield Backend("secondary-memory", clock, {"secondary": storage}, sliding=False)
    else:
        async with redis_scratch() as (client, prefix):
            kwargs = {"secondary": RedisStorage(client=client, prefix=prefix)}
            yield Backend("secondary-redis", clock, kwargs, sliding=False, redis=(client, prefix))


async def checks(
    limiter: RateLimiter,
    n: int,
    path: str = SIGN_IN,
    ip: str | None = IP,
) -> list[bool]:
    """`n` requests to `path`, with the rule its core endpoint declares."""
    declared = DECLARED.get(path.split("?")[0].rstrip("/"))
    return [(await limiter.check(path, ip, declared)).allowed for _ in range(n)]


DECLARED = {
    SIGN_IN: CREDENTIAL_RULE,
    "/sign-up/email": CREDENTIAL_RULE,
    "/request-password-reset": MAIL_RULE,
    "/send-verification-email": MAIL_RULE,
}


# -- the algorithm, on every storage --------------------------------------------------------


async def test_sign_in_allows_three_then_answers_429(backend: Backend) -> None:
    """S5: the fourth sign-in within 10 s from one address is refused, with a retry delay."""
    limiter = backend.limiter()
    assert await checks(limiter, 3) == [True, True, True]
    assert await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE) == REFUSED_NOW
    assert await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE) == REFUSED_NOW


async def test_retry_after(backend: Backend) -> None:
    """S5: the delay is what is left of the window (sliding) or the whole window (fixed)."""
    limiter = backend.limiter()
    await checks(limiter, 3)
    await backend.advance(3.5)
    result = await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE)
    assert result == RateLimitResult(False, 7 if backend.sliding else 10)


async def test_window_reset(backend: Backend) -> None:
    limiter = backend.limiter()
    await checks(limiter, 4)
    await backend.advance(10)
    assert await checks(limiter, 4) == [True, True, True, False]


@pytest.mark.parametrize("backend", ["memory", "database"], indirect=True)
async def test_the_window_slides_from_the_last_allowed_request(backend: Backend) -> None:
    limiter = backend.limiter()
    for _ in range(3):
        assert (await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE)).allowed
        await backend.advance(1)  # allowed at 0, 1 and 2 s
    assert await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE) == RateLimitResult(False, 9)
    await backend.advance(8.999)  # refusals do not move the window
    assert await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE) == RateLimitResult(False, 1)
    await backend.advance(0.001)  # 10 s after the last allowed one: start again
    assert await checks(limiter, 4) == [True, True, True, False]


@pytest.mark.parametrize("backend", ["secondary-memory", "secondary-redis"], indirect=True)
async def test_secondary_storage_counts_a_fixed_window(backend: Backend) -> None:
    limiter = backend.limiter()
    for _ in range(3):
        assert (await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE)).allowed
        await backend.advance(1)
    assert await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE) == RateLimitResult(False, 10)
    await backend.advance(7)  # 10 s after the first request
    assert await checks(limiter, 4) == [True, True, True, False]


async def test_each_path_and_address_has_its_own_count(backend: Backend) -> None:
    limiter = backend.limiter()
    await checks(limiter, 4)
    assert (await limiter.check("/sign-up/email", IP, CREDENTIAL_RULE)).allowed
    assert (await limiter.check("/get-session", IP)).allowed
    assert (await limiter.check(SIGN_IN, "203.0.113.1", CREDENTIAL_RULE)).allowed


async def test_query_and_trailing_slash_do_not_make_new_paths(backend: Backend) -> None:
    limiter = backend.limiter()
    for path in (SIGN_IN, SIGN_IN + "/", SIGN_IN + "?a=1"):
        assert (await limiter.check(path, IP)).allowed
    assert not (await limiter.check(SIGN_IN + "//?b=2", IP, CREDENTIAL_RULE)).allowed


async def test_default_rule(backend: Backend) -> None:
    limiter = backend.limiter(window=5, max=2)
    assert await checks(limiter, 3, "/get-session") == [True, True, False]
    assert await limiter.check("/get-session", IP) == RateLimitResult(False, 5)
    assert await checks(limiter, 4) == [True, True, True, False]  # special rules still apply


async def test_mail_sending_paths_allow_three_a_minute(backend: Backend) -> None:
    """S5: reset and verification mails, 3 per 60 s."""
    limiter = backend.limiter()
    assert await checks(limiter, 4, "/request-password-reset") == [True, True, True, False]
    assert await limiter.check("/request-password-reset", IP, MAIL_RULE) == RateLimitResult(
        False, 60
    )


async def test_custom_and_plugin_rules_apply_on_every_storage(backend: Backend) -> None:
    limiter = backend.limiter(
        plugin_rules=[("/two-factor/*", RateRule(window=10, max=2))],
        custom_rules={"/get-session": False, "/sign-in/*": RateRule(window=30, max=1)},
    )
    assert await checks(limiter, 3, "/two-factor/verify-totp") == [True, True, False]
    assert await checks(limiter, 200, "/get-session") == [True] * 200
    assert await checks(limiter, 2) == [True, False]
    assert await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE) == RateLimitResult(False, 30)


async def test_concurrent_requests_let_exactly_max_through(backend: Backend) -> None:
    """S5: 50 simultaneous guesses against a limit of 10 let 10 through, not more."""
    limiter = backend.limiter(custom_rules={"/verify": RateRule(window=60, max=10)})
    results = await asyncio.gather(*(limiter.check("/verify", IP) for _ in range(50)))
    assert sum(r.allowed for r in results) == 10


async def test_requests_without_a_client_address_share_one_bucket(backend: Backend) -> None:
    """S6: no trusted address fails closed into `no-trusted-ip|<path>`, not into no limit."""
    limiter = backend.limiter()
    assert await checks(limiter, 4, ip=None) == [True, True, True, False]
    assert not (await limiter.check(SIGN_IN, "not an address", CREDENTIAL_RULE)).allowed
    assert (await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE)).allowed


async def test_ipv6_addresses_are_counted_per_64(backend: Backend) -> None:
    """S6: rotating addresses inside one /64 does not make fresh buckets."""
    limiter = backend.limiter()
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:ffff"):
        assert (await limiter.check(SIGN_IN, host, CREDENTIAL_RULE)).allowed
    assert not (await limiter.check(SIGN_IN, "2001:db8:1:2:abcd::9", CREDENTIAL_RULE)).allowed
    assert (await limiter.check(SIGN_IN, "2001:db8:1:3::1", CREDENTIAL_RULE)).allowed


async def test_disabled_limiter_allows_everything(backend: Backend) -> None:
    limiter = backend.limiter(enabled=False)
    assert await checks(limiter, 10) == [True] * 10


# -- the database storage on every dialect ---------------------------------------------------


@pytest.fixture
async def dialect_db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url, schema=SCHEMA) as db:
        await migrate(db)
        yield db


async def test_database_storage_on_every_dialect(dialect_db: Database) -> None:
    """S5 on SQLite, PostgreSQL and MariaDB: 3 sign-ins, then 429 with the time left."""
    clock = Clock()
    limiter = RateLimiter(storage="database", database=dialect_db, now_ms=clock)
    assert await checks(limiter, 3) == [True, True, True]
    clock.now += 3500
    assert await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE) == RateLimitResult(False, 7)
    row = await dialect_db.find_one("rateLimit", {"key": f"{IP}|{SIGN_IN}"})
    assert row is not None
    assert (row["count"], row["lastRequest"]) == (3, START)
    clock.now += 6500
    assert await checks(limiter, 4) == [True, True, True, False]
    assert await dialect_db.count("rateLimit") == 1


async def test_database_storage_concurrency_on_every_dialect(dialect_db: Database) -> None:
    """S5: concurrent requests on a new key (the insert race) and on an existing row (the
    locked update) let exactly `max` through, on every dialect."""
    clock = Clock()
    rules = {"/verify": RateRule(window=60, max=10)}
    limiter = RateLimiter(storage="database", database=dialect_db, custom_rules=rules, now_ms=clock)
    for _ in range(2):
        results = await asyncio.gather(*(limiter.check("/verify", IP) for _ in range(50)))
        assert sum(r.allowed for r in results) == 10
        row = await dialect_db.find_one("rateLimit", {"key": f"{IP}|/verify"})
        assert row is not None and row["count"] == 10
        clock.now += 60_000
    # Part-way through a window, too.
    assert await checks(limiter, 4, "/verify") == [True] * 4
    results = await asyncio.gather(*(limiter.check("/verify", IP) for _ in range(20)))
    assert sum(r.allowed for r in results) == 6


async def test_database_storage_prunes_idle_rows(dialect_db: Database) -> None:
    clock = Clock()
    storage = DatabaseRateLimitStorage(dialect_db, retention=60, prune_interval=10)
    limiter = RateLimiter(storage=storage, now_ms=clock)
    await limiter.check("/get-session", "192.0.2.1")
    clock.now += 45_000
    await limiter.check("/get-session", "192.0.2.2")
    clock.now += 16_000  # the first row is 61 s old, the second 16 s
    await limiter.check("/get-session", "192.0.2.3")
    keys = {r["key"] for r in await dialect_db.find_many("rateLimit")}
    assert keys == {"192.0.2.2|/get-session", "192.0.2.3|/get-session"}


async def test_database_storage_needs_the_table() -> None:
    async with Database("sqlite://") as db:
        with pytest.raises(ValueError, match="RATE_LIMIT_SCHEMA"):
            RateLimiter(storage="database", database=db)


# -- choosing the storage --------------------------------------------------------------------


async def test_storage_choice() -> None:
    assert isinstance(RateLimiter().storage, MemoryRateLimitStorage)
    with pytest.raises(ValueError, match="database="):
        RateLimiter(storage="database")
    with pytest.raises(ValueError, match="secondary="):
        RateLimiter(storage="secondary-storage")
    with pytest.raises(TypeError):
        RateLimiter(storage="redis")  # type: ignore[arg-type]


async def test_secondary_storage_is_the_default_when_given() -> None:
    storage = MemoryStorage()
    limiter = RateLimiter(secondary=storage)
    await limiter.check(SIGN_IN, IP, CREDENTIAL_RULE)
    assert await storage.get(f"{IP}|{SIGN_IN}") == "1"


@dataclass
class Recording:
    calls: list[tuple[str, RateRule, int]] = field(default_factory=list)

    async def consume(self, key: str, rule: RateRule, now: int) -> RateLimitResult:
        self.calls.append((key, rule, now))
        return RateLimitResult(False, 42)


async def test_a_storage_of_your_own() -> None:
    storage = Recording()
    limiter = RateLimiter(storage=storage, now_ms=Clock())
    assert await limiter.check(SIGN_IN + "/", None, CREDENTIAL_RULE) == RateLimitResult(False, 42)
    assert storage.calls == [(f"{NO_TRUSTED_IP}|{SIGN_IN}", RateRule(10, 3), START)]


async def test_memory_storage_is_bounded() -> None:
    storage = MemoryRateLimitStorage(max_entries=100)
    limiter = RateLimiter(storage=storage, now_ms=Clock())
    for i in range(250):
        await limiter.check("/get-session", f"192.0.2.{i}")
    assert len(storage) == 100


# -- which rule applies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("sign_in_email", RateRule(10, 3)),
        ("sign_up_email", RateRule(10, 3)),
        ("change_password", RateRule(10, 3)),
        ("change_email", RateRule(10, 3)),
        ("request_password_reset", RateRule(60, 3)),
        ("send_verification_email", RateRule(60, 3)),
        ("get_session", None),
        ("reset_password", None),
    ],
)
async def test_core_endpoints_declare_better_auths_rules(name: str, rule: RateRule | None) -> None:
    """better-auth's special rules are declared by the endpoints, not matched by path."""
    endpoint = Identity(database="sqlite://", env={}).endpoints[name]
    assert endpoint.rate_limit == rule
    limiter = RateLimiter()
    assert await limiter.rule_for(endpoint.path, endpoint.rate_limit) == (rule or RateRule(10, 100))
    only_declared = RateLimiter(declared_only=True)
    assert await only_declared.rule_for(endpoint.path, endpoint.rate_limit) == rule


async def test_first_matching_plugin_rule_beats_the_built_in_ones() -> None:
    limiter = RateLimiter(
        plugin_rules=[
            (lambda path: path.startswith("/two-factor/"), RateRule(10, 3)),
            ("/sign-in/*", RateRule(30, 5)),
            ("/sign-in/email", RateRule(1, 1)),  # never reached: the one above matches first
            ("/magic-link/verify", RateRule(60, 5)),
        ]
    )
    assert await limiter.rule_for("/two-factor/verify-totp") == RateRule(10, 3)
    assert await limiter.rule_for("/sign-in/email", RateRule(10, 3)) == RateRule(30, 5)
    assert await limiter.rule_for("/magic-link/verify") == RateRule(60, 5)
    assert await limiter.rule_for("/sign-up/email", RateRule(10, 3)) == RateRule(10, 3)
    assert await limiter.rule_for("/get-session") == RateRule(10, 100)


async def test_custom_rules_beat_plugin_and_built_in_rules() -> None:
    seen: list[tuple[str, RateRule]] = []

    def by_function(path: str, current: RateRule) -> RateRule:
        seen.append((path, current))
        return RateRule(current.window * 2, current.max)

    async def by_coroutine(path: str, current: RateRule) -> RateRule | None:
        return None if path.endswith("/public") else RateRule(5, 5)

    limiter = RateLimiter(
        plugin_rules=[("/two-factor/*", RateRule(10, 3))],
        custom_rules={
            "/sign-in/email": RateRule(100, 50),
            "/two-factor/*": by_function,
            "/api/**": by_coroutine,
            "/get-session": None,
            "/list-sessions": False,
            "/sign-in/*": RateRule(1, 1),
        },
    )
    assert await limiter.rule_for("/sign-in/email") == RateRule(100, 50)
    assert await limiter.rule_for("/sign-in/social") == RateRule(1, 1)
    assert await limiter.rule_for("/two-factor/send-otp") == RateRule(20, 3)
    assert seen == [("/two-factor/send-otp", RateRule(10, 3))]
    assert await limiter.rule_for("/api/x/y") == RateRule(5, 5)
    assert await limiter.rule_for("/api/x/public") is None
    assert await limiter.rule_for("/get-session") is None
    assert await limiter.rule_for("/list-sessions") is None
    assert (await limiter.check("/get-session", IP)).allowed


async def test_custom_rules_are_checked() -> None:
    with pytest.raises(TypeError, match="/x"):
        RateLimiter(custom_rules={"/x": "10/3"})  # type: ignore[dict-item]
    as_dict = RateLimiter(custom_rules={"/x": {"window": 5, "max": 1}})
    assert await as_dict.rule_for("/x") == RateRule(5, 1)
    with pytest.raises(ValueError):
        RateLimiter(custom_rules={"/x": {"window": 0, "max": 1}})
    with pytest.raises(ValueError, match="starts with '/'"):
        RateLimiter(custom_rules={"sign-in": None})

    def not_a_rule(path: str, rule: RateRule) -> Any:
        return 3

    limiter = RateLimiter(custom_rules={"/x": not_a_rule})
    with pytest.raises(TypeError, match="returned 3"):
        await limiter.check("/x", IP)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/two-factor/*", "/two-factor/verify-totp", True),
        ("/two-factor/*", "/two-factor/a/b", False),
        ("/two-factor/*", "/two-factor", False),
        ("/two-factor/**", "/two-factor/a/b", True),
        ("/sign-in/e?ail", "/sign-in/email", True),
        ("/sign-in/email", "/sign-in/email", True),
        ("/sign-in/email/", "/sign-in/email", True),
        ("/sign-in/email", "/sign-in/email2", False),
        ("/org/*/members", "/org/acme/members", True),
        ("/a.b", "/aXb", False),
    ],
)
def test_path_patterns(pattern: str, path: str, matches: bool) -> None:
    assert path_matcher(pattern)(path) is matches


@pytest.mark.parametrize(("window", "max_"), [(0, 1), (1, 0), (-1, 3), (1.5, 3), (True, 3)])
def test_rate_rule_is_checked(window: Any, max_: Any) -> None:
    with pytest.raises(ValueError):
        RateRule(window, max_)


# -- the client address (S6) ---------------------------------------------------------------

PROXY = "10.0.0.1"
BEHIND_PROXY = ClientIP(trusted_proxies=[PROXY, "10.1.0.0/16"])


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    """S6: with no trusted proxy configured, X-Forwarded-For is not believed at all."""
    headers = {"x-forwarded-for": "203.0.113.9"}
    assert client_ip(headers, IP) == IP
    assert client_ip({"x-forwarded-for": "203.0.113.9, 192.0.2.1"}, IP) == IP


def test_an_untrusted_peer_cannot_forward_an_address() -> None:
    """S6: X-Forwarded-For from a peer that is not a trusted proxy is ignored."""
    assert BEHIND_PROXY({"x-forwarded-for": "203.0.113.9"}, IP) == IP


def test_behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() -> None:
    """S6: the proxies' own hops are skipped; what the client wrote is on the far left."""
    chain = "6.6.6.6, 203.0.113.9, 10.1.4.4"  # spoofed, real client, CDN (trusted range)
    assert BEHIND_PROXY({"x-forwarded-for": chain}, PROXY) == "203.0.113.9"
    assert BEHIND_PROXY({"x-forwarded-for": "203.0.113.9"}, PROXY) == "203.0.113.9"
    assert BEHIND_PROXY({"X-Forwarded-For": "203.0.113.9"}, PROXY) == "203.0.113.9"


@pytest.mark.parametrize(
    ("headers", "peer"),
    [
        ({"x-forwarded-for": "203.0.113.9, garbage, 10.1.0.1"}, PROXY),  # a malformed hop
        ({"x-forwarded-for": "10.1.0.7, 10.1.0.1"}, PROXY),  # trusted proxies only
        ({"x-forwarded-for": ""}, PROXY),
        ({}, PROXY),  # the proxy forwarded no address
        ({}, "testclient"),
        ({}, None),
    ],
)
def test_no_trustworthy_address_is_none(headers: dict[str, str], peer: str | None) -> None:
    """S6: when no address can be trusted, None (the shared bucket), never a guess."""
    assert BEHIND_PROXY(headers, peer) is None


def test_disabled_ip_tracking() -> None:
    assert client_ip({}, IP, disable_ip_tracking=True) is None


async def test_spoofed_forwarded_addresses_do_not_make_fresh_buckets() -> None:
    """S6: an attacker writing a new X-Forwarded-For each time stays in one bucket, both
    connecting directly and behind a proxy that appends its peer."""
    limiter = RateLimiter(now_ms=Clock())
    direct = [client_ip({"x-forwarded-for": f"192.0.2.{i}"}, IP) for i in range(5)]
    assert [(await limiter.check(SIGN_IN, ip, CREDENTIAL_RULE)).allowed for ip in direct] == [
        True
    ] * 3 + [False] * 2
    limiter = RateLimiter(now_ms=Clock())
    proxied = [BEHIND_PROXY({"x-forwarded-for": f"192.0.2.{i}, {IP}"}, PROXY) for i in range(5)]
    assert set(proxied) == {IP}
    assert [(await limiter.check(SIGN_IN, ip, CREDENTIAL_RULE)).allowed for ip in proxied] == [
        True
    ] * 3 + [False] * 2


async def test_clients_behind_trusted_proxies_get_their_own_buckets() -> None:
    """S6: a multi-hop chain (client, CDN, load balancer) does not collapse every client
    into the proxy's bucket or the shared one."""
    limiter = RateLimiter(now_ms=Clock())
    clients = ["203.0.113.9", "203.0.113.10", "2001:db8:5::1"]
    for client in clients:
        ip = BEHIND_PROXY({"x-forwarded-for": f"{client}, 10.1.2.3"}, PROXY)
        assert ip == normalize_ip(client)
        assert [(await limiter.check(SIGN_IN, ip, CREDENTIAL_RULE)).allowed for _ in range(4)] == [
            True,
            True,
            True,
            False,
        ]


def test_a_second_forwarded_header_line_is_not_skipped() -> None:
    """S6: a proxy that adds its own X-Forwarded-For line after the client's is read to
    the end; reading only the first line would believe the client."""
    headers = Headers(raw=[(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", IP.encode())])
    assert BEHIND_PROXY(headers, PROXY) == IP


def test_ip_headers_are_tried_in_order() -> None:
    resolve = ClientIP(ip_headers=["X-Real-IP", "x-forwarded-for"], trusted_proxies=[PROXY])
    both = {"x-real-ip": "203.0.113.1", "x-forwarded-for": "203.0.113.2"}
    assert resolve(both, PROXY) == "203.0.113.1"
    assert resolve({"x-real-ip": "bad", "x-forwarded-for": "203.0.113.2"}, PROXY) == "203.0.113.2"


@pytest.mark.parametrize(
    ("text", "bucket"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1:8080 ", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:DB8::1", "2001:0db8:0000:0000:0000:0000:0000:0000"),
        ("[2001:db8:0:7:1::1]:443", "2001:0db8:0000:0007:0000:0000:0000:0000"),
        ("fe80::1%eth0", "fe80:0000:0000:0000:0000:0000:0000:0000"),
        ("::1", "0000:0000:0000:0000:0000:0000:0000:0000"),
        ("192.0.2.1:http", None),
        ("[::1", None),
        ("unknown", None),
        ("", None),
    ],
)
def test_address_buckets(text: str, bucket: str | None) -> None:
    assert normalize_ip(text) == bucket


def test_ipv6_subnet_is_configurable() -> None:
    assert normalize_ip("2001:db8:1:2::1", ipv6_subnet=128) == (
        "2001:0db8:0001:0002:0000:0000:0000:0001"
    )
    assert client_ip({}, "2001:db8:1:2::1", ipv6_subnet=48) == (
        "2001:0db8:0001:0000:0000:0000:0000:0000"
    )


def test_client_ip_options_are_checked() -> None:
    with pytest.raises(ValueError, match="not-an-ip"):
        ClientIP(trusted_proxies=["10.0.0.1", "not-an-ip"])
    with pytest.raises(TypeError):
        ClientIP(trusted_proxies="10.0.0.1")
    with pytest.raises(ValueError):
        ClientIP(ipv6_subnet=0)
