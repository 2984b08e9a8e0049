"""Two-factor with TypeScript better-auth 1.7.25 and Bastion on one database and one secret.

For each database (PostgreSQL, SQLite, MariaDB), the real better-auth server
(`ba-peer.mjs serve` with bearer() and twoFactor()) and a Bastion Identity with bearer() and
two_factor() run side by side. What one writes for the second factor, the other reads: the
encrypted TOTP secret (the same authenticator app signs in on both), the encrypted backup
codes (one used on either is spent on both), the sign-in challenge behind the `two_factor`
cookie, an emailed code, the trusted device, and turning it off.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
import pytest_asyncio

from bastion.identity import Identity, TwoFactorOTP, bearer, two_factor
from tests.e2e.bastion_server import free_port, serve
from tests.e2e.node_peer import BetterAuthServer, better_auth_server
from tests.services import scratch_database

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SECRET = "shared-two-factor-secret-0123456789abcdef0123"
PASSWORD = "correct-horse-battery"
SESSION = "better-auth.session_token"
TRUST_DEVICE = "better-auth.trust_device"
_emails = itertools.count()


@dataclass
class Peer:
    """One of the two servers, spoken to over HTTP with a cookie jar of the test's own."""

    name: str
    base_url: str
    client: httpx.AsyncClient
    foreign_origin: str  # the other server's origin, sent as Origin

    async def call(
        self, path: str, body: Any = None, *, jar: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = {"origin": self.foreign_origin}
        if jar:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        request = httpx.Request("POST", self.base_url + path, headers=headers, json=body or {})
        response = await self.client.send(request)
        if jar is not None:
            absorb(jar, response)
        return response

    async def session(self, jar: dict[str, str]) -> Any:
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
        response = await self.client.get(self.base_url + "/get-session", headers=headers)
        return response.json()


def absorb(jar: dict[str, str], response: httpx.Response) -> None:
    for line in response.headers.get_list("set-cookie"):
        name, _, rest = line.split(";", 1)[0].partition("=")
        if rest and "Max-Age=0" not in line:
            jar[name] = rest
        else:
            jar.pop(name, None)


@dataclass
class Servers:
    kind: str
    ts: Peer
    bastion: Peer
    ts_server: BetterAuthServer
    bastion_codes: list[TwoFactorOTP] = field(default_factory=list)

    async def emailed_code(self, peer: Peer, to: str) -> str:
        if peer is self.ts:
            return str((await self.ts_server.next_mail("two-factor-otp", to))["token"])
        return next(m.otp for m in reversed(self.bastion_codes) if m.user["email"] == to)


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["postgresql", "sqlite", "mysql"]
)
async def servers(request: pytest.FixtureRequest) -> AsyncIterator[Servers]:
    bastion_port = free_port()
    bastion_origin = f"http://127.0.0.1:{bastion_port}"
    async with (
        scratch_database(request.param) as database_url,
        better_auth_server(
            database_url,
            BETTER_AUTH_SECRET=SECRET,
            TRUSTED_ORIGINS=bastion_origin,
            TWO_FACTOR='{"issuer": "Shared"}',
        ) as ts_server,
    ):
        codes: list[TwoFactorOTP] = []

        async def send_otp(message: TwoFactorOTP, request: Any) -> None:
            codes.append(message)

        def identity_for(origin: str) -> Identity:
            return Identity(
                env={},
                secret=SECRET,
                base_url=origin,
                database=database_url,
                email_and_password={"enabled": True},
                trusted_origins=[ts_server.origin],
                plugins=[bearer(), two_factor(issuer="Shared", otp={"send_otp": send_otp})],
            )

        async with (
            serve(identity_for, port=bastion_port) as (_, origin),
            httpx.AsyncClient(timeout=30) as client,
        ):
            ts = Peer("better-auth", ts_server.base_url, client, foreign_origin=origin)
            ours = Peer("bastion", f"{origin}/api/auth", client, foreign_origin=ts_server.origin)
            yield Servers(request.param, ts, ours, ts_server, codes)


def both_ways(servers: Servers, direction: str) -> tuple[Peer, Peer]:
    """(the server that writes, the one that reads)."""
    if direction == "ts-to-bastion":
        return servers.ts, servers.bastion
    return servers.bastion, servers.ts


DIRECTIONS = ["ts-to-bastion", "bastion-to-ts"]


@dataclass
class TwoFactorUser:
    email: str
    secret: str
    backup_codes: list[str]

    def code(self, steps: int = 0) -> str:
        """The authenticator's code; `steps` ahead for a second use within one period (a
        Bastion that saw a code refuses it again, S9)."""
        totp = pyotp.TOTP(self.secret)
        return totp.at(time.time() + 30 * steps)


async def enrol(peer: Peer, tag: str) -> TwoFactorUser:
    """A user who turned two-factor on at `peer` and proved their authenticator there."""
    email = f"{tag}-{next(_emails)}@example.com"
    jar: dict[str, str] = {}
    body = {"name": "Shared", "email": email, "password": PASSWORD}
    assert (await peer.call("/sign-up/email", body, jar=jar)).status_code == 200
    enabled = await peer.call("/two-factor/enable", {"password": PASSWORD}, jar=jar)
    assert enabled.status_code == 200, (peer.name, enabled.text)
    uri = enabled.json()["totpURI"]
    assert uri.startswith("otpauth://totp/Shared:")
    user = TwoFactorUser(email, parse_qs(urlsplit(uri).query)["secret"][0], [])
    user.backup_codes = enabled.json()["backupCodes"]
    verified = await peer.call("/two-factor/verify-totp", {"code": user.code()}, jar=jar)
    assert verified.status_code == 200, (peer.name, verified.text)
    return user


