"""Issue 11, item 5: an outage is a 503 with Retry-After, never a 401.

A provider that cannot decide because a dependency is down (the database, Redis as
secondary storage, an issuer's keys, a remote identity server) answers 503
`{"error": "<dependency> is unavailable"}` with `Retry-After` and without an RFC 6750
`invalid_token` challenge: a client that drops its token on a 401 would sign its user out
because of an outage. Only a token that is really invalid gets 401. The PostgreSQL and Redis
here are the tests' own (tests/own_services.py), stopped and started by the tests.

Security check S40: "503, not 401, on outages" — a dependency of the
credential check that is down is answered 503 with Retry-After, naming the dependency,
never a 401 or a challenge that makes a client discard a valid credential; `CompositeAuth`
stops at an unavailable provider rather than letting the next one decide.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bastion.auth import CompositeAuth, IdentityAuth, JWKSCache, JWTAuth, SimpleAuth
from bastion.auth.errors import ProviderUnavailable
from bastion.identity import Identity, bearer
from bastion.identity.storage import RedisStorage
from bastion.server import Bastion, Memory
from tests.auth.issuers import AUDIENCE, TestIssuer, new_key, sign, unused_url
from tests.hashing import cheap_password

if TYPE_CHECKING:
    from tests.own_services import OwnPostgres, OwnRedis

pytest_plugins = ["tests.own_services"]  # the own_postgres and own_redis fixtures

BASE = "http://localhost:4111"
SECRET = "item05-secret-0123456789abcdef0123456789abcdef"
ORIGIN = {"origin": BASE}
PASSWORD = "correct horse battery staple"


def assert_unavailable(answer: httpx.Response, dependency: str) -> None:
    """503, Retry-After, the dependency named, and no challenge that voids the token."""
    assert answer.status_code == 503, answer.text
    assert answer.headers.get("retry-after", "").isdigit(), answer.headers
    assert "www-authenticate" not in answer.headers
    error = answer.json()["error"]
    assert dependency in error and error.endswith("is unavailable"), error


@asynccontextmanager
async def served(identity: Identity, **auth_options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The agent server with IdentityAuth over `identity`, and a client of it."""
    await identity.migrate()
    auth = IdentityAuth(identity, **auth_options)
    app = Bastion(auth=auth, tools=[])
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield http
    finally:
        await auth.aclose()
        await identity.close()


def make_identity(database: str, **options: Any) -> Identity:
    options["email_and_password"] = cheap_password(options.get("email_and_password"))
    return Identity(
        secret=SECRET, base_url=BASE, database=database, plugins=[bearer()], env={}, **options
    )


async def sign_up(http: httpx.AsyncClient, email: str = "ada@example.com") -> httpx.Response:
    answer = await http.post(
        "/api/auth/sign-up/email",
        json={"name": "Ada", "email": email, "password": PASSWORD},
        headers=ORIGIN,
    )
    assert answer.status_code == 200, answer.text
    http.cookies.clear()
    return answer


def session_cookies(answer: httpx.Response) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for line in answer.headers.get_list("set-cookie"):
        name, _, rest = line.partition("=")
        value = rest.split(";", 1)[0]
        if value and "Max-Age=0" not in line:
            cookies[name] = value
    return cookies


def cookie_header(cookies: dict[str, str], *names: str) -> dict[str, str]:
    chosen = {n: v for n, v in cookies.items() if not names or n in names}
    return {"cookie": "; ".join(f"{n}={v}" for n, v in chosen.items())}


# -- the database --------------------------------------------------------------------------


async def test_item05_postgres_down_direct_lookup_is_503(own_postgres: OwnPostgres) -> None:
    """The bearer token is checked on the provider's own asyncpg connections (the direct
    path): warm ones that the stop killed, then none to be had."""
    url = await own_postgres.create_database()
    async with served(make_identity(url)) as http:
        token = (await sign_up(http)).headers["set-auth-token"]
        bearer_header = {"authorization": f"Bearer {token}"}
        assert (await http.get("/api/tools", headers=bearer_header)).status_code == 200
        with own_postgres.down():
            for _ in range(2):  # the connections that died, then a refused connect
                assert_unavailable(
                    await http.get("/api/tools", headers=bearer_header), "The database"
                )
        assert (await http.get("/api/tools", headers=bearer_header)).status_code == 200
        # A token that is really unknown is still a 401, database up.
        refused = await http.get("/api/tools", headers={"authorization": "Bearer nope"})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_item05_postgres_down_under_concurrent_lookups_is_503_for_each(
    own_postgres: OwnPostgres,
) -> None:
    """Session lookups that arrive together share one statement on PostgreSQL (the
    adapter's direct reads): the outage is each request's own 503, and once the database
    is back each one's 200 again, its own user's."""
    url = await own_postgres.create_database()
    async with served(make_identity(url)) as http:
        tokens = [
            (await sign_up(http, f"user{i}@example.com")).headers["set-auth-token"]
            for i in range(6)
        ]

        async def everyone() -> list[httpx.Response]:
            return await asyncio.gather(
                *(
                    http.get("/api/auth/get-session", headers={"authorization": f"Bearer {t}"})
                    for t in tokens * 2
                )
            )

        assert {a.status_code for a in await everyone()} == {200}  # connections warm
        with own_postgres.down():
            for _ in range(2):  # the connections that died, then a refused connect
                for answer in await everyone():
                    assert answer.status_code == 503, answer.text
        answers = await everyone()
        assert [a.json()["user"]["email"] for a in answers] == [
            f"user{i}@example.com" for i in range(6)
        ] * 2


