"""Issue 11, item 10: clients that send a token they always send, and the README's Node
snippet of the official client.

better-auth 1.7.25 checks Origin and form CSRF on the request as the client sent it; the
cookie its bearer plugin derives from `Authorization` is not a browser's cookie, so a CLI that
always sends its (maybe stale) token can still sign in and up. The same requests are compared
with the real better-auth in tests/e2e/test_live_differential.py (cases `item10-*`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from bastion.identity import Identity, bearer
from tests.e2e.node_peer import node_executable
from tests.hashing import cheap_password
from tests.test_cli import bastion_serve

ROOT = Path(__file__).resolve().parents[2]
NODE_PEER = ROOT / "tests" / "e2e" / "node"
BASE = "http://127.0.0.1:4111"
LOGIN = {"email": "cli@example.com", "password": "correct-horse"}


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    identity = Identity(
        database="sqlite://",
        secret="item10-secret-0123456789abcdef0123456789",
        email_and_password=cheap_password(),
        plugins=[bearer()],
        env={},
    )
    await identity.migrate()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=identity.app), base_url=BASE
    ) as client:
        signed_up = await client.post("/api/auth/sign-up/email", json={"name": "C", **LOGIN})
        assert signed_up.status_code == 200
        client.cookies.clear()
        yield client
    await identity.close()


@pytest.mark.parametrize("token", ["garbage", "garbage.c2lnbmF0dXJl", ""])
async def test_item10_sign_in_with_any_bearer_header_is_not_an_origin_failure(
    http: httpx.AsyncClient, token: str
) -> None:
    answer = await http.post(
        "/api/auth/sign-in/email", json=LOGIN, headers={"authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["set-auth-token"]


async def test_item10_sign_up_with_a_stale_bearer_token(http: httpx.AsyncClient) -> None:
    signed_in = await http.post("/api/auth/sign-in/email", json=LOGIN)
    stale = signed_in.headers["set-auth-token"]
    http.cookies.clear()
    signed_out = await http.post("/api/auth/sign-out", headers={"authorization": f"Bearer {stale}"})
    assert signed_out.status_code == 200
    answer = await http.post(
        "/api/auth/sign-up/email",
        json={"name": "D", "email": "d@example.com", "password": "correct-horse"},
        headers={"authorization": f"Bearer {stale}"},
    )
    assert answer.status_code == 200, answer.text


async def test_item10_a_real_browser_cookie_still_needs_a_trusted_origin(
    http: httpx.AsyncClient,
) -> None:
    """The fix looks at the request as sent: a browser's own cookie without Origin is still
    refused (S19), with or without a bearer header beside it."""
    for extra in ({}, {"authorization": "Bearer garbage"}):
        answer = await http.post(
            "/api/auth/sign-in/email",
            json=LOGIN,
            headers={"cookie": "better-auth.session_token=x", **extra},
        )
        assert answer.status_code == 403
        assert answer.json()["code"] == "MISSING_OR_NULL_ORIGIN"


async def test_item10_node_fetch_without_origin_is_refused_as_better_auth_does(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post(
        "/api/auth/sign-up/email",
        json={"name": "N", "email": "n@example.com", "password": "correct-horse"},
        headers={"sec-fetch-mode": "cors", "accept": "*/*", "user-agent": "node"},
    )
    assert answer.status_code == 403
    assert answer.json() == {"message": "Missing or null Origin", "code": "MISSING_OR_NULL_ORIGIN"}


def readme_node_snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"```js\n(import \{ createAuthClient \}.*?)```", readme, re.S)
    assert found, "README.md has no ```js snippet of the official client"
    return found.group(1)


def test_item10_the_readme_snippet_of_the_official_client_runs_as_written(
    tmp_path: Path,
) -> None:
    node = node_executable()  # skips, or fails in CI, without Node and the peer's packages
    snippet = readme_node_snippet()
    assert snippet.count(BASE) == 2  # the one change made here: the port it serves on
    (tmp_path / "node_modules").symlink_to(NODE_PEER / "node_modules")
    with bastion_serve(cwd=tmp_path, env={}) as server:
        script = tmp_path / "client.mjs"
        script.write_text(snippet.replace(BASE, server.url))
        ran = subprocess.run(
            [node, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "ada@example.com"
