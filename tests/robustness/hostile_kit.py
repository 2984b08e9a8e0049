"""What the hostile-input tests of issue 11 (items 2-4 and test_hostile_json) share: the
default app of `bastion serve` on a scratch database, a signed-in user, and raw JSON text.

Request bodies are written by hand (`raw_json`): a lone surrogate must travel as the escape
`\\ud800`, valid JSON that JavaScript clients send, and `[[[…]]]` 970 levels deep is more
than `json.dumps` can write.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from bastion.standalone import create_app
from tests.services import scratch_database

__all__ = [
    "BASE",
    "PASSWORD",
    "SECRET",
    "bearer",
    "default_app",
    "nested",
    "post_raw",
    "raw_json",
    "sign_up",
]

BASE = "http://127.0.0.1:4111"
SECRET = "hostile-input-secret-0123456789abcdef0123456789"
PASSWORD = "correct-horse-battery"


@asynccontextmanager
async def default_app(dialect: str = "sqlite") -> AsyncIterator[httpx.AsyncClient]:
    """`bastion serve`'s embedded default on a scratch `dialect` database, started, and a
    client that sends a trusted Origin (so the CSRF checks let the requests through to the
    code under test)."""
    async with scratch_database(dialect) as url:
        app = create_app({"BASTION_SECRET": SECRET, "DATABASE_URL": url})
        async with (
            app.lifespan(),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE, headers={"origin": BASE}
            ) as http,
        ):
            yield http


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def sign_up(http: httpx.AsyncClient, email: str, name: str = "Ada") -> str:
    """A new user, signed in: its bearer token."""
    answer = await http.post(
        "/api/auth/sign-up/email", json={"name": name, "email": email, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return answer.headers["set-auth-token"]


def raw_json(value: Any) -> bytes:
    """JSON text with every non-ASCII character escaped: lone surrogates included."""
    return json.dumps(value, ensure_ascii=True).encode()


def nested(depth: int, leaf: str = "1") -> str:
    """JSON text of objects `{"a": {"a": … leaf}}`, `depth` levels deep."""
    return '{"a":' * depth + leaf + "}" * depth


async def post_raw(
    http: httpx.AsyncClient, path: str, body: bytes | str, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return await http.post(
        path, content=content, headers={"content-type": "application/json", **(headers or {})}
    )
