"""Driving Bastion's social sign-in over HTTP as a browser would: POST /sign-in/social, the
provider's login pages (a stand-in on 127.0.0.1), then Bastion's callback, with the
browser's cookie jar kept by an httpx client on the Identity's ASGI app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bastion.identity import Identity
from tests.identity.social.login_pages import Callback, sign_in

ORIGIN = "http://127.0.0.1:4111"
BASE = f"{ORIGIN}/api/auth"
SECRET = "social-sign-in-tests-secret-0123456789"


def callback_uri(provider_id: str) -> str:
    return f"{BASE}/callback/{provider_id}"


@asynccontextmanager
async def identity_client(**options: Any) -> AsyncIterator[tuple[Identity, httpx.AsyncClient]]:
    """An Identity on an in-memory SQLite database, and a browser-like client for it."""
    options.setdefault("database", "sqlite+aiosqlite:///:memory:")
    options.setdefault("email_and_password", {"enabled": True})
    identity = Identity(secret=SECRET, base_url=BASE, env={}, **options)
    await identity.migrate()
    transport = httpx.ASGITransport(app=identity.app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url=ORIGIN, headers={"origin": ORIGIN}
        ) as client:
            yield identity, client
    finally:
        await identity.close()


async def start(client: httpx.AsyncClient, provider: str, **body: Any) -> str:
    """POST /sign-in/social; the provider's authorization URL."""
    response = await client.post("/api/auth/sign-in/social", json={"provider": provider, **body})
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    return url


async def at_provider(url: str, login: str, **kw: Any) -> Callback:
    """The provider's login pages, filled in as `login` (in a thread: they are sync)."""
    return await asyncio.to_thread(sign_in, url, login, **kw)


async def back(client: httpx.AsyncClient, callback: Callback) -> httpx.Response:
    """The browser arriving at Bastion's callback."""
    path = urlsplit(callback.url).path
    if callback.method == "POST":
        return await client.post(path, data=callback.params)
    return await client.get(path, params=callback.params)


async def social_sign_in(
    client: httpx.AsyncClient, provider: str, login: str, **body: Any
) -> httpx.Response:
    """The whole dance; Bastion's answer to the callback (a redirect)."""
    url = await start(client, provider, **body)
    return await back(client, await at_provider(url, login))


def redirect_error(response: httpx.Response) -> str | None:
    """The `error` of a callback's redirect, None when it carries none."""
    assert response.status_code == 302, response.text
    values = parse_qs(urlsplit(response.headers["location"]).query).get("error")
    return values[0] if values else None


async def session_of(client: httpx.AsyncClient) -> Mapping[str, Any] | None:
    response = await client.get("/api/auth/get-session")
    assert response.status_code == 200, response.text
    found: Mapping[str, Any] | None = response.json()
    return found


async def count(identity: Identity, model: str) -> int:
    return await identity.db.count(model)
