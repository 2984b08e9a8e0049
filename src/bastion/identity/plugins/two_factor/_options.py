"""The two-factor plugin's options, error codes and tables (better-auth 1.7.25's `twoFactor`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ...db import Field, Reference, TableSpec
from ...errors import ErrorCode

__all__ = [
    "AccountLockout",
    "BackupCodeOptions",
    "OTPOptions",
    "TOTPOptions",
    "TwoFactorCode",
    "TwoFactorOTP",
    "build",
    "schema",
]


class TwoFactorCode(ErrorCode):
    """better-auth's `TWO_FACTOR_ERROR_CODES`, in its words."""

    OTP_NOT_ENABLED = "OTP not enabled"
    OTP_NOT_CONFIGURED = "OTP is not available"
    OTP_HAS_EXPIRED = "OTP has expired"
    TOTP_NOT_ENABLED = "TOTP not enabled"
    TOTP_ALREADY_ENABLED = "TOTP is already enabled"
    TOTP_NOT_CONFIGURED = "TOTP is not available"
    TWO_FACTOR_NOT_ENABLED = "Two factor isn't enabled"
    BACKUP_CODES_NOT_ENABLED = "Backup codes aren't enabled"
    INVALID_BACKUP_CODE = "Invalid backup code"
    INVALID_CODE = "Invalid code"
    TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE = "Too many attempts. Please request a new code."
    ACCOUNT_TEMPORARILY_LOCKED = (
        "Too many failed verification attempts. Your account is temporarily locked. "
        "Please try again later."
    )
    INVALID_TWO_FACTOR_COOKIE = "Invalid two factor cookie"


@dataclass(frozen=True, slots=True)
class TwoFactorOTP:
    """What `otp={"send_otp": fn}` is called with, `fn(message, request)`: the user (as the
    API returns it) and the one-time code to send them, by email or SMS."""

    user: dict[str, Any]
    otp: str


StoreMode = Literal["plain", "encrypted", "hashed"]
"""How a secret value is kept at rest. A mapping of functions (sync or async) is your own
way: `{"encrypt": fn, "decrypt": fn}`, or for one-time codes `{"hash": fn}`."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TOTPOptions:
    """Authenticator-app codes (RFC 6238, HMAC-SHA1). `digits`: 6 or 8; `period`: seconds a
    code lasts (1-120); `disable`: no TOTP at all, only emailed codes and backup codes;
    `allow_passwordless`: the plugin's setting, unless given here."""

    digits: int = 6
    period: int = 30
    disable: bool = False
    allow_passwordless: bool | None = None

    def __post_init__(self) -> None:
        if self.digits not in (6, 8):
            raise ValueError("totp digits: 6 or 8")
        if not 0 < self.period <= 120:
            raise ValueError("totp period: 1 to 120 seconds")


@dataclass(frozen=True, kw_only=True, slots=True)
class OTPOptions:
    """One-time codes sent by email or SMS. `send_otp(TwoFactorOTP, request)`, sync or
    async, delivers them (without it, no such codes); `period`: minutes a code lasts;
    `allowed_attempts`: wrong tries before the code is dead; `store_otp`: how codes are kept
    in the verification table ("plain", better-auth's default, "encrypted", "hashed", or
    `{"hash": fn}` / `{"encrypt": fn, "decrypt": fn}`)."""

    send_otp: Callable[..., Any] | None = None
    period: float = 3
    digits: int = 6
    allowed_attempts: int = 5
    store_otp: StoreMode | Mapping[str, Callable[..., Any]] = "plain"

    def __post_init__(self) -> None:
        if not 0 < self.digits <= 32:
            raise ValueError("otp digits: 1 to 32")
        if self.period <= 0:
            raise ValueError("otp period: minutes, more than 0")
        _check_store("otp store_otp", self.store_otp, ("plain", "encrypted", "hashed"))


