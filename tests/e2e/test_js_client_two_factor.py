"""The official better-auth JS client with `twoFactorClient()`, unchanged, against Bastion and,
in the same test, against TypeScript better-auth 1.7.25, on SQLite, PostgreSQL and MariaDB.

One flow, run on both: enable two-factor and prove the authenticator, sign out, sign in
(the client's `onTwoFactorRedirect` fires), finish with a TOTP code, with an emailed code,
with a backup code while trusting the device, sign in again on the trusted device without a
challenge, and turn two-factor off. Each step's `{data, error}` must be the same on both
servers, up to the values that are random (tokens, ids, dates, secrets, codes).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from bastion.identity import Identity, TwoFactorOTP, bearer, two_factor
from tests.e2e.bastion_server import serve
from tests.e2e.js_client import JsClient, js_client
from tests.e2e.node_peer import better_auth_server
from tests.e2e.wire import compare_json
from tests.services import scratch_database

pytestmark = pytest.mark.e2e

SECRET = "js-client-two-factor-secret-0123456789abcdef"
PASSWORD = "correct-horse-battery"
TRUST_DEVICE = "better-auth.trust_device"


async def two_factor_flow(
    client: JsClient, email: str, emailed_code: Callable[[str], Awaitable[str]]
) -> list[tuple[str, Any, Any]]:
    """The flow through `client`; each step's (name, data, error), random values masked."""
    steps: list[tuple[str, Any, Any]] = []

    async def step(name: str, call: str, args: dict[str, Any] | None = None) -> Any:
        data, error = await client.call(call, args)
        steps.append((name, data, error))
        return data, error

    data, error = await step(
        "sign up", "signUp.email", {"email": email, "password": PASSWORD, "name": "Jo"}
    )
    assert error is None, error
    data, error = await step(
        "enable, wrong password", "twoFactor.enable", {"password": "nope-nope"}
    )
    assert error["code"] == "INVALID_PASSWORD"
    data, error = await step("enable", "twoFactor.enable", {"password": PASSWORD})
    assert error is None and data["method"] == "totp", error
    totp = pyotp.TOTP(parse_qs(urlsplit(data["totpURI"]).query)["secret"][0])
    backup_codes = data["backupCodes"]
    data, error = await step("verify totp", "twoFactor.verifyTotp", {"code": totp.now()})
    assert error is None, error
    await step("sign out", "signOut")

    data, error = await step("sign in", "signIn.email", {"email": email, "password": PASSWORD})
    assert data == {"twoFactorRedirect": True, "twoFactorMethods": ["totp", "otp"]}, (data, error)
    assert await client.redirects() == [{"twoFactorMethods": ["totp", "otp"]}]
    data, error = await step("session before the code", "getSession")
    assert data is None
    data, error = await step("wrong code", "twoFactor.verifyTotp", {"code": "000000"})
    assert error["code"] == "INVALID_CODE"
    # The next period's code: Bastion refuses the one just used to enrol (S9).
    data, error = await step(
        "verify totp at sign-in", "twoFactor.verifyTotp", {"code": totp.at(time.time() + 30)}
    )
    assert error is None and data["user"]["email"] == email, error
    data, error = await step("session", "getSession")
    assert data["user"]["twoFactorEnabled"] is True
    await step("sign out again", "signOut")

    await step(
        "sign in for an emailed code", "signIn.email", {"email": email, "password": PASSWORD}
    )
    data, error = await step("send otp", "twoFactor.sendOtp")
    assert data == {"status": True}, error
    data, error = await step(
        "verify otp", "twoFactor.verifyOtp", {"code": await emailed_code(email)}
    )
    assert error is None, error
    await step("sign out a third time", "signOut")

    await step("sign in for a backup code", "signIn.email", {"email": email, "password": PASSWORD})
    data, error = await step(
        "verify backup code, trust device",
        "twoFactor.verifyBackupCode",
        {"code": backup_codes[0], "trustDevice": True},
    )
    assert error is None, error
    assert TRUST_DEVICE in await client.cookies()
    await step("sign out, trusted", "signOut")
    data, error = await step(
        "sign in, trusted", "signIn.email", {"email": email, "password": PASSWORD}
    )
    assert error is None and data["redirect"] is False, (data, error)
    data, error = await step(
        "generate backup codes", "twoFactor.generateBackupCodes", {"password": PASSWORD}
    )
    assert error is None and len(data["backupCodes"]) == 10
    data, error = await step("disable", "twoFactor.disable", {"password": PASSWORD})
    assert data == {"status": True}, error
    return [(name, _masked(data), _masked(error)) for name, data, error in steps]


def _masked(value: Any) -> Any:
    """Random values by their kind: backup codes, the secret in a totpURI."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "backupCodes" and isinstance(item, list):
                assert all(re.fullmatch(r"[A-Za-z0-9]{5}-[A-Za-z0-9]{5}", c) for c in item)
                out[key] = ["xxxxx-xxxxx"] * len(item)
            elif key == "totpURI":
                out[key] = re.sub(r"secret=[A-Z2-7]+&", "secret=SECRET&", item)
            else:
                out[key] = _masked(item)
        return out
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
async def test_two_factor_through_the_official_client(kind: str) -> None:
    email = "jo@example.com"
    codes: list[TwoFactorOTP] = []

    async def send_otp(message: TwoFactorOTP, request: Any) -> None:
        codes.append(message)

    async def our_code(to: str) -> str:
        return next(m.otp for m in reversed(codes) if m.user["email"] == to)

    async with scratch_database(kind) as our_database, scratch_database(kind) as ts_database:

        def identity_for(origin: str) -> Identity:
            return Identity(
                env={},
                secret=SECRET,
                base_url=origin,
                database=our_database,
                email_and_password={"enabled": True},
                plugins=[bearer(), two_factor(issuer="Acme", otp={"send_otp": send_otp})],
            )

        async with (
            serve(identity_for) as (_, origin),
            js_client(f"{origin}/api/auth", "cookie", CLIENT_PLUGINS="twoFactor") as client,
        ):
            ours = await two_factor_flow(client, email, our_code)

        async with (
            better_auth_server(
                ts_database, BETTER_AUTH_SECRET=SECRET, TWO_FACTOR='{"issuer": "Acme"}'
            ) as server,
            js_client(server.base_url, "cookie", CLIENT_PLUGINS="twoFactor") as client,
        ):

            async def their_code(to: str) -> str:
                return str((await server.next_mail("two-factor-otp", to))["token"])

            theirs = await two_factor_flow(client, email, their_code)

    assert [name for name, _, _ in ours] == [name for name, _, _ in theirs]
    for (name, our_data, our_error), (_, their_data, their_error) in zip(ours, theirs, strict=True):
        problems = compare_json(their_data, our_data, f"{name}: data")
        problems += compare_json(their_error, our_error, f"{name}: error")
        assert not problems, "\n".join(problems)
