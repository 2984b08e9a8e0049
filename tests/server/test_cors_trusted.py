"""`Bastion(cors="trusted")`: the Identity's trusted origins ($BETTER_AUTH_TRUSTED_ORIGINS
included) are the CORS origins, on /api/auth and /api alike; the default app of `bastion
serve` uses it. Over HTTP against a served default app, and construction rules in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import Identity
from bastion.server import Bastion, trusted_cors
from bastion.standalone import create_app
from tests.e2e.default_server import serve_default

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
FRONT = "http://127.0.0.1:5173"  # a front end on another port, listed in the env var
OTHER = "http://127.0.0.1:5174"  # one that is not
PASSWORD = "horse battery staple"


def preflight(origin: str, method: str = "POST", headers: str = "content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    env = {
        "BASTION_SECRET": SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path}/bastion.db",
        "BETTER_AUTH_TRUSTED_ORIGINS": f" {FRONT}/ ,https://app.example.com",
    }
    async with serve_default(env) as origin:
        yield origin


async def test_preflights_on_both_prefixes(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        for path, headers in (
            ("/api/auth/sign-up/email", "content-type"),
            ("/api/auth/get-session", "authorization"),
            ("/api/agents/assistant/generate", "content-type, authorization"),
        ):
            allowed = await http.options(path, headers=preflight(FRONT, headers=headers))
            assert allowed.status_code == 204, (path, allowed.text)
            assert allowed.headers["access-control-allow-origin"] == FRONT
            assert allowed.headers["access-control-allow-credentials"] == "true"
            assert "POST" in allowed.headers["access-control-allow-methods"]
            assert "Authorization" in allowed.headers["access-control-allow-headers"]
            assert allowed.headers["vary"] == "Origin"

            refused = await http.options(path, headers=preflight(OTHER, headers=headers))
            assert refused.status_code == 403, path
            assert refused.json() == {"error": "Origin not allowed"}
            assert "access-control-allow-origin" not in refused.headers
            assert "access-control-allow-credentials" not in refused.headers

        # http://localhost:$PORT (trusted by the default app) and the base URL's origin.
        port = served.rsplit(":", 1)[1]
        for own in (f"http://localhost:{port}", served):
            answer = await http.options("/api/agents", headers=preflight(own, "GET"))
            assert answer.headers["access-control-allow-origin"] == own


async def test_credentialed_requests_from_a_listed_origin(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        signed_up = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD},
            headers={"Origin": FRONT},
        )
        assert signed_up.status_code == 200, signed_up.text
        assert signed_up.headers["access-control-allow-origin"] == FRONT
        assert signed_up.headers["access-control-allow-credentials"] == "true"
        # The page may read the bearer token.
        assert "set-auth-token" in signed_up.headers["access-control-expose-headers"]
        assert signed_up.headers["set-auth-token"]
        assert http.cookies.get("better-auth.session_token")

        # The session cookie, from the page's origin, on both prefixes.
        session = await http.get("/api/auth/get-session", headers={"Origin": FRONT})
        assert session.status_code == 200
        assert session.json()["user"]["email"] == "ada@example.com"
        assert session.headers["access-control-allow-origin"] == FRONT
        token = session.json()["session"]["token"]

        agents = await http.get("/api/agents", headers={"Origin": FRONT})
        assert agents.status_code == 200
        assert agents.headers["access-control-allow-origin"] == FRONT
        assert agents.headers["access-control-allow-credentials"] == "true"

        # The session's token as a bearer token, without cookies.
        http.cookies.clear()
        said = await http.post(
            "/api/agents/assistant/generate",
            json={"messages": "who am i?"},
            headers={"Origin": FRONT, "Authorization": f"Bearer {token}"},
        )
        assert said.status_code == 200, said.text
        assert said.headers["access-control-allow-origin"] == FRONT
        assert said.json()["toolResults"][0]["result"]["email"] == "ada@example.com"

        # An error still carries the headers: the page can read its 401.
        anonymous = await http.get("/api/agents", headers={"Origin": FRONT})
        assert anonymous.status_code == 401
        assert anonymous.headers["access-control-allow-origin"] == FRONT


async def test_requests_from_an_unlisted_origin_get_no_cors_headers(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        # The Identity refuses a sign-up a page of an untrusted origin sends.
        refused = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Eve", "email": "eve@example.com", "password": PASSWORD},
            headers={"Origin": OTHER, "Cookie": "x=1"},
        )
        assert refused.status_code == 403, refused.text
        assert "access-control-allow-origin" not in refused.headers
        assert refused.headers["vary"] == "Origin"

        signed_up = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD},
        )
        assert signed_up.status_code == 200, signed_up.text
        # Answered (a browser would not let the page read it): no CORS header grants it.
        for path in ("/api/auth/get-session", "/api/agents"):
            answer = await http.get(path, headers={"Origin": OTHER})
            assert answer.status_code == 200
            assert "access-control-allow-origin" not in answer.headers
            assert "access-control-allow-credentials" not in answer.headers


# -- construction ------------------------------------------------------------------------


def identity(**options: object) -> Identity:
    options.setdefault("base_url", "http://127.0.0.1:4111")
    env = options.pop("env", {})
    assert isinstance(env, dict)
    return Identity(secret=SECRET, database="sqlite://", env=env, **options)


def test_trusted_origins_are_the_cors_origins() -> None:
    given = identity(
        trusted_origins=["https://App.example.com:443/", "myapp://", "http://localhost:4111"],
        env={"BETTER_AUTH_TRUSTED_ORIGINS": "http://localhost:5173, https://app.example.com"},
    )
    cors = trusted_cors(given, max_age=60)
    # The base URL's origin first; canonical, without duplicates; the app scheme skipped.
    assert list(cors.origins) == [
        "http://127.0.0.1:4111",
        "https://app.example.com",
        "http://localhost:4111",
        "http://localhost:5173",
    ]
    assert cors.max_age == 60
    app = Bastion(auth=IdentityAuth(given), cors="trusted")
    assert app.cors is not None and list(app.cors.origins) == list(cors.origins)


@pytest.mark.parametrize(
    "entry", ["*.example.com", "https://*.example.com", "http://localhost:*", "https://a?.com"]
)
def test_a_pattern_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="is a pattern"):
        Bastion(auth=IdentityAuth(identity(trusted_origins=[entry])), cors="trusted")
    # From the environment too: `bastion serve` says so at start-up.
    env = {"BETTER_AUTH_TRUSTED_ORIGINS": entry, "BASTION_SECRET": SECRET}
    with pytest.raises(ValueError, match="is a pattern"):
        create_app({**env, "DATABASE_URL": "sqlite://"})


def test_a_trusted_origins_callable_is_refused() -> None:
    given = identity(trusted_origins=lambda request: ["https://app.example.com"])
    with pytest.raises(ValueError, match="callable"):
        Bastion(identity=given, cors="trusted")


def test_trusted_needs_an_identity_with_origins() -> None:
    with pytest.raises(ValueError, match="needs an Identity"):
        Bastion(cors="trusted")
    with pytest.raises(ValueError, match="trusts no origin"):
        Bastion(identity=identity(base_url=None), cors="trusted")
    with pytest.raises(TypeError, match="'trusted'"):
        Bastion(cors="https://app.example.com")
