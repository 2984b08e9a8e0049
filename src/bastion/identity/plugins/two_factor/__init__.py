"""better-auth's two-factor plugin (`twoFactor()`, 1.7.25), wire- and database-compatible.

    identity = Identity(
        email_and_password={"enabled": True},
        plugins=[two_factor(issuer="Acme", otp={"send_otp": send_code})],
    )

Endpoints under /two-factor/ (enable, disable, get-totp-uri, verify-totp, send-otp,
verify-otp, generate-backup-codes, verify-backup-code) and the server-only
`identity.api.view_backup_codes` and `identity.api.generate_totp`. A password sign-in of a
user with two-factor on answers `{"twoFactorRedirect": true, "twoFactorMethods": [...]}`
with the signed `two_factor` cookie and no session; the second factor makes the session.
See docs/two-factor.md.

Security items: S9 (a TOTP code works once, ±1 step), S10 (backup codes from a CSPRNG,
~59.5 bits, used once; encrypted at rest as better-auth keeps them, or hashed with 119-bit
codes: `backup_codes={"store": "hashed"}`), S11 (no session and no cookie cache before the
second factor), S5 (3 requests per 10 s per address on every /two-factor/ path; per account,
5 tries per challenge and a lockout after 10 consecutive failures).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import Plugin
from ._flow import SIGN_IN_PATHS, Settings, sign_in_check
from ._options import (
    AccountLockout,
    BackupCodeOptions,
    OTPOptions,
    TOTPOptions,
    TwoFactorCode,
    TwoFactorOTP,
    build,
    schema,
)
from ._routes import RULE, endpoints

__all__ = [
    "RULE",
    "SIGN_IN_PATHS",
    "AccountLockout",
    "BackupCodeOptions",
    "OTPOptions",
    "TOTPOptions",
    "TwoFactorCode",
    "TwoFactorOTP",
    "two_factor",
]


def two_factor(
    *,
    issuer: str | None = None,
    totp: TOTPOptions | Mapping[str, Any] | None = None,
    otp: OTPOptions | Mapping[str, Any] | None = None,
    backup_codes: BackupCodeOptions | Mapping[str, Any] | None = None,
    skip_verification_on_enable: bool = False,
    allow_passwordless: bool = False,
    trust_device_max_age: int = 30 * 86400,
    two_factor_cookie_max_age: int = 600,
    account_lockout: AccountLockout | Mapping[str, Any] | None = None,
    table_name: str | None = None,
) -> Plugin:
    """The two-factor plugin (better-auth's `twoFactor(options)`, in snake_case).

    `issuer`: the name authenticator apps show (default: the Identity's `app_name`);
    `totp`, `otp`, `backup_codes`, `account_lockout`: `TOTPOptions`, `OTPOptions`,
    `BackupCodeOptions`, `AccountLockout` or plain dicts of their fields;
    `skip_verification_on_enable`: two-factor on at `enable`, before any code was checked;
    `allow_passwordless`: users without a password enable and disable it without one;
    `trust_device_max_age`: seconds "trust this device" lasts (30 days);
    `two_factor_cookie_max_age`: seconds a sign-in has to prove the second factor (600);
    `table_name`: the `twoFactor` table's name in the database.
    """
    if trust_device_max_age < 1 or two_factor_cookie_max_age < 1:
        raise ValueError("trust_device_max_age and two_factor_cookie_max_age: seconds, >= 1")
    settings = Settings(
        issuer=issuer,
        totp=build(TOTPOptions, totp),
        otp=build(OTPOptions, otp),
        backup_codes=build(BackupCodeOptions, backup_codes),
        skip_verification_on_enable=skip_verification_on_enable,
        allow_passwordless=allow_passwordless,
        trust_device_max_age=trust_device_max_age,
        cookie_max_age=two_factor_cookie_max_age,
        lockout=build(AccountLockout, account_lockout),
    )

    async def check(ctx: Any, user: dict[str, Any]) -> Any:
        return await sign_in_check(ctx, settings, user)

    return Plugin(
        id="two-factor",
        endpoints=endpoints(settings),
        schema=schema(table_name),
        error_codes=TwoFactorCode,
        sign_in_checks=(check,),
    )