async def challenge(peer: Peer, email: str) -> dict[str, str]:
    """A password sign-in at `peer`: the challenge's cookies."""
    jar: dict[str, str] = {}
    response = await peer.call("/sign-in/email", {"email": email, "password": PASSWORD}, jar=jar)
    assert response.json() == {
        "twoFactorRedirect": True,
        "twoFactorMethods": ["totp", "otp"],
    }, (peer.name, response.text)
    return jar


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_the_same_authenticator_signs_in_on_the_other(
    servers: Servers, direction: str
) -> None:
    writer, reader = both_ways(servers, direction)
    user = await enrol(writer, f"totp-{writer.name}")
    jar = await challenge(reader, user.email)
    wrong = await reader.call("/two-factor/verify-totp", {"code": "000000"}, jar=jar)
    assert wrong.json()["code"] == "INVALID_CODE"
    response = await reader.call("/two-factor/verify-totp", {"code": user.code(1)}, jar=jar)
    assert response.status_code == 200, (reader.name, response.text)
    assert SESSION in jar
    for peer in (reader, writer):  # the session is one for both
        found = await peer.session(jar)
        assert found["user"]["email"] == user.email and found["user"]["twoFactorEnabled"]


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_a_backup_code_from_one_works_once_on_either(
    servers: Servers, direction: str
) -> None:
    writer, reader = both_ways(servers, direction)
    user = await enrol(writer, f"backup-{writer.name}")
    jar = await challenge(reader, user.email)
    used = await reader.call(
        "/two-factor/verify-backup-code", {"code": user.backup_codes[0]}, jar=jar
    )
    assert used.status_code == 200, (reader.name, used.text)
    assert (await reader.session(jar))["user"]["email"] == user.email
    for peer in (writer, reader):  # spent on both
        again = await challenge(peer, user.email)
        refused = await peer.call(
            "/two-factor/verify-backup-code", {"code": user.backup_codes[0]}, jar=again
        )
        assert (refused.status_code, refused.json()["code"]) == (401, "INVALID_BACKUP_CODE")
    last = await challenge(writer, user.email)
    other = await writer.call(
        "/two-factor/verify-backup-code", {"code": user.backup_codes[1]}, jar=last
    )
    assert other.status_code == 200, (writer.name, other.text)


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_a_challenge_begun_on_one_is_completed_on_the_other(
    servers: Servers, direction: str
) -> None:
    writer, reader = both_ways(servers, direction)
    user = await enrol(servers.ts, f"cross-{writer.name}")
    jar = await challenge(writer, user.email)  # the two_factor cookie of one…
    response = await reader.call("/two-factor/verify-totp", {"code": user.code(1)}, jar=jar)
    assert response.status_code == 200, (reader.name, response.text)  # …and the other's answer
    assert (await writer.session(jar))["user"]["email"] == user.email


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_an_emailed_code_from_one_is_accepted_by_the_other(
    servers: Servers, direction: str
) -> None:
    writer, reader = both_ways(servers, direction)
    user = await enrol(reader, f"otp-{writer.name}")
    jar = await challenge(writer, user.email)
    sent = await writer.call("/two-factor/send-otp", {}, jar=jar)
    assert sent.json() == {"status": True}
    code = await servers.emailed_code(writer, user.email)
    response = await reader.call("/two-factor/verify-otp", {"code": code}, jar=jar)
    assert response.status_code == 200, (reader.name, response.text)


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_a_device_trusted_on_one_is_trusted_by_the_other(
    servers: Servers, direction: str
) -> None:
    writer, reader = both_ways(servers, direction)
    user = await enrol(servers.ts, f"trust-{writer.name}")
    jar = await challenge(writer, user.email)
    body = {"code": user.code(1), "trustDevice": True}
    trusted = await writer.call("/two-factor/verify-totp", body, jar=jar)
    assert trusted.status_code == 200 and TRUST_DEVICE in jar, (writer.name, trusted.text)
    device = {TRUST_DEVICE: jar[TRUST_DEVICE]}
    signed_in = await reader.call(
        "/sign-in/email", {"email": user.email, "password": PASSWORD}, jar=device
    )
    assert signed_in.json()["redirect"] is False, (reader.name, signed_in.text)
    assert SESSION in device and device[TRUST_DEVICE] != jar[TRUST_DEVICE]  # renewed


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_turned_off_on_one_is_off_on_the_other(servers: Servers, direction: str) -> None:
    writer, reader = both_ways(servers, direction)
    user = await enrol(writer, f"off-{writer.name}")
    jar: dict[str, str] = {}
    # Signed in by the backup code, then two-factor off (with the password).
    jar = await challenge(writer, user.email)
    await writer.call("/two-factor/verify-backup-code", {"code": user.backup_codes[0]}, jar=jar)
    off = await writer.call("/two-factor/disable", {"password": PASSWORD}, jar=jar)
    assert off.json() == {"status": True}, (writer.name, off.text)
    plain = await reader.call("/sign-in/email", {"email": user.email, "password": PASSWORD})
    assert plain.json()["redirect"] is False and plain.json()["user"]["twoFactorEnabled"] is False
