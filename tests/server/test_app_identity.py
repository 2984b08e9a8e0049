"""One Bastion app with IdentityAuth: sign up at /api/auth (the mounted Identity), then use
the agent API with the session cookie or the bearer token."""

from __future__ import annotations

from typing import Any

from bastion.auth import RequestContext
from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import Identity, bearer
from bastion.server import Bastion, tool
from tests.auth.doubles import client
from tests.hashing import cheap_password

BASE = "http://localhost:4111"
SECRET = "test-secret-0123456789abcdef0123456789abcdef"


@tool
async def whoami(context: RequestContext) -> dict[str, Any]:
    """The caller's user id and memory owner."""
    return {"email": context.user["user"]["email"], "resourceId": context.resource_id}


async def test_sign_up_then_call_the_api_with_cookie_and_bearer() -> None:
    identity = Identity(
        secret=SECRET,
        base_url=BASE,
        database="sqlite://",
        email_and_password=cheap_password(),
        plugins=[bearer()],
        env={},
    )
    await identity.migrate()
    app = Bastion(auth=IdentityAuth(identity), tools=[whoami])
    try:
        async with client(app, BASE) as http:
            signed_up = await http.post(
                "/api/auth/sign-up/email",
                json={"name": "Ada", "email": "ada@example.com", "password": "horse battery"},
                headers={"origin": BASE},
            )
            assert signed_up.status_code == 200, signed_up.text
            user_id = signed_up.json()["user"]["id"]
            token = signed_up.headers["set-auth-token"]
            session_cookie = http.cookies.get("better-auth.session_token")
            assert session_cookie
            http.cookies.clear()

            cookie = {"cookie": f"better-auth.session_token={session_cookie}"}
            by_cookie = await http.post("/api/tools/whoami/execute", json={}, headers=cookie)
            assert by_cookie.json() == {
                "result": {"email": "ada@example.com", "resourceId": user_id}
            }
            by_bearer = await http.get("/api/tools", headers={"Authorization": f"Bearer {token}"})
            assert by_bearer.status_code == 200

            signed_out = await http.post("/api/auth/sign-out", headers={**cookie, "origin": BASE})
            assert signed_out.status_code == 200
            http.cookies.clear()
            refused = await http.get("/api/tools", headers=cookie)
            assert refused.status_code == 401
            # A session cookie was sent, so the challenge names the error (S30).
            assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    finally:
        await identity.close()
