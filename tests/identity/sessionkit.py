"""What the session, transport and secondary-storage tests share: a browser's cookie jar, a
clock to move, sign-up and sign-in through HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from bastion.identity import Identity
from tests.identity.conftest import ORIGIN, MakeIdentity

PASSWORD = "correct horse battery staple"
TOKEN_NAME = "better-auth.session_token"
DATA_NAME = "better-auth.session_data"
REMEMBER_NAME = "better-auth.dont_remember"


class Clock:
    """`Identity(clock=...)`: the time stands still until a test moves it."""

    def __init__(self, start: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def set_cookie_lines(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Cookie name → its last whole `Set-Cookie` line in the response."""
    return {line.split("=", 1)[0]: line for line in set_cookie_lines(response)}


def cookie_value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1]


def is_expired(line: str) -> bool:
    return "; Max-Age=0" in line


class Browser:
    """The cookies a browser would hold: set by `Set-Cookie` lines in order, dropped by
    `Max-Age=0`. `headers()` is what it sends (plus the Origin a browser adds to POSTs)."""

    def __init__(self) -> None:
        self.jar: dict[str, str] = {}

    def absorb(self, response: httpx.Response) -> httpx.Response:
        for line in set_cookie_lines(response):
            name = line.split("=", 1)[0]
            if is_expired(line):
                self.jar.pop(name, None)
            else:
                self.jar[name] = cookie_value(line)
        return response

    def copy(self) -> Browser:
        other = Browser()
        other.jar = dict(self.jar)
        return other

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.jar.items())

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {**ORIGIN, **extra}
        if self.jar:
            headers["cookie"] = self.cookie_header()
        return headers


def forgetful(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The client keeps no cookies: every test says which cookies each request carries."""
    client.cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return client


@asynccontextmanager
async def serve(
    make_identity: MakeIdentity, **options: Any
) -> AsyncIterator[tuple[Identity, httpx.AsyncClient]]:
    """`make_identity(**options)` with a client that stores no cookies."""
    async with make_identity(**options) as (identity, client):
        yield identity, forgetful(client)


async def sign_up(
    client: httpx.AsyncClient,
    browser: Browser | None = None,
    *,
    email: str = "ada@example.com",
    name: str = "Ada",
    remember_me: bool | None = None,
    **fields: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"name": name, "email": email, "password": PASSWORD, **fields}
    if remember_me is not None:
        body["rememberMe"] = remember_me
    response = await client.post("/sign-up/email", json=body)
    assert response.status_code == 200, response.text
    if browser is not None:
        browser.absorb(response)
    return response


async def sign_in(
    client: httpx.AsyncClient,
    browser: Browser | None = None,
    *,
    email: str = "ada@example.com",
    remember_me: bool | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"email": email, "password": PASSWORD}
    if remember_me is not None:
        body["rememberMe"] = remember_me
    headers = browser.headers() if browser is not None else {}
    response = await client.post("/sign-in/email", json=body, headers=headers)
    assert response.status_code == 200, response.text
    if browser is not None:
        browser.absorb(response)
    return response


async def get_session(
    client: httpx.AsyncClient, browser: Browser | None = None, **query: str
) -> httpx.Response:
    headers = browser.headers() if browser is not None else {}
    response = await client.get("/get-session", params=query, headers=headers)
    assert response.status_code == 200, response.text
    if browser is not None:
        browser.absorb(response)
    return response


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
