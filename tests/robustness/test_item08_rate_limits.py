"""Issue 11, item 8: rate limits that cannot be turned against a user (security S5, S6).

Before, every request about an account counted in one per-account bucket with the sign-in
rule (3 per 10 s), whoever sent it: three wrong passwords from anyone locked the owner out,
again and again. Now failures are counted per (account, client address) and, from clients not
known for the account, per account under a higher ceiling (S5: a distributed attack still
trips it); a client that signed in to the account before is exempt from that ceiling.

Security check S44, "no third-party lockout":
failures caused by other clients never refuse the owner from an address they signed in from
before, and an attacker using a few addresses never refuses the owner anywhere; a refused
attempt is answered 429 before any password check and does not lengthen the refusal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio

from bastion.identity import Identity
from bastion.identity.db import CORE_SCHEMA, Database, migrate
from bastion.identity.email import EmailLink
from bastion.identity.ratelimit import (
    RATE_LIMIT_SCHEMA,
    DatabaseRateLimitStorage,
    RateLimiter,
    RateLimitResult,
)
from bastion.identity.storage import RedisStorage
from bastion.standalone import create_app
from tests.hashing import cheap_password
from tests.identity.sessionkit import Clock
from tests.identity.test_storage import advance_redis, redis_scratch

SECRET = "item08-secret-0123456789abcdef0123456789abcdef"
BASE = "http://localhost:3000"
PASSWORD = "the owner's password"
OWNER = "owner@example.com"
SIGN_IN = "/sign-in/email"
HOME = ("198.51.100.10", 5000)  # where the owner signs in from
TRAVEL = ("203.0.113.77", 5000)  # an address the owner never used
ATTACKER = ("192.0.2.66", 6000)
TOO_MANY = {"message": "Too many requests. Please try again later."}
# Per-IP rules out of the way, so that the per-account ones are what a test sees.
NO_PER_IP = {"/sign-in/email": {"window": 10, "max": 10_000}}
STORAGES = ["memory", "database", "redis"]


@dataclass
class Server:
    identity: Identity
    clock: Clock
    redis: tuple[redis.asyncio.Redis, str] | None

    @asynccontextmanager
    async def client(self, peer: tuple[str, int]) -> AsyncIterator[httpx.AsyncClient]:
        """A client whose connection comes from `peer`."""
        transport = httpx.ASGITransport(app=self.identity.app, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url=f"{BASE}/api/auth") as http:
            yield http

    async def advance(self, seconds: float) -> None:
        """Let time pass for the limiter: the Identity's clock, and Redis's TTLs."""
        self.clock.advance(seconds=seconds)
        if self.redis is not None:
            await advance_redis(*self.redis, seconds)

    async def sign_in(
        self, peer: tuple[str, int], password: str = "a wrong guess", email: str = OWNER
    ) -> httpx.Response:
        async with self.client(peer) as http:
            return await http.post("/sign-in/email", json={"email": email, "password": password})


@asynccontextmanager
async def server(kind: str, **rate_limit: Any) -> AsyncIterator[Server]:
    """An Identity with rate limiting on, its limiter in `kind` of storage, and the owner's
    account (signed up, not yet signed in from anywhere)."""
    async with AsyncExitStack() as stack:
        options: dict[str, Any] = {}
        scratch: tuple[redis.asyncio.Redis, str] | None = None
        if kind == "database":
            rate_limit["storage"] = "database"
        elif kind == "redis":
            scratch = await stack.enter_async_context(redis_scratch())
            options["secondary_storage"] = RedisStorage(client=scratch[0], prefix=scratch[1])
        clock = Clock()
        identity = Identity(
            database="sqlite://",
            env={},
            secret=SECRET,
            base_url=BASE,
            clock=clock,
            email_and_password=cheap_password({"enabled": True, "send_reset_password": _ignore}),
            email_verification={"send_verification_email": _ignore},
            rate_limit={"enabled": True, **rate_limit},
            **options,
        )
        await identity.migrate()
        stack.push_async_callback(identity.close)
        running = Server(identity, clock, scratch)
        async with running.client(HOME) as http:
            body = {"name": "Owner", "email": OWNER, "password": PASSWORD}
            assert (await http.post("/sign-up/email", json=body)).status_code == 200
        yield running


async def _ignore(link: EmailLink, request: Any) -> None:
    """A mail callback that sends nothing."""


def assert_limited(response: httpx.Response, longest: int) -> None:
    """better-auth's 429 (S5): its body, `X-Retry-After` in whole seconds (and the standard
    Retry-After beside it), at most `longest`."""
    assert response.status_code == 429, response.text
    assert response.json() == TOO_MANY
    assert response.headers["x-retry-after"] == response.headers["retry-after"]
    assert 0 < int(response.headers["x-retry-after"]) <= longest


@pytest.fixture(params=STORAGES)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- the third-party lockout --------------------------------------------------------------


async def test_item08_wrong_passwords_from_others_do_not_lock_the_owner_out(kind: str) -> None:
    """S44, with the default limits: an attacker failing from a few addresses is stopped
    (better-auth's per-IP 3 per 10 s), and the owner still signs in, from home and from an
    address never used before. Before the fix the owner got 429."""
    async with server(kind) as running:
        assert (await running.sign_in(HOME, PASSWORD)).status_code == 200
        for host in ("192.0.2.66", "192.0.2.67", "192.0.2.68"):
            statuses = [(await running.sign_in((host, 1))).status_code for _ in range(6)]
            assert statuses == [401, 401, 401, 429, 429, 429]
        assert (await running.sign_in(HOME, PASSWORD)).status_code == 200
        assert (await running.sign_in(TRAVEL, PASSWORD)).status_code == 200


async def test_item08_failures_are_limited_per_client_and_account(kind: str) -> None:
    """S5/S44: 5 failures from one address refuse that address for this account for 5 min,
    before any password check (the right password gets 429 too: no oracle), while the owner
    signs in from home and from elsewhere, and the attacker may still try other accounts."""
    async with server(kind, custom_rules=NO_PER_IP) as running:
        assert (await running.sign_in(HOME, PASSWORD)).status_code == 200
        for _ in range(5):
            assert (await running.sign_in(ATTACKER)).status_code == 401
        assert_limited(await running.sign_in(ATTACKER), 300)
        assert_limited(await running.sign_in(ATTACKER, PASSWORD), 300)
        other = await running.sign_in(ATTACKER, email="someone-else@example.com")
        assert other.status_code == 401
        assert (await running.sign_in(HOME, PASSWORD)).status_code == 200
        assert (await running.sign_in(TRAVEL, PASSWORD)).status_code == 200


async def test_item08_refused_attempts_do_not_extend_the_refusal(kind: str) -> None:
    """S44: refused attempts are not counted: 5 min after the fifth failure the address may
    try again, however often it was refused meanwhile."""
    async with server(kind, custom_rules=NO_PER_IP) as running:
        for _ in range(5):
            assert (await running.sign_in(ATTACKER)).status_code == 401
        for _ in range(3):
            await running.advance(99)
            for _ in range(5):
                assert_limited(await running.sign_in(ATTACKER), 300)
        await running.advance(3)  # 300 s after the fifth failure
        assert (await running.sign_in(ATTACKER)).status_code == 401


async def test_item08_a_distributed_attack_trips_the_per_account_ceiling(kind: str) -> None:
    """S5: failures from many addresses, each under its own limit, add up per account; past
    the ceiling (lowered here to 6 per 15 min) every client not known for the account gets
    429 before its password is checked, the owner elsewhere included, while the owner's
    known address still signs in."""
    rules = {
        "/sign-in/email": {
            "per_client": {"window": 300, "max": 5},
            "per_account": {"window": 900, "max": 6},
        }
    }
    async with server(kind, account_rules=rules, custom_rules=NO_PER_IP) as running:
        assert (await running.sign_in(HOME, PASSWORD)).status_code == 200
        for i in range(6):
            assert (await running.sign_in((f"192.0.2.{i + 1}", 1))).status_code == 401
        assert_limited(await running.sign_in(("192.0.2.7", 1)), 900)
        assert_limited(await running.sign_in(("192.0.2.8", 1), PASSWORD), 900)
        assert_limited(await running.sign_in(TRAVEL, PASSWORD), 900)
        assert (await running.sign_in(HOME, PASSWORD)).status_code == 200
        # The ceiling counts only unknown clients: the owner's own mistakes do not add up.
        assert (await running.sign_in(HOME)).status_code == 401
        assert (await running.sign_in(HOME, PASSWORD)).status_code == 200


async def test_item08_a_known_client_keeps_its_own_limit(kind: str) -> None:
    """S5: being known lifts the per-account ceiling, not the per-client limit: an address
    that once signed in cannot guess without bound."""
    async with server(kind, custom_rules=NO_PER_IP) as running:
        assert (await running.sign_in(HOME, PASSWORD)).status_code == 200
        for _ in range(5):
            assert (await running.sign_in(HOME)).status_code == 401
        assert_limited(await running.sign_in(HOME, PASSWORD), 300)


@pytest.mark.parametrize("path", ["/request-password-reset", "/send-verification-email"])
async def test_item08_mail_requests_from_others_do_not_lock_the_owner_out(
    kind: str, path: str
) -> None:
    """S44 for the mail endpoints, which counted per account as well: an attacker asking
    for the owner's mails is stopped per address, and the owner still asks, from home and
    from elsewhere. Before the fix the owner got 429."""
    async with server(kind) as running:
        assert (await running.sign_in(HOME, PASSWORD)).status_code == 200

        async def ask(peer: tuple[str, int]) -> int:
            async with running.client(peer) as http:
                return (await http.post(path, json={"email": OWNER})).status_code

        assert [await ask(ATTACKER) for _ in range(4)] == [200, 200, 200, 429]
        assert await ask(HOME) == 200
        assert await ask(TRAVEL) == 200


# -- the limiter, with its default numbers, on each storage -----------------------------------


@pytest.fixture(params=STORAGES)
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RateLimiter, Clock]]:
    clock = Clock()
    now = lambda: int(clock().timestamp() * 1000)  # noqa: E731
    if request.param == "memory":
        yield RateLimiter(now_ms=now), clock
    elif request.param == "database":
        async with Database("sqlite://", schema=CORE_SCHEMA.extend(RATE_LIMIT_SCHEMA)) as db:
            await migrate(db)
            yield RateLimiter(storage="database", database=db, now_ms=now), clock
    else:
        async with redis_scratch() as (client, prefix):
            storage = RedisStorage(client=client, prefix=prefix)
            yield RateLimiter(secondary=storage, now_ms=now), clock


async def test_item08_default_ceiling_is_50_failures_from_unknown_clients(
    limiter: tuple[RateLimiter, Clock],
) -> None:
    """S5 with the default numbers: 50 failures from 50 addresses; then a new address is
    refused for 15 min, a known one is not."""
    rates, _ = limiter
    path = "/sign-in/email"
    home = await rates.account_attempt(path, OWNER, HOME[0])
    await home.remember_client()
    for i in range(50):
        attempt = await rates.account_attempt(path, OWNER, f"10.0.{i}.1")
        assert attempt.result.allowed, i
        await attempt.count()
    assert (await rates.account_attempt(path, OWNER, "10.1.0.1")).result == RateLimitResult(
        False, 900
    )
    assert (await rates.account_attempt(path, OWNER.upper(), "10.1.0.1")).result.allowed is False
    assert (await rates.account_attempt(path, OWNER, HOME[0])).result.allowed
    assert (await rates.account_attempt(path, "other@example.com", "10.1.0.1")).result.allowed


async def test_item08_requests_without_an_address_are_never_known(
    limiter: tuple[RateLimiter, Clock],
) -> None:
    """S6: a request whose client address is unknown shares one bucket and cannot be known
    for an account (one such success must not exempt every such request)."""
    rates, _ = limiter
    path = "/sign-in/email"
    await (await rates.account_attempt(path, OWNER, None)).remember_client()
    for i in range(50):
        await (await rates.account_attempt(path, OWNER, f"10.2.{i}.1")).count()
    assert not (await rates.account_attempt(path, OWNER, None)).result.allowed


async def test_item08_account_limits_on_every_dialect(database_url: str) -> None:
    """The per-account counters and known clients in the `rateLimit` table of SQLite,
    PostgreSQL and MariaDB: 5 failures refuse the pair for 5 min; being known survives."""
    clock = Clock()
    async with Database(database_url, schema=CORE_SCHEMA.extend(RATE_LIMIT_SCHEMA)) as db:
        await migrate(db)
        rates = RateLimiter(
            storage="database", database=db, now_ms=lambda: int(clock().timestamp() * 1000)
        )
        for _ in range(2):  # the second time updates the row the first one created
            await (await rates.account_attempt(SIGN_IN, OWNER, HOME[0])).remember_client()
        for _ in range(5):
            await (await rates.account_attempt(SIGN_IN, OWNER, ATTACKER[0])).count()
        clock.advance(seconds=60)
        refused = await rates.account_attempt(SIGN_IN, OWNER, ATTACKER[0])
        assert refused.result == RateLimitResult(False, 240)
        assert (await rates.account_attempt(SIGN_IN, OWNER, HOME[0])).result.allowed
        assert await db.count("rateLimit") == 3  # known; pair and account counters


async def test_item08_known_clients_outlive_the_pruning_of_the_database() -> None:
    """A remembered client is kept 30 days in the `rateLimit` table, although the table's
    pruning removes counters idle for an hour; then it goes too."""
    clock = Clock()
    rules = {
        SIGN_IN: {"per_client": {"window": 300, "max": 5}, "per_account": {"window": 900, "max": 1}}
    }
    async with Database("sqlite://", schema=CORE_SCHEMA.extend(RATE_LIMIT_SCHEMA)) as db:
        await migrate(db)
        rates = RateLimiter(
            storage=DatabaseRateLimitStorage(db, retention=3600, prune_interval=60),
            account_rules=rules,
            now_ms=lambda: int(clock().timestamp() * 1000),
        )

        async def allowed(ip: str) -> bool:
            return (await rates.account_attempt(SIGN_IN, OWNER, ip)).result.allowed

        async def keys() -> list[str]:
            await rates.check("/get-session", "10.9.9.9")  # prunes, at most once a minute
            return sorted(row["key"] for row in await db.find_many("rateLimit"))

        await (await rates.account_attempt(SIGN_IN, OWNER, HOME[0])).remember_client()
        await (await rates.account_attempt(SIGN_IN, OWNER, TRAVEL[0])).count()
        clock.advance(days=29)
        left = await keys()
        assert len(left) == 2 and left[0] == "10.9.9.9|/get-session"
        assert left[1].startswith("known:")  # the failure counters are gone, not this
        await (await rates.account_attempt(SIGN_IN, OWNER, "10.3.0.1")).count()
        assert not await allowed("10.3.0.2")
        assert await allowed(HOME[0])  # still known

        clock.advance(days=1, hours=1, minutes=1)
        assert await keys() == ["10.9.9.9|/get-session"]
        await (await rates.account_attempt(SIGN_IN, OWNER, "10.3.0.3")).count()
        assert not await allowed(HOME[0])  # known no more


# -- the embedded default ------------------------------------------------------------------


@asynccontextmanager
async def embedded(tmp_path: Path) -> AsyncIterator[Callable[[tuple[str, int]], Any]]:
    """`bastion serve`'s app without arguments; a factory of clients from an address."""
    env = {"BASTION_SECRET": SECRET, "DATABASE_URL": f"sqlite:///{tmp_path}/bastion.db"}
    app = create_app(env)
    async with app.lifespan():

        def client(peer: tuple[str, int]) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=peer)
            return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:4111")

        yield client