@dataclass(frozen=True, kw_only=True, slots=True)
class BackupCodeOptions:
    """Recovery codes. `amount` codes of `length` characters ([A-Za-z0-9], shown as
    `xxxxx-xxxxx`), or `generate()` -> list of codes, your own. `store`: "encrypted"
    (better-auth's default, XChaCha20-Poly1305 under the secret), "plain", "hashed"
    (Bastion's: SHA-256 of each code; codes need >= 112 bits, so `length` >= 19, and
    `view_backup_codes` cannot show them; a TypeScript server on the same database cannot
    read them), or `{"encrypt": fn, "decrypt": fn}` over the JSON list."""

    amount: int = 10
    length: int | None = None  # 10; 20 when stored hashed
    generate: Callable[[], list[str]] | None = None
    store: StoreMode | Mapping[str, Callable[..., Any]] = "encrypted"
    allow_passwordless: bool | None = None

    def __post_init__(self) -> None:
        if self.amount < 1:
            raise ValueError("backup_codes amount: at least 1")
        _check_store("backup_codes store", self.store, ("plain", "encrypted", "hashed"))
        if self.store == "hashed" and self.generate is None and self.code_length < 19:
            # ASVS 6.5.2: a lookup secret under 112 bits must not be kept under a fast hash
            raise ValueError("hashed backup codes need length >= 19 (112 bits of [A-Za-z0-9])")
        if self.code_length < 4:
            raise ValueError("backup_codes length: at least 4 (20 bits)")

    @property
    def code_length(self) -> int:
        if self.length is not None:
            return self.length
        return 20 if self.store == "hashed" else 10


@dataclass(frozen=True, kw_only=True, slots=True)
class AccountLockout:
    """better-auth 1.7.25's account lockout: `max_failed_attempts` consecutive wrong codes
    (any factor, any challenge) while signing in lock the account's second factor for
    `duration_seconds`; a right code resets the count."""

    enabled: bool = True
    max_failed_attempts: int = 10
    duration_seconds: int = 900

    def __post_init__(self) -> None:
        if self.max_failed_attempts < 1 or self.duration_seconds < 1:
            raise ValueError("account_lockout: max_failed_attempts and duration_seconds >= 1")


def _check_store(what: str, value: Any, modes: tuple[str, ...]) -> None:
    if isinstance(value, str):
        if value not in modes:
            raise ValueError(f"{what}: one of {', '.join(modes)}, or a mapping of functions")
        return
    if not isinstance(value, Mapping) or not (
        {"encrypt", "decrypt"} <= set(value) or ("hash" in value and what.startswith("otp"))
    ):
        raise TypeError(f"{what}: a mode, or {{'encrypt': fn, 'decrypt': fn}}")


T = TypeVar("T")


def build(cls: type[T], value: T | Mapping[str, Any] | None) -> T:
    """An options dataclass from itself, a plain dict (unknown keys refused), or None."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{cls.__name__}: a dict or {cls.__name__}, not {value!r}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(value) - names
    if unknown:
        raise TypeError(f"{cls.__name__} has no option {sorted(unknown)[0]!r}")
    return cls(**value)


def schema(table_name: str | None = None) -> dict[str, TableSpec]:
    """`user.twoFactorEnabled` and the `twoFactor` table, as better-auth 1.7.25 declares them
    (its migrator's DDL: better-auth-ddl-plugins.sql)."""
    return {
        "user": TableSpec(
            fields={
                "twoFactorEnabled": Field(
                    type="boolean", required=False, default=False, input=False
                )
            }
        ),
        "twoFactor": TableSpec(
            fields={
                "secret": Field(type="string", index=True, returned=False),
                "backupCodes": Field(type="string", returned=False),
                "userId": Field(
                    type="string", references=Reference("user"), index=True, returned=False
                ),
                "verified": Field(type="boolean", required=False, default=True, input=False),
                "failedVerificationCount": Field(
                    type="number", required=False, default=0, input=False, returned=False
                ),
                "lockedUntil": Field(type="date", required=False, input=False, returned=False),
            },
            name=table_name,
        ),
    }
