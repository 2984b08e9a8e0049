"""What the two-factor tests share: an Identity with the plugin and a settable clock, a
user who enabled two-factor (with the authenticator's secret and the backup codes), and
the codes an authenticator app shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp

from bastion.identity import Identity, TwoFactorOTP, bearer, two_factor
from tests.identity.conftest import ORIGIN, running
from tests.identity.routes.helpers import PASSWORD, Clock, browser, set_cookie

__all__ = [
    "ORIGIN",
    "PASSWORD",
    "Clock",
    "Enrolled",
    "Setup",
    "browser",
    "cookie_value",
    "enrolled",
    "set_cookie",
    "setup",
]

TWO_FACTOR = "better-auth.two_factor"
TRUST_DEVICE = "better-auth.trust_device"
SESSION = "better-auth.session_token"
SESSION_DATA = "better-auth.session_data"
DONT_REMEMBER = "better-auth.dont_remember"


@dataclass
class Setup:
    identity: Identity
    client: httpx.AsyncClient
    clock: Clock
    sent: list[TwoFactorOTP] = field(default_factory=list)

    async def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        headers = {**ORIGIN, **kw.pop("headers", {})}
        client = kw.pop("client", self.client)
        if body is None:
            return await client.post(path, headers=headers, **kw)
        return await client.post(path, json=body, headers=headers, **kw)

    async def sign_in(
        self, email: str, client: httpx.AsyncClient | None = None, **extra: Any
    ) -> Any:
        body = {"email": email, "password": PASSWORD, **extra}
        return await self.post("/sign-in/email", body, client=client or self.client)

    async def row(self, email: str) -> dict[str, Any] | None:
        user = await self.identity.db.find_one("user", {"email": email})
        assert user is not None
        return await self.identity.db.find_one("twoFactor", {"userId": user["id"]})

    async def user(self, email: str) -> dict[str, Any]:
        user = await self.identity.db.find_one("user", {"email": email})
        assert user is not None
        return user


@asynccontextmanager
async def setup(*, identity: dict[str, Any] | None = None, **plugin: Any) -> AsyncIterator[Setup]:
    """An Identity with bearer() and two_factor(**plugin) on SQLite, its clock settable.
    Emailed codes land in `sent` unless `otp` says otherwise."""
    clock = Clock()
    sent: list[TwoFactorOTP] = []

    async def send_otp(message: TwoFactorOTP, request: Any) -> None:
        sent.append(message)

    plugin.setdefault("otp", {"send_otp": send_otp})
    options = {"clock": clock, **(identity or {})}
    plugins = [bearer(), two_factor(**plugin)]
    async with running(plugins=plugins, **options) as (server, client):
        client.headers.update(ORIGIN)
        yield Setup(server, client, clock, sent)


@dataclass
class Enrolled:
    email: str
    secret: str  # base32, as the authenticator app reads it from the URI
    backup_codes: list[str]
    clock: Clock
    digits: int = 6
    period: int = 30

    def code(self, steps: int = 0) -> str:
        """The authenticator's code now (`steps` periods later or earlier)."""
        totp = pyotp.TOTP(self.secret, digits=self.digits, interval=self.period)
        return totp.at(self.clock.now.timestamp() + steps * self.period)


def secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


async def enrolled(
    s: Setup, email: str = "ada@example.com", *, sign_out: bool = True, **enable: Any
) -> Enrolled:
    """A user who signed up, enabled two-factor and proved the authenticator works; signed
    out again unless told (their client has no session then)."""
    response = await s.post("/sign-up/email", {"name": "Ada", "email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    response = await s.post("/two-factor/enable", {"password": PASSWORD, **enable})
    assert response.status_code == 200, response.text
    body = response.json()
    query = parse_qs(urlsplit(body["totpURI"]).query)
    user = Enrolled(
        email,
        query["secret"][0],
        body["backupCodes"],
        s.clock,
        digits=int(query["digits"][0]),
        period=int(query["period"][0]),
    )
    verified = await s.post("/two-factor/verify-totp", {"code": user.code()})
    assert verified.status_code == 200, verified.text
    s.clock.advance(user.period)  # the next code is a new one (S9: the last is spent)
    if sign_out:
        await s.post("/sign-out")
        s.client.cookies.clear()
    return user


def cookie_value(response: httpx.Response, name: str) -> str | None:
    found = set_cookie(response, name)
    return None if found is None else found["value"]
