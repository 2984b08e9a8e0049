"""The HTTP transport of every endpoint (spec §1, errata 1 and 15): routing, bodies, errors,
JSON conventions, failures that must not leak, and rate limits (security S5, S6)."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from bastion.identity import APIError, Code, Identity
from tests.identity.conftest import BASE, SECRET, MakeIdentity, running
from tests.identity.sessionkit import PASSWORD, Browser, Clock, serve, sign_up

TOO_MANY = {"message": "Too many requests. Please try again later."}
INTERNAL = {"message": "Internal Server Error", "code": "INTERNAL_SERVER_ERROR"}
UNAVAILABLE = {
    "message": "The database is unavailable. Try again later.",
    "code": "SERVICE_UNAVAILABLE",
}


def assert_json_error(response: httpx.Response, status: int, body: dict[str, Any]) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == body
    assert "Traceback" not in response.text


@asynccontextmanager
async def client_for(
    identity: Identity, client: tuple[str, int] = ("127.0.0.1", 123)
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connection comes from `client` (the peer address the server sees)."""
    transport = httpx.ASGITransport(app=identity.app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url=f"{BASE}/api/auth") as http:
        yield http


# -- routing (§1.1) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/sign-in"),
        ("POST", "/ok"),  # wrong method
        ("GET", "/sign-out"),
        ("PUT", "/get-session"),
        ("DELETE", "/revoke-sessions"),
        ("HEAD", "/ok"),
        ("GET", "/ok/"),  # trailing slash
        ("POST", "/sign-in/email/"),
        ("GET", "//ok"),
        ("GET", "/get-session//"),
        ("GET", ""),  # the base path itself
        ("GET", "/reset-password/"),  # a path parameter left empty
        ("GET", "/reset-password/a/b"),
    ],
)
async def test_unknown_route_is_404_with_an_empty_body(method: str, path: str) -> None:
    """Unknown path, wrong method, trailing slash, `//`: 404 with an empty body, no 405."""
    async with running() as (_, client):
        response = await client.request(method, path, json={} if method != "GET" else None)
        assert response.status_code == 404
        assert response.content == b""
        assert "content-type" not in response.headers