async def test_item08_the_embedded_default_limits_sign_in_but_not_get_session(
    tmp_path: Path,
) -> None:
    """`bastion serve` with no app limits the credential and mail paths out of the box (in
    memory, or Redis with REDIS_URL) and leaves other paths such as /get-session and /ok
    unlimited; the owner is not locked out by an attacker's failures."""
    async with embedded(tmp_path) as client:
        async with client(HOME) as http:
            body = {"name": "Owner", "email": OWNER, "password": PASSWORD}
            assert (await http.post("/api/auth/sign-up/email", json=body)).status_code == 200
            http.cookies.clear()  # a cookie without an Origin is refused (S19)
            signed_in = await http.post(
                "/api/auth/sign-in/email", json={"email": OWNER, "password": PASSWORD}
            )
            assert signed_in.status_code == 200
            token = signed_in.headers["set-auth-token"]
            for _ in range(150):  # the default rule would refuse past 100 in 10 s
                answer = await http.get(
                    "/api/auth/get-session", headers={"authorization": f"Bearer {token}"}
                )
                assert answer.status_code == 200
                assert (await http.get("/api/auth/ok")).status_code == 200
        async with client(ATTACKER) as http:
            wrong = {"email": OWNER, "password": "a wrong guess"}
            statuses = [
                (await http.post("/api/auth/sign-in/email", json=wrong)).status_code
                for _ in range(4)
            ]
            assert statuses == [401, 401, 401, 429]
        async with client(TRAVEL) as http:
            right = {"email": OWNER, "password": PASSWORD}
            assert (await http.post("/api/auth/sign-in/email", json=right)).status_code == 200


async def test_item08_a_library_identity_keeps_better_auths_default() -> None:
    """`Identity(...)` limits in production only (better-auth's default); only the embedded
    default turns limits on everywhere."""
    for env, limited in (({}, False), ({"BASTION_ENV": "production"}, True)):
        identity = Identity(database="sqlite://", env=env, secret=SECRET, base_url=BASE)
        assert (identity.rate_limiter is not None) is limited
        await identity.close()


def test_item08_account_rules_are_checked() -> None:
    with pytest.raises(TypeError, match="/sign-in/email"):
        RateLimiter(account_rules={"/sign-in/email": {"per_client": {"window": 1, "max": 1}}})
    with pytest.raises(ValueError):
        RateLimiter(
            account_rules={
                "/sign-in/email": {
                    "per_client": {"window": 0, "max": 1},
                    "per_account": {"window": 1, "max": 1},
                }
            }
        )
