"""`Bastion(cors=...)`: preflights answered before auth (they never carry credentials),
CORS headers on actual answers for listed origins only, errors included; off by default."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.identity import Identity
from bastion.server import CORS, Agent, Bastion
from tests.auth.doubles import Recording, ScriptedModel, client, text

APP_ORIGIN = "https://app.example.com"
AUTH = {"Authorization": "Bearer good"}


def preflight(origin: str, method: str = "POST", headers: str = "content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


def make_app(**kw: Any) -> tuple[Bastion, Recording]:
    auth = Recording({"good": {"id": "ana"}})
    agent = Agent(id="helper", name="Helper", instructions="", model=ScriptedModel(text("hi")))
    kw.setdefault("cors", [APP_ORIGIN, "http://localhost:5173"])
    return Bastion(agents=[agent], auth=auth, **kw), auth


async def test_preflight_is_answered_without_credentials() -> None:
    app, auth = make_app()
    async with client(app) as http:
        response = await http.options("/api/agents/helper/stream", headers=preflight(APP_ORIGIN))
    assert response.status_code == 204
    assert response.content == b""
    headers = response.headers
    assert headers["access-control-allow-origin"] == APP_ORIGIN
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-allow-methods"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    assert headers["access-control-allow-headers"] == (
        "Content-Type, Authorization, X-Bastion-Stream-Format"
    )
    assert headers["access-control-max-age"] == "600"
    assert headers["vary"] == "Origin"
    assert auth.tokens == []  # the provider was never asked


async def test_preflight_from_an_unlisted_origin_is_refused() -> None:
    app, auth = make_app()
    async with client(app) as http:
        for origin in ("https://evil.example", "https://app.example.com.evil.example", "null"):
            response = await http.options("/api/agents", headers=preflight(origin, "GET"))
            assert response.status_code == 403, origin
            assert response.json() == {"error": "Origin not allowed"}
            assert "access-control-allow-origin" not in response.headers
            assert "access-control-allow-credentials" not in response.headers
    assert auth.tokens == []


async def test_actual_answers_carry_cors_headers_for_listed_origins() -> None:
    app, _ = make_app()
    async with client(app) as http:
        ok = await http.get("/api/agents", headers={**AUTH, "Origin": "http://localhost:5173"})
        refused = await http.get("/api/agents", headers={"Origin": APP_ORIGIN})
        streamed = await http.post(
            "/api/agents/helper/stream",
            json={"messages": "hi"},
            headers={**AUTH, "Origin": APP_ORIGIN},
        )
    for response, origin in ((ok, "http://localhost:5173"), (refused, APP_ORIGIN)):
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-credentials"] == "true"
        assert response.headers["access-control-expose-headers"] == "set-auth-token"
        assert response.headers["vary"] == "Origin"
    assert ok.status_code == 200 and list(ok.json()) == ["helper"]
    # A page can read why it was refused.
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_unlisted_or_no_origin_gets_no_cors_headers() -> None:
    app, _ = make_app()
    async with client(app) as http:
        other = await http.get("/api/agents", headers={**AUTH, "Origin": "https://evil.example"})
        same = await http.get("/api/agents", headers=AUTH)
    for response in (other, same):
        assert response.status_code == 200  # served: reading it is the browser's call
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-credentials" not in response.headers
        assert response.headers["vary"] == "Origin"


async def test_off_by_default_preflights_meet_the_pipeline() -> None:
    app, _ = make_app(cors=None)
    async with client(app) as http:
        response = await http.options("/api/agents", headers=preflight(APP_ORIGIN, "GET"))
        plain = await http.get("/api/agents", headers={**AUTH, "Origin": APP_ORIGIN})
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in plain.headers
    assert "vary" not in plain.headers


async def test_a_plain_options_request_is_not_a_preflight() -> None:
    app, auth = make_app()
    async with client(app) as http:
        response = await http.options("/api/agents", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 401  # no Access-Control-Request-Method: the pipeline's
    assert auth.tokens == [""]
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_the_mounted_identity_is_covered_too() -> None:
    identity = Identity(
        secret="test-secret-0123456789abcdef0123456789abcdef",
        base_url="http://testserver",
        database="sqlite://",
        trusted_origins=[APP_ORIGIN],
        env={},
    )
    app = Bastion(identity=identity, cors=[APP_ORIGIN])
    try:
        async with client(app) as http:
            pre = await http.options("/api/auth/sign-in/email", headers=preflight(APP_ORIGIN))
            ok = await http.get("/api/auth/ok", headers={"Origin": APP_ORIGIN})
    finally:
        await identity.close()
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == APP_ORIGIN
    assert ok.json() == {"ok": True}
    assert ok.headers["access-control-allow-origin"] == APP_ORIGIN
    assert ok.headers["access-control-expose-headers"] == "set-auth-token"


async def test_options_object_and_origin_normalization() -> None:
    cors = CORS(
        origins=["HTTPS://App.Example.com:443/", "http://[::1]:8080"],
        allow_headers=["Content-Type", "Authorization", "X-Playground-Access"],
        expose_headers=[],
        max_age=60,
    )
    app, _ = make_app(cors=cors)
    async with client(app) as http:
        pre = await http.options("/api/agents", headers=preflight(APP_ORIGIN, "GET"))
        ipv6 = await http.options("/api/agents", headers=preflight("http://[::1]:8080", "GET"))
        actual = await http.get("/api/agents", headers={**AUTH, "Origin": APP_ORIGIN})
    assert pre.status_code == 204 and ipv6.status_code == 204
    assert pre.headers["access-control-allow-headers"] == (
        "Content-Type, Authorization, X-Playground-Access"
    )
    assert pre.headers["access-control-max-age"] == "60"
    assert "access-control-expose-headers" not in actual.headers
    assert actual.headers["access-control-allow-origin"] == APP_ORIGIN


@pytest.mark.parametrize(
    "origins",
    [
        ["*"],
        ["null"],
        ["https://app.example.com/path"],
        ["https://app.example.com?x=1"],
        ["ftp://app.example.com"],
        ["app.example.com"],
        ["https://user@app.example.com"],
        ["https://app.example.com:99999"],
        [],
    ],
)
def test_bad_origins_fail_at_construction(origins: list[str]) -> None:
    with pytest.raises(ValueError):
        Bastion(cors=origins)


def test_a_single_string_is_refused() -> None:
    with pytest.raises(TypeError):
        Bastion(cors=APP_ORIGIN)
    with pytest.raises(TypeError):
        CORS(origins=APP_ORIGIN)