async def test_paths_outside_the_base_path_are_404() -> None:
    """Served at the server's root, only paths under the base path are endpoints (better-call
    answers 404 to the rest); a base URL with a path sets the base path (§1.1)."""
    async with running() as (identity, _):
        transport = httpx.ASGITransport(app=identity.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as root:
            assert (await root.get("/api/auth/ok")).json() == {"ok": True}
            for path in ("/ok", "/api/ok", "/api/authok", "/x/api/auth/ok"):
                missing = await root.get(path)
                assert missing.status_code == 404, path
                assert missing.content == b""
    async with running(base_url=f"{BASE}/auth") as (identity, _):
        transport = httpx.ASGITransport(app=identity.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as root:
            assert (await root.get("/auth/ok")).json() == {"ok": True}
            assert (await root.get("/api/auth/ok")).status_code == 404


async def test_mounted_under_starlette() -> None:
    """`Mount("/api/auth", identity.app)`: the endpoints answer under the mount."""
    async with running() as (identity, _):
        app = Starlette(routes=[Mount("/api/auth", identity.app)])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            assert (await http.get("/api/auth/ok")).json() == {"ok": True}
            assert (await http.get("/api/auth/get-session")).json() is None
            missing = await http.get("/api/auth/nope")
            assert missing.status_code == 404
            assert missing.content == b""


# -- request bodies (§1.2, errata 1) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/sign-up/email", "application/x-www-form-urlencoded, application/json"),
        ("/sign-in/email", "application/x-www-form-urlencoded, application/json"),
        ("/request-password-reset", "application/json"),
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8"])
async def test_unsupported_media_type(path: str, allowed: str, content_type: str) -> None:
    """415 with better-call's message: the Content-Type as sent, the allowed types in the
    endpoint's order."""
    async with running() as (_, client):
        response = await client.post(
            path, content=b'{"email":"a@b.co"}', headers={"content-type": content_type}
        )
        assert_json_error(
            response,
            415,
            {
                "message": f'Content-Type "{content_type}" is not allowed. '
                f"Allowed types: {allowed}",
                "code": "UNSUPPORTED_MEDIA_TYPE",
            },
        )


@pytest.mark.parametrize("content", [b"{bad", b" ", b'{"name": "A",}', b"\xff\xfe"])
async def test_malformed_json(content: bytes) -> None:
    async with running() as (_, client):
        response = await client.post(
            "/sign-up/email", content=content, headers={"content-type": "application/json"}
        )
        assert_json_error(
            response, 400, {"message": "Invalid JSON in request body", "code": "BAD_REQUEST"}
        )


async def test_post_without_content_type_ignores_the_body() -> None:
    """Errata 1: a body without a Content-Type is ignored, so a required body is missing
    (400 VALIDATION_ERROR, not 415); a POST that needs no body answers as usual."""
    async with running() as (_, client):
        body = json.dumps({"name": "A", "email": "a@b.co", "password": PASSWORD}).encode()
        response = await client.post("/sign-up/email", content=body)
        assert "content-type" not in response.request.headers
        assert_json_error(
            response,
            400,
            {
                "message": "[body] Invalid input: expected object, received undefined",
                "code": "VALIDATION_ERROR",
            },
        )
        signed_out = await client.post("/sign-out")
        assert signed_out.status_code == 200
        assert signed_out.json() == {"success": True}


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded"]
)
async def test_an_empty_body_is_no_body(content_type: str) -> None:
    """An empty body is no body, whatever its Content-Type (better-auth 1.7.25): a required
    body is missing (400 VALIDATION_ERROR, neither 415 nor `Invalid JSON`); sign-out, which
    needs none, signs out."""
    async with running() as (_, client):
        headers = {"content-type": content_type}
        response = await client.post("/sign-in/email", content=b"", headers=headers)
        assert_json_error(
            response,
            400,
            {
                "message": "[body] Invalid input: expected object, received undefined",
                "code": "VALIDATION_ERROR",
            },
        )
        signed_out = await client.post("/sign-out", content=b"", headers=headers)
        assert signed_out.status_code == 200
        assert signed_out.json() == {"success": True}


async def test_form_bodies_where_better_auth_takes_them() -> None:
    async with running() as (_, client):
        response = await client.post(
            "/sign-up/email", data={"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        assert response.json()["user"]["email"] == "ada@example.com"


async def test_body_over_one_mebibyte_is_413_and_the_server_goes_on() -> None:
    """Errata 15: Bastion refuses bodies over 1 MiB (better-auth has no limit): 413 with a
    JSON error, whether the size is declared or only found by reading; then the next
    requests are answered."""
    async with running() as (_, client):
        big = {"name": "x" * (1024 * 1024), "email": "a@b.co", "password": PASSWORD}
        declared = await client.post("/sign-up/email", json=big)
        assert "content-length" in declared.request.headers
        too_large = {"message": "Request body is too large", "code": "REQUEST_TOO_LARGE"}
        assert_json_error(declared, 413, too_large)

        async def stream() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            for _ in range(20):
                yield b"x" * 65536
            yield b'"}'

        chunked = await client.post(
            "/sign-up/email", content=stream(), headers={"content-type": "application/json"}
        )
        assert "content-length" not in chunked.request.headers
        assert_json_error(chunked, 413, too_large)

        assert (await client.get("/ok")).json() == {"ok": True}
        # An unknown key is dropped; a name that long would be 400 (at most 256 characters).
        just_fits = {"name": "Ada", "email": "a@b.co", "password": PASSWORD}
        just_fits["padding"] = "x" * (1024 * 1024 - 200)
        assert (await client.post("/sign-up/email", json=just_fits)).status_code == 200


async def test_max_body_size_is_an_option() -> None:
    async with running(max_body_size=100) as (_, client):
        response = await client.post("/sign-in/email", json={"email": "a@b.co", "x": "y" * 100})
        assert response.status_code == 413


# -- validation messages (§1.2, zod's format) --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"email": "a@b.co", "password": PASSWORD},
            "[body.name] Invalid input: expected string, received undefined",
        ),
        (
            {"name": 42, "email": "a@b.co", "password": PASSWORD},
            "[body.name] Invalid input: expected string, received number",
        ),
        (
            {"name": None, "email": "a@b.co", "password": PASSWORD},
            "[body.name] Invalid input: expected string, received null",
        ),
        (
            {"name": "A", "email": "a@b.co", "password": ["x"]},
            "[body.password] Invalid input: expected string, received array",
        ),
        (
            {"name": "A", "email": "a@b.co", "password": PASSWORD, "rememberMe": "yes"},
            "[body.rememberMe] Invalid input: expected boolean, received string",
        ),
        ([1, 2], "[body] Invalid input: expected object, received array"),
        ("name", "[body] Invalid input: expected object, received string"),
        (7, "[body] Invalid input: expected object, received number"),
        (None, "[body] Invalid input: expected object, received null"),
    ],
)
async def test_validation_messages_in_zods_format(body: Any, message: str) -> None:
    """`[body.<field>] Invalid input: expected <type>, received <type>`, code
    VALIDATION_ERROR, as better-auth's zod schemas answer."""
    async with running() as (_, client):
        response = await client.post(
            "/sign-up/email",
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        assert_json_error(response, 400, {"message": message, "code": "VALIDATION_ERROR"})


async def test_several_validation_issues_are_joined() -> None:
    async with running() as (_, client):
        response = await client.post("/sign-up/email", json={"email": "a@b.co"})
        assert response.json()["message"] == (
            "[body.name] Invalid input: expected string, received undefined; "
            "[body.password] Invalid input: expected string, received undefined"
        )


async def test_validation_comes_before_the_session_check() -> None:
    """§1.2: an invalid body without a session gets 400, not 401."""
    async with running() as (_, client):
        response = await client.post("/revoke-session", json={})
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert (await client.post("/revoke-session", json={"token": "x"})).status_code == 401


# -- responses (§1.3) --------------------------------------------------------------------------


async def test_dates_are_javascript_iso_strings(make_identity: MakeIdentity) -> None:
    """Dates as `Date.toJSON()`: `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC, three fractional digits."""
    iso = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
    clock = Clock(datetime(2026, 3, 2, 9, 5, 7, 123456, tzinfo=UTC))
    async with serve(make_identity, clock=clock) as (_, client):
        browser = Browser()
        user = (await sign_up(client, browser)).json()["user"]
        assert user["createdAt"] == user["updatedAt"] == "2026-03-02T09:05:07.123Z"
        session = (await client.get("/get-session", headers=browser.headers())).json()
        for row in (session["user"], session["session"]):
            dates = {key: value for key, value in row.items() if key.endswith("At")}
            assert dates
            for value in dates.values():
                assert iso.fullmatch(value), value
        assert session["session"]["expiresAt"] == "2026-03-09T09:05:07.123Z"


async def test_get_session_cache_headers(make_identity: MakeIdentity) -> None:
    """get-session is never cached: `Cache-Control: no-store`, `Pragma: no-cache`, with or
    without a session, and on its own errors; not on other endpoints, nor on the router's
    errors before the handler (the origin check), as in better-auth."""
    async with serve(make_identity) as (_, client):
        browser = Browser()
        await sign_up(client, browser)
        for headers in ({}, browser.headers()):
            response = await client.get("/get-session", headers=headers)
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["pragma"] == "no-cache"
        post = await client.post("/get-session", headers=browser.headers())
        assert post.status_code == 405
        assert post.json()["code"] == "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED"
        assert post.headers["cache-control"] == "no-store"
        no_origin = await client.post("/get-session", headers={"cookie": browser.cookie_header()})
        assert no_origin.status_code == 403
        assert "cache-control" not in no_origin.headers
        for other in (
            await client.get("/ok"),
            await client.get("/list-sessions", headers=browser.headers()),
        ):
            assert "cache-control" not in other.headers
            assert "pragma" not in other.headers


async def test_error_page_is_html() -> None:
    async with running() as (_, client):
        response = await client.get("/error", params={"error": "<b>x</b>"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html"
        assert "<b>" not in response.text


# -- failures never leak -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["postgresql://postgres@127.0.0.1:1/x", "mysql://root@127.0.0.1:1/x"],
    ids=["postgresql", "mysql"],
)
async def test_unreachable_database_is_503(url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A database that does not answer gives 503 with a JSON error, no traceback in the
    answer; the server keeps answering (again 503 while the database is away, and the
    endpoints that need no database as usual)."""
    identity = Identity(
        database=url, secret=SECRET, base_url=BASE, env={}, email_and_password={"enabled": True}
    )
    try:
        async with client_for(identity) as client:
            with caplog.at_level(logging.ERROR, logger="bastion.identity"):
                for _ in range(2):
                    response = await client.post(
                        "/sign-in/email", json={"email": "a@b.co", "password": PASSWORD}
                    )
                    assert_json_error(response, 503, UNAVAILABLE)
                    assert "127.0.0.1:1" not in response.text
            assert any("/sign-in/email" in r.getMessage() for r in caplog.records)
            assert (await client.get("/ok")).json() == {"ok": True}
            cookie = {"cookie": "better-auth.session_token=" + "x" * 32}
            assert (await client.get("/get-session", headers=cookie)).json() is None
            with pytest.raises(APIError) as raised:
                await identity.api.sign_in_email(body={"email": "a@b.co", "password": PASSWORD})
            assert raised.value.status == 503
    finally:
        await identity.close()


def _boom(*_: Any) -> None:
    raise RuntimeError("secret internals: /etc/passwd")


@pytest.mark.parametrize(
    "options",
    [
        {"hooks": {"before": _boom}},
        {"hooks": {"after": _boom}},
        {"database_hooks": {"user": {"create": {"before": _boom}}}},
    ],
    ids=["before-hook", "after-hook", "database-hook"],
)
async def test_an_exception_in_a_handler_is_500_json(
    make_identity: MakeIdentity, options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """An exception escaping an endpoint is logged and answered with 500
    `{"message": "Internal Server Error", "code": "INTERNAL_SERVER_ERROR"}`: no traceback,
    no detail, and the next request is served."""
    async with serve(make_identity, **options) as (identity, client):
        body = {"name": "A", "email": "a@b.co", "password": PASSWORD}
        with caplog.at_level(logging.ERROR, logger="bastion.identity"):
            response = await client.post("/sign-up/email", json=body)
        assert_json_error(response, 500, INTERNAL)
        assert "passwd" not in response.text
        assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)
        with pytest.raises(APIError) as raised:
            await identity.api.sign_up_email(body=body)
        assert raised.value.status == 500
        assert raised.value.code is Code.INTERNAL_SERVER_ERROR


async def test_the_server_answers_after_a_failing_request(make_identity: MakeIdentity) -> None:
    calls = 0

    def fail_once(*_: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("first call fails")

    async with serve(make_identity, hooks={"before": fail_once}) as (_, client):
        assert (await client.get("/ok")).status_code == 500
        assert (await client.get("/ok")).json() == {"ok": True}


# -- rate limits (§6.5; S5, S6) ----------------------------------------------------------------


async def _sign_in(
    client: httpx.AsyncClient, email: str | None = None, **headers: str
) -> httpx.Response:
    """A failing sign-in; a new email each time, so only the per-IP limit can trip (the
    per-account one has its own test)."""
    email = email or f"nobody-{secrets.token_hex(4)}@example.com"
    return await client.post(
        "/sign-in/email", json={"email": email, "password": PASSWORD}, headers=headers
    )


def assert_limited(response: httpx.Response) -> None:
    """S5: 429, better-auth 1.7.25's body and `X-Retry-After` (whole seconds), JSON typed
    (1.7.25 sends application/json; the 1.7.1 transcript had text/plain)."""
    assert response.status_code == 429
    assert response.json() == TOO_MANY
    assert response.content == json.dumps(TOO_MANY, separators=(",", ":")).encode()
    assert response.headers["content-type"] == "application/json"
    assert 1 <= int(response.headers["x-retry-after"]) <= 10


@pytest.mark.parametrize("storage", ["memory", "database"])
async def test_sign_in_is_limited_to_3_per_10_seconds(
    make_identity: MakeIdentity, storage: str
) -> None:
    """S5: sign-in allows 3 requests per 10 s per client address, then 429 before any
    password is checked; other paths and other clients keep their own buckets."""
    async with serve(make_identity, rate_limit={"enabled": True, "storage": storage}) as (
        identity,
        client,
    ):
        for _ in range(3):
            assert (await _sign_in(client)).status_code == 401
        limited = await _sign_in(client)
        assert_limited(limited)
        assert "set-cookie" not in limited.headers
        assert (await client.get("/get-session")).status_code == 200
        async with client_for(identity, ("192.0.2.7", 4000)) as other:
            assert (await _sign_in(other)).status_code == 401


async def test_rate_limit_is_off_by_default_outside_production() -> None:
    async with running() as (_, client):
        for _ in range(5):
            assert (await _sign_in(client)).status_code == 401


async def test_spoofed_forwarded_for_does_not_make_fresh_buckets(
    make_identity: MakeIdentity,
) -> None:
    """S6: a client that connects directly cannot pick a bucket with X-Forwarded-For: its
    peer address counts, whatever the header says."""
    async with (
        serve(make_identity, rate_limit={"enabled": True}) as (identity, _),
        client_for(identity, ("198.51.100.20", 5555)) as attacker,
    ):
        for i in range(3):
            response = await _sign_in(attacker, **{"x-forwarded-for": f"203.0.113.{i}"})
            assert response.status_code == 401
        assert_limited(await _sign_in(attacker, **{"x-forwarded-for": "203.0.113.99"}))
        assert_limited(await _sign_in(attacker))


async def test_trusted_proxy_buckets_real_clients_not_spoofed_hops(
    make_identity: MakeIdentity,
) -> None:
    """S6: behind a trusted proxy (`advanced.trusted_proxies`) the client is the right-most
    X-Forwarded-For address the proxy appended. What a client writes to the left of it does
    not make a fresh bucket; distinct real clients behind the proxy have their own."""
    options = {"rate_limit": {"enabled": True}, "advanced": {"trusted_proxies": ["10.0.0.0/8"]}}
    async with (
        serve(make_identity, **options) as (identity, _),
        client_for(identity, ("10.0.0.1", 1234)) as proxy,
    ):
        for i in range(3):
            spoofed = f"{secrets.randbelow(250)}.1.2.{i}, 203.0.113.5"
            assert (await _sign_in(proxy, **{"x-forwarded-for": spoofed})).status_code == 401
        assert_limited(await _sign_in(proxy, **{"x-forwarded-for": "9.9.9.9, 203.0.113.5"}))
        assert_limited(await _sign_in(proxy, **{"x-forwarded-for": "203.0.113.5"}))
        # Two trusted hops (10.0.0.2 is a second proxy): still the same client.
        two_hops = {"x-forwarded-for": "1.1.1.1, 203.0.113.5, 10.0.0.2"}
        assert_limited(await _sign_in(proxy, **two_hops))

        for real in ("203.0.113.6", "203.0.113.7", "2001:db8::1"):
            response = await _sign_in(proxy, **{"x-forwarded-for": f"6.6.6.6, {real}"})
            assert response.status_code == 401, real


async def test_ipv6_clients_share_a_bucket_per_64(make_identity: MakeIdentity) -> None:
    """S6: one host owns a whole /64; each of its addresses is not a fresh bucket."""
    async with serve(make_identity, rate_limit={"enabled": True}) as (identity, _):
        for i in range(3):
            async with client_for(identity, (f"2001:db8:1:2::{i + 1}", 1)) as client:
                assert (await _sign_in(client)).status_code == 401
        async with client_for(identity, ("2001:db8:1:2:ffff::9", 1)) as client:
            assert_limited(await _sign_in(client))
        async with client_for(identity, ("2001:db8:1:3::1", 1)) as client:
            assert (await _sign_in(client)).status_code == 401


async def test_session_ip_address_is_the_clients_own(make_identity: MakeIdentity) -> None:
    """session.ipAddress is the client's address (behind a trusted proxy, the forwarded
    one), not the /64 the limiter counts an IPv6 client in."""
    options = {"advanced": {"trusted_proxies": ["10.0.0.1"]}}
    async with serve(make_identity, **options) as (identity, _):
        for peer, forwarded, expected in (
            ("2001:db8:1:2::5", None, "2001:db8:1:2::5"),
            ("192.0.2.4", None, "192.0.2.4"),
            ("10.0.0.1", "203.0.113.9", "203.0.113.9"),
        ):
            async with client_for(identity, (peer, 1)) as client:
                headers = {"x-forwarded-for": forwarded} if forwarded else {}
                email = f"{secrets.token_hex(4)}@example.com"
                body = {"name": "A", "email": email, "password": PASSWORD}
                response = await client.post("/sign-up/email", json=body, headers=headers)
                token = response.json()["token"]
                session = await identity.api.get_session(
                    headers={"authorization": f"Bearer {token}"}
                )
                assert ipaddress.ip_address(session["session"]["ipAddress"]) == (
                    ipaddress.ip_address(expected)
                )


async def test_per_account_throttle_trips_a_distributed_attack() -> None:
    """S5: failed sign-ins for one account from ever new IPs still hit a limit (per account,
    here lowered to 3 failures from unknown clients), and the 429 carries Retry-After as well
    as better-auth's X-Retry-After. (tests/robustness/test_item08_rate_limits.py has more.)"""
    from bastion.identity import Identity, bearer

    identity = Identity(
        database="sqlite://",
        env={},
        secret="s" * 40,
        base_url="http://localhost:3000",
        email_and_password={"enabled": True},
        plugins=[bearer()],
        rate_limit={
            "enabled": True,
            "account_rules": {
                "/sign-in/email": {
                    "per_client": {"window": 300, "max": 5},
                    "per_account": {"window": 900, "max": 3},
                }
            },
        },
    )
    await identity.migrate()
    try:
        statuses = []
        for i in range(5):
            transport = httpx.ASGITransport(app=identity.app, client=(f"10.0.0.{i + 1}", 1234))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost:3000/api/auth"
            ) as attacker:
                answer = await attacker.post(
                    "/sign-in/email", json={"email": "victim@example.com", "password": "guess-123"}
                )
                statuses.append(answer.status_code)
        assert statuses[:3] == [401, 401, 401]  # 3 failures from unknown clients
        assert statuses[3:] == [429, 429]
        assert answer.json() == {"message": "Too many requests. Please try again later."}
        assert answer.headers["retry-after"] == answer.headers["x-retry-after"]
        assert 0 < int(answer.headers["retry-after"]) <= 900
    finally:
        await identity.close()
