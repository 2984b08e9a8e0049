"""What the route tests share: a settable clock, extra browsers, sign-up/in shortcuts, a
scrypt counter and JWT/cookie readers."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bastion.identity import Identity, crypto
from bastion.identity.db.types import utc_now
from tests.identity.conftest import BASE, ORIGIN

__all__ = [
    "BASE",
    "ORIGIN",
    "PASSWORD",
    "SESSION_COOKIE",
    "Clock",
    "ScryptCounter",
    "browser",
    "jwt_claims",
    "query_of",
    "set_cookie",
    "sign_in",
    "sign_up",
]

PASSWORD = "password123"
SESSION_COOKIE = "better-auth.session_token"


class Clock:
    """`Identity(clock=clock)`: a time that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@asynccontextmanager
async def browser(identity: Identity, *, origin: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of the same server, with its own cookies (a second device); it sends
    the trusted Origin on every request unless `origin=False`."""
    transport = httpx.ASGITransport(app=identity.app)
    headers = ORIGIN if origin else {}
    async with httpx.AsyncClient(
        transport=transport, base_url=f"{BASE}/api/auth", headers=headers
    ) as client:
        yield client


async def sign_up(
    client: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    *,
    name: str = "Ada",
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        "/sign-up/email",
        json={"name": name, "email": email, "password": password, **extra},
        headers=ORIGIN,
    )


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/sign-in/email", json={"email": email, "password": password, **extra}, headers=ORIGIN
    )


class ScryptCounter:
    """Counts the scrypt key derivations the server runs (sign-in's timing equaliser)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real: Callable[[str, str], bytes] = crypto._scrypt

        def counting(password: str, salt: str) -> bytes:
            self.count += 1
            return real(password, salt)

        monkeypatch.setattr(crypto, "_scrypt", counting)

    def take(self) -> int:
        """The count since the last call."""
        count, self.count = self.count, 0
        return count


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def query_of(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def set_cookie(response: httpx.Response, name: str) -> dict[str, str] | None:
    """The Set-Cookie for `name`: {"value": ..., "max-age": ..., "httponly": "", ...}."""
    for line in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in line.split(";"))
        key, _, value = first.partition("=")
        if key == name:
            found = {"value": value}
            for attribute in attributes:
                k, _, v = attribute.partition("=")
                found[k.lower()] = v
            return found
    return None