async def test_item05_postgres_down_store_path_is_503(own_postgres: OwnPostgres) -> None:
    """A session cookie without its cookie cache goes through the Identity's own session
    resolution (the Store); its endpoints answer the same outage with their 503."""
    url = await own_postgres.create_database()
    identity = make_identity(url, session={"cookie_cache": {"enabled": True}})
    async with served(identity) as http:
        cookies = session_cookies(await sign_up(http))
        only_token = cookie_header(cookies, "better-auth.session_token")
        assert (await http.get("/api/tools", headers=only_token)).status_code == 200
        with own_postgres.down():
            assert_unavailable(await http.get("/api/tools", headers=only_token), "The database")
            assert_unavailable(await http.post("/api/tools", headers=only_token), "The database")
            endpoint = await http.get("/api/auth/get-session", headers=only_token)
            assert endpoint.status_code == 503
            assert endpoint.headers["retry-after"].isdigit()
            assert endpoint.json() == {
                "code": "SERVICE_UNAVAILABLE",
                "message": "The database is unavailable. Try again later.",
            }
        assert (await http.get("/api/tools", headers=only_token)).status_code == 200


# -- Redis as secondary storage ------------------------------------------------------------


async def test_item05_redis_down_is_503_naming_redis(own_redis: OwnRedis, tmp_path: Path) -> None:
    storage = RedisStorage(own_redis.url, prefix="item05-redis:")
    identity = make_identity(
        f"sqlite:///{tmp_path}/identity.db",
        secondary_storage=storage,
        session={"cookie_cache": {"enabled": True}},
    )
    try:
        async with served(identity) as http:
            signed_up = await sign_up(http)
            token = signed_up.headers["set-auth-token"]
            bearer_header = {"authorization": f"Bearer {token}"}
            with_cache = cookie_header(session_cookies(signed_up))
            assert (await http.get("/api/tools", headers=bearer_header)).status_code == 200
            with own_redis.down():
                assert_unavailable(await http.get("/api/tools", headers=bearer_header), "Redis")
                # A valid signed cookie cache still decides a read, as the design allows
                # (trust_cookie_cache="reads"); a write must ask storage, which is down.
                assert (await http.get("/api/tools", headers=with_cache)).status_code == 200
                assert_unavailable(await http.post("/api/tools", headers=with_cache), "Redis")
                endpoint = await http.get(
                    "/api/auth/get-session", headers={**bearer_header, **ORIGIN}
                )
                assert endpoint.status_code == 503
                assert endpoint.headers["retry-after"].isdigit()
                assert endpoint.json()["code"] == "SERVICE_UNAVAILABLE"
                assert "secondary storage" in endpoint.json()["message"]
                assert "database" not in endpoint.json()["message"]
            assert (await http.get("/api/tools", headers=bearer_header)).status_code == 200
    finally:
        await storage.aclose()


