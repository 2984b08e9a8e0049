"""Issue 11, item 9: forwarded headers are trusted only from configured proxies (security
check S43, "proxy headers only from trusted proxies").

uvicorn's own proxy-header handling (on by default, trusting 127.0.0.1) rewrote the client
address from `X-Forwarded-For` before Bastion saw the request, so any local client chose its
recorded session IP, its access-log IP and its rate-limit bucket. `bastion serve` now runs
uvicorn with `proxy_headers=False`: the Identity's `advanced.trusted_proxies` (S6) is the one
rule, and without it the TCP peer is the client.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.test_cli import SECRET, bastion_serve

FORGED = "203.0.113.9"

RATE_LIMITED_APP = f"""
from pathlib import Path

from bastion.auth import IdentityAuth
from bastion.identity import Identity
from bastion.server import Bastion

identity = Identity(
    secret="{SECRET}",
    database=f"sqlite:///{{Path(__file__).with_name('identity.db')}}",
    email_and_password={{"enabled": True}},
    rate_limit={{"enabled": True}},
)
app = Bastion(auth=IdentityAuth(identity))
"""


def test_item09_a_local_client_cannot_choose_its_recorded_address(tmp_path: Path) -> None:
    env = {"BASTION_SECRET": SECRET}
    with (
        bastion_serve(cwd=tmp_path, env=env) as server,
        httpx.Client(base_url=server.url, headers={"x-forwarded-for": FORGED}) as http,
    ):
        signed_up = http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": "password123"},
        )
        assert signed_up.status_code == 200, signed_up.text
        session = http.get("/api/auth/get-session").json()["session"]
        assert session["ipAddress"] == "127.0.0.1"
    access = [line for line in server.output.splitlines() if '"POST /api/auth/sign-up/' in line]
    assert len(access) == 1 and "127.0.0.1:" in access[0], server.output
    assert FORGED not in server.output


def test_item09_a_password_spray_with_fresh_forwarded_for_gets_429(tmp_path: Path) -> None:
    (tmp_path / "limited_app.py").write_text(RATE_LIMITED_APP)
    with bastion_serve("limited_app:app", cwd=tmp_path, env={"BASTION_SECRET": SECRET}) as server:
        statuses = []
        for i in range(10):  # one password against many accounts, a new address each time
            answer = httpx.post(
                f"{server.url}/api/auth/sign-in/email",
                json={"email": f"user{i}@example.com", "password": "Winter2026!"},
                headers={"x-forwarded-for": f"203.0.113.{i + 1}"},
            )
            statuses.append(answer.status_code)
    assert statuses[0] == 401
    assert 429 in statuses, statuses  # one bucket: the peer's, 127.0.0.1
