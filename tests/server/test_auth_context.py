"""`GET /api/auth-context`: the request context as the pipeline built it, over HTTP — an
Identity session (user and session, never the token), a JWT's verified claims, RBAC roles
and permissions (and no permission needed for the route itself), anonymous without auth,
401 without a credential."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt

from bastion.auth.providers.identity import IdentityAuth
from bastion.auth.providers.jwt import JWTAuth
from bastion.auth.providers.simple import SimpleAuth
from bastion.auth.rbac import StaticRBAC
from bastion.identity import Identity, bearer
from bastion.server import Bastion

SECRET = "auth-context-tests-secret-0123456789abcdef"
ORIGIN = "http://bastion.test"


def client(app: Bastion) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN)


async def test_an_identity_session_without_its_token() -> None:
    identity = Identity(
        env={},
        secret=SECRET,
        base_url=ORIGIN,
        database="sqlite+aiosqlite:///:memory:",
        email_and_password={"enabled": True},
        plugins=[bearer()],
    )
    await identity.migrate()
    app = Bastion(auth=IdentityAuth(identity))
    async with client(app) as http:
        assert (await http.get("/api/auth-context")).status_code == 401
        signed = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": "correct-horse-9"},
            headers={"origin": ORIGIN},
        )
        assert signed.status_code == 200
        token = signed.json()["token"]
        by_cookie = await http.get("/api/auth-context")
        assert by_cookie.status_code == 200
        seen = by_cookie.json()
        http.cookies.clear()
        by_token = (
            await http.get("/api/auth-context", headers={"authorization": f"Bearer {token}"})
        ).json()
    await identity.close()
    user_id = signed.json()["user"]["id"]
    assert seen["authenticated"] is True and seen["provider"] == "identity"
    assert seen["credential"] == "cookie" and by_token["credential"] == "token"
    assert seen["user"]["id"] == user_id and seen["user"]["email"] == "ada@example.com"
    assert seen["session"]["userId"] == user_id and "token" not in seen["session"]
    assert seen["claims"] is None and seen["organization"] is None
    assert seen["resourceId"] == user_id
    assert token not in by_cookie.text
    assert {k: v for k, v in by_token.items() if k != "credential"} == {
        k: v for k, v in seen.items() if k != "credential"
    }


async def test_jwt_claims_and_rbac() -> None:
    now = int(time.time())
    claims = {"sub": "user-7", "email": "grace@example.com", "roles": ["viewer"], "iat": now,
              "exp": now + 300, "refresh_token": "never-shown"}  # fmt: skip
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    app = Bastion(auth=JWTAuth(secret=SECRET), rbac=StaticRBAC())
    async with client(app) as http:
        answer = await http.get("/api/auth-context", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200  # "viewer" may read; the route needs no permission anyway
    seen: dict[str, Any] = answer.json()
    assert seen["claims"]["sub"] == "user-7" and seen["claims"]["email"] == "grace@example.com"
    assert "refresh_token" not in seen["claims"] and "never-shown" not in answer.text
    assert token not in answer.text
    assert seen["session"] is None and seen["credential"] == "token"
    assert seen["roles"] == ["viewer"] and seen["permissions"] == ["*:read"]
    assert seen["resourceId"] == "user-7"


async def test_no_permission_is_needed_to_ask() -> None:
    app = Bastion(
        auth=SimpleAuth({"t0ken-of-nobody": {"id": "u1", "api_key": "k", "roles": []}}),
        rbac=StaticRBAC(),
    )
    async with client(app) as http:
        answer = await http.get(
            "/api/auth-context", headers={"authorization": "Bearer t0ken-of-nobody"}
        )
        refused = await http.get("/api/agents", headers={"authorization": "Bearer t0ken-of-nobody"})
    assert refused.status_code == 403  # no grants at all
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["user"] == {"id": "u1", "roles": []} and seen["claims"] is None
    assert seen["permissions"] == []


async def test_anonymous_without_auth() -> None:
    async with client(Bastion()) as http:
        seen = (await http.get("/api/auth-context")).json()
    assert seen == {
        "authenticated": False, "credential": None, "user": None, "session": None,
        "claims": None, "resourceId": None, "roles": [], "permissions": [],
        "organization": None, "provider": None,
    }  # fmt: skip