async def test_item05_rate_limits_in_redis_down_is_503_naming_it(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    """The identity server's rate limiter keeps its counters in Redis: down, every endpoint
    answers the 503 of the secondary storage, with Retry-After, before anything runs."""
    storage = RedisStorage(own_redis.url, prefix="item05-limits:")
    identity = make_identity(
        f"sqlite:///{tmp_path}/identity.db",
        secondary_storage=storage,
        rate_limit={"enabled": True, "storage": "secondary-storage"},
    )
    try:
        async with served(identity) as http:
            with own_redis.down():
                answer = await http.post(
                    "/api/auth/sign-in/email",
                    json={"email": "ada@example.com", "password": PASSWORD},
                    headers=ORIGIN,
                )
            assert answer.status_code == 503
            assert answer.headers["retry-after"].isdigit()
            assert answer.json() == {
                "code": "SERVICE_UNAVAILABLE",
                "message": "The secondary storage is unavailable. Try again later.",
            }
    finally:
        await storage.aclose()


# -- an issuer's keys ----------------------------------------------------------------------


def jwt_app(jwks_uri: str) -> Bastion:
    return Bastion(auth=JWTAuth(jwks_uri=jwks_uri, audience=AUDIENCE, jwks_cache=JWKSCache()))


async def call(app: Any, headers: dict[str, str] | None = None, path: str = "/api/tools") -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        return await http.get(path, headers=headers or {})


async def test_item05_jwks_issuer_down_without_cached_keys_is_503(issuer: TestIssuer) -> None:
    token = {"authorization": f"Bearer {issuer.token()}"}
    issuer.down = True
    assert_unavailable(await call(jwt_app(issuer.jwks_uri), token), "key set (JWKS)")
    refused = jwt_app(unused_url())  # nobody listens there
    assert_unavailable(await call(refused, token), "key set (JWKS)")


async def test_item05_unknown_kid_with_healthy_keys_stays_401(issuer: TestIssuer) -> None:
    app = jwt_app(issuer.jwks_uri)
    good = {"authorization": f"Bearer {issuer.token()}"}
    assert (await call(app, good)).status_code == 200
    stranger = sign(issuer.claims(), new_key("RS256"))  # a key the issuer never published
    refused = await call(app, {"authorization": f"Bearer {stranger}"})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'


# -- a remote identity server, CompositeAuth, a provider of one's own -------------------------


async def test_item05_remote_identity_server_down_is_503() -> None:
    auth = IdentityAuth(url=unused_url("/api/auth"))
    try:
        app = Bastion(auth=auth)
        assert_unavailable(await call(app, {"authorization": "Bearer abc.def"}), "identity server")
        assert_unavailable(
            await call(app, {"cookie": "better-auth.session_token=abc.def"}), "identity server"
        )
    finally:
        await auth.aclose()


async def test_item05_remote_identity_server_in_an_outage_is_503(own_redis: OwnRedis) -> None:
    """The remote server answers 503 itself (its Redis is down): so do we."""
    storage = RedisStorage(own_redis.url, prefix="item05-remote:")
    identity = make_identity("sqlite://", secondary_storage=storage)
    await identity.migrate()
    remote = httpx.AsyncClient(transport=httpx.ASGITransport(app=identity.app))
    auth = IdentityAuth(url="http://auth.test/api/auth", http_client=remote)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=identity.app), base_url=BASE
        ) as http:
            token = (await sign_up(http)).headers["set-auth-token"]
            signed_in = await http.post(
                "/api/auth/sign-in/email",
                json={"email": "ada@example.com", "password": PASSWORD},
                headers=ORIGIN,
            )
            second = signed_in.headers["set-auth-token"]  # never asked of the server yet
        app = Bastion(auth=auth)
        assert (await call(app, {"authorization": f"Bearer {token}"})).status_code == 200
        with own_redis.down():
            assert_unavailable(
                await call(app, {"authorization": f"Bearer {second}"}), "identity server"
            )
        assert (await call(app, {"authorization": f"Bearer {second}"})).status_code == 200
    finally:
        await auth.aclose()
        await remote.aclose()
        await identity.close()
        await storage.aclose()


async def test_item05_composite_stops_at_an_unavailable_provider() -> None:
    remote = IdentityAuth(url=unused_url("/api/auth"))
    keys = SimpleAuth({"key-1": {"id": "ana"}})
    try:
        stops = Bastion(auth=CompositeAuth([remote, keys]))
        # The API key would pass the second provider, but the first could not decide.
        assert_unavailable(await call(stops, {"authorization": "Bearer key-1"}), "identity server")
        passes = Bastion(auth=CompositeAuth([keys, remote]))
        assert (await call(passes, {"authorization": "Bearer key-1"})).status_code == 200
    finally:
        await remote.aclose()


async def test_item05_a_provider_of_ones_own_may_say_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Directory(SimpleAuth):
        async def authenticate_token(self, token: str, request: Any) -> Any:
            raise ProviderUnavailable("The user directory")

    caplog.set_level(logging.WARNING, "bastion.auth")
    answer = await call(Bastion(auth=Directory({})), {"authorization": "Bearer secret-token"})
    assert_unavailable(answer, "The user directory")
    assert "secret-token" not in caplog.text


# -- the agent server's own database routes --------------------------------------------------


async def test_item05_memory_routes_with_the_database_down_are_503(
    own_postgres: OwnPostgres,
) -> None:
    url = await own_postgres.create_database()
    memory = Memory(url)
    await memory.migrate()
    app = Bastion(memory=memory)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            created = await http.post("/api/memory/threads", json={"resourceId": "ana"})
            assert created.status_code == 201
            with own_postgres.down():
                for answer in (
                    await http.post("/api/memory/threads", json={"resourceId": "ana"}),
                    await http.get("/api/memory/threads", params={"resourceId": "ana"}),
                ):
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["retry-after"].isdigit()
                    assert answer.json() == {"error": "The database is unavailable"}
            listed = await http.get("/api/memory/threads", params={"resourceId": "ana"})
            assert listed.status_code == 200
    finally:
        await memory.close()
