"""How a second factor is asked for and proved: the sign-in check, the challenge behind the
`two_factor` cookie, its attempt budget, the account lockout, the trusted device and the
session that replaces another (better-auth 1.7.25's `twoFactor` hook, `verifyTwoFactor`).
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ...cookies import sign_cookie_value
from ...crypto import URL_SAFE, hmac_sign, random_string
from ...db import CORE_SCHEMA, Row, eq, lte
from ...endpoint import Ctx
from ...errors import APIError, Code
from ...routes.common import check_password_not_too_long
from ...sessions import (
    auth_cookie,
    cookie_attributes,
    expire_auth_cookie,
    remembered,
    resolve_session,
    set_session_cookie,
    start_session,
)
from ...store import Store
from ._options import AccountLockout, BackupCodeOptions, OTPOptions, TOTPOptions, TwoFactorCode

__all__ = [
    "SIGN_IN_PATHS",
    "Attempt",
    "Challenge",
    "Settings",
    "check_password",
    "cookie_names",
    "find_row",
    "finish",
    "open_challenge",
    "read_signed",
    "replace_session",
    "sign_in_check",
]

TABLE = "twoFactor"
SIGN_IN_PATHS = frozenset({"/sign-in/email", "/sign-in/username", "/sign-in/phone-number"})
"""The sign-ins better-auth 1.7.25 asks a second factor of. Not social sign-in (the callback
or an ID token), a magic link or an emailed code: those prove more than a password."""
ATTEMPTS_PER_CHALLENGE = 5  # TOTP and backup codes, per two_factor cookie (better-auth's)
_CORE_SESSION = frozenset(CORE_SCHEMA.fields("session"))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The plugin's resolved options, and what it keeps in this process."""

    issuer: str | None
    totp: TOTPOptions
    otp: OTPOptions
    backup_codes: BackupCodeOptions
    skip_verification_on_enable: bool
    allow_passwordless: bool
    trust_device_max_age: int
    cookie_max_age: int
    lockout: AccountLockout
    _locks: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict, repr=False)

    @asynccontextmanager
    async def user_lock(self, user_id: str) -> AsyncIterator[None]:
        """One TOTP check-and-record at a time per user in this process (S9)."""
        lock, users = self._locks.get(user_id, (asyncio.Lock(), 0))
        self._locks[user_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[user_id]
            if users <= 1:
                del self._locks[user_id]
            else:
                self._locks[user_id] = (lock, users - 1)


# -- the twoFactor row ---------------------------------------------------------------------


async def find_row(store: Store, user_id: str) -> Row | None:
    return await store.db.find_one(TABLE, eq("userId", user_id))


# -- passwords -----------------------------------------------------------------------------


async def check_password(
    ctx: Ctx[Any], user_id: str, password: str | None, allow_passwordless: bool
) -> None:
    """better-auth's password step of the two-factor endpoints: skipped with
    `allow_passwordless` for a user who has no password; otherwise 400 INVALID_PASSWORD for
    none, a wrong one, or a user without a password (after the same hashing work), and 400
    PASSWORD_TOO_LONG past the maximum."""
    store = ctx.context.store
    account = await store.find_credential_account(user_id)
    stored = account.get("password") if account else None
    if allow_passwordless and not stored:
        return
    if not password:
        raise APIError(400, Code.INVALID_PASSWORD)
    check_password_not_too_long(ctx, password)
    if not stored:
        await ctx.context.hasher.dummy_verify(password)
        raise APIError(400, Code.INVALID_PASSWORD)
    if not await ctx.context.hasher.verify(stored, password):
        raise APIError(400, Code.INVALID_PASSWORD)


# -- cookies -------------------------------------------------------------------------------


def cookie_names(ctx: Ctx[Any]) -> tuple[str, str]:
    return auth_cookie(ctx, "two_factor"), auth_cookie(ctx, "trust_device")


def read_signed(ctx: Ctx[Any], name: str) -> str | None:
    raw = ctx.cookies.get(name)
    return None if raw is None else ctx.context.session_cookies.unsign(raw)


def _trust_token(ctx: Ctx[Any], user_id: str, trust_id: str) -> str:
    return hmac_sign(ctx.context.secret, f"{user_id}!{trust_id}", urlsafe=True)


async def _new_trusted_device(ctx: Ctx[Any], store: Store, settings: Settings, user_id: str) -> str:
    """A trust-device row for `user_id`; the cookie value that names it."""
    trust_id = f"trust-device-{random_string(32, URL_SAFE)}"
    await store.create_verification(trust_id, user_id, settings.trust_device_max_age)
    return f"{_trust_token(ctx, user_id, trust_id)}!{trust_id}"


def _set_trust_cookie(ctx: Ctx[Any], settings: Settings, value: str) -> None:
    _, trust_name = cookie_names(ctx)
    ctx.set_cookie(
        trust_name,
        sign_cookie_value(ctx.context.secret, value),
        cookie_attributes(ctx, settings.trust_device_max_age),
    )


async def _trusted(ctx: Ctx[Any], user_id: str, value: str) -> str | None:
    """The trust-device id a valid trust_device cookie value names for `user_id`: its HMAC
    binds it to the user, its row must exist, hold the user and not have expired."""
    parts = value.split("!")
    token, trust_id = parts[0], parts[1] if len(parts) > 1 else ""
    if not token or not trust_id:
        return None
    if not hmac.compare_digest(token, _trust_token(ctx, user_id, trust_id)):
        return None
    row = await ctx.context.store.find_verification(trust_id)
    if row is None or row["value"] != user_id:
        return None
    return trust_id


# -- the sign-in check ---------------------------------------------------------------------


async def sign_in_check(ctx: Ctx[Any], settings: Settings, user: dict[str, Any]) -> Any:
    """A password sign-in of a user with two-factor on: no session; the `two_factor` cookie
    and `{"twoFactorRedirect": true, "twoFactorMethods": [...]}` instead (S11: nothing is
    written before the second factor, no session, no cookie cache). A valid trust_device
    cookie lets the sign-in through, and is renewed."""
    if ctx.endpoint.path not in SIGN_IN_PATHS or not user.get("twoFactorEnabled"):
        return None
    store = ctx.context.store
    two_factor_name, trust_name = cookie_names(ctx)
    trust_value = read_signed(ctx, trust_name)
    if trust_value is not None:
        trust_id = await _trusted(ctx, user["id"], trust_value)
        if trust_id is not None:  # a trusted device: a new id and cookie, the sign-in goes on
            await store.delete_verification(trust_id)
            _set_trust_cookie(
                ctx, settings, await _new_trusted_device(ctx, store, settings, user["id"])
            )
            return None
        expire_auth_cookie(ctx, trust_name)
    token_name, data_name, remember_name = ctx.context.session_cookies.names
    if getattr(ctx.body, "remember_me", None) is False:
        # better-auth's sign-in set it before its hook took the session back: kept, so the
        # session the second factor makes is not remembered either.
        secret = ctx.context.secret
        ctx.set_cookie(
            remember_name, sign_cookie_value(secret, "true"), cookie_attributes(ctx, None)
        )
    for name in (token_name, data_name, *_chunks(ctx, data_name)):
        expire_auth_cookie(ctx, name)
    identifier = f"2fa-{random_string(20, URL_SAFE)}"
    max_age = settings.cookie_max_age
    await store.create_verification(identifier, user["id"], max_age)
    await store.create_verification(f"2fa-attempts-{identifier}", "0", max_age)
    ctx.set_cookie(
        two_factor_name,
        sign_cookie_value(ctx.context.secret, identifier),
        cookie_attributes(ctx, max_age),
    )
    methods = []
    if not settings.totp.disable:
        row = await find_row(store, user["id"])
        if row is not None and row.get("verified") is not False:
            methods.append("totp")
    if settings.otp.send_otp is not None:
        methods.append("otp")
    return {"twoFactorRedirect": True, "twoFactorMethods": methods}


def _chunks(ctx: Ctx[Any], data_name: str) -> list[str]:
    prefix = data_name + "."
    return [n for n in ctx.cookies if n.startswith(prefix) and n[len(prefix) :].isdigit()]


# -- the challenge -------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """Who is proving a second factor. With a session (`session` set): a signed-in user
    enrolling or re-checking a factor. Without: a sign-in, through the `two_factor` cookie
    whose verification row `key` names."""

    user: dict[str, Any]
    session: dict[str, Any] | None
    key: str  # the 2fa-… id, or `<userId>!<sessionId>` with a session
    expires_at: datetime | None = None
    dont_remember: bool = False

    @property
    def signing_in(self) -> bool:
        return self.session is None


def _invalid_cookie() -> APIError:
    return APIError(401, TwoFactorCode.INVALID_TWO_FACTOR_COOKIE)


async def open_challenge(ctx: Ctx[Any]) -> Challenge:
    """The request's session (read from storage, never the cookie cache), else its
    `two_factor` cookie; 401 INVALID_TWO_FACTOR_COOKIE when it has neither valid."""
    found = await resolve_session(ctx, disable_cookie_cache=True)
    if found is not None:
        session, user = found
        return Challenge(user, session, f"{user['id']}!{session['id']}")
    two_factor_name, _ = cookie_names(ctx)
    identifier = read_signed(ctx, two_factor_name)
    # Only a challenge's own id: no other signed value of ours names one.
    if (
        identifier is None
        or not identifier.startswith("2fa-")
        or identifier.startswith(("2fa-attempts-", "2fa-otp-", "2fa-totp-"))
    ):
        raise _invalid_cookie()
    store = ctx.context.store
    row = await store.find_verification(identifier)
    if row is None:
        raise _invalid_cookie()
    owner = await store.find_user_by_id(row["value"])
    if owner is None:
        raise _invalid_cookie()
    return Challenge(
        owner, None, identifier, expires_at=row["expiresAt"], dont_remember=not remembered(ctx)
    )


@dataclass(frozen=True)
class Attempt:
    """One try at a sign-in challenge's code: `record_failure()` after a wrong code,
    `restore()` when the check itself failed."""

    store: Store
    identifier: str
    attempts: int
    expires_at: datetime
    now: datetime

    async def _rearm(self, count: int) -> None:
        seconds = math.ceil((self.expires_at - self.now).total_seconds())
        if seconds > 0:
            await self.store.create_verification(self.identifier, str(count), seconds)

    async def record_failure(self) -> None:
        await self._rearm(self.attempts + 1)

    async def restore(self) -> None:
        await self._rearm(self.attempts)


async def begin_attempt(ctx: Ctx[Any], challenge: Challenge) -> Attempt | None:
    """Take one of the sign-in challenge's attempts (none to take with a session). The
    sixth try of one challenge cancels it: 400 TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE, the
    cookie expired; a concurrent try finds none: 401 INVALID_TWO_FACTOR_COOKIE."""
    if not challenge.signing_in:
        return None
    store = ctx.context.store
    identifier = f"2fa-attempts-{challenge.key}"
    consumed = await store.consume_verification(identifier)
    if consumed is None:
        raise _invalid_cookie()
    value = str(consumed["value"]).strip()
    attempts = int(value) if value.isdigit() else ATTEMPTS_PER_CHALLENGE
    if attempts >= ATTEMPTS_PER_CHALLENGE:
        await store.consume_verification(challenge.key)
        expire_auth_cookie(ctx, cookie_names(ctx)[0])
        raise APIError(400, TwoFactorCode.TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE)
    assert challenge.expires_at is not None  # set for every sign-in challenge
    return Attempt(store, identifier, attempts, challenge.expires_at, ctx.context.now())


async def finish(
    ctx: Ctx[Any], settings: Settings, challenge: Challenge, *, trust_device: bool
) -> dict[str, Any]:
    """The second factor is proved. With a session: `{token, user}` of it. Signing in: the
    challenge consumed, a new session with its cookies (not remembered when the sign-in
    asked so), the `two_factor` cookie expired and, with `trust_device`, a trusted device."""
    user = challenge.user
    public = ctx.context.public_row("user", user)
    if challenge.session is not None:
        return {"token": challenge.session["token"], "user": public}
    two_factor_name, _ = cookie_names(ctx)
    trust_value = None
    async with ctx.context.store.atomic() as tx:
        consumed = await tx.consume_verification(challenge.key)
        session = None
        if consumed is not None and consumed["value"] == user["id"]:
            session = await start_session(
                ctx, user, dont_remember=challenge.dont_remember, store=tx
            )
            if trust_device:
                trust_value = await _new_trusted_device(ctx, tx, settings, user["id"])
    if session is None:  # another request finished this challenge first
        expire_auth_cookie(ctx, two_factor_name)
        raise _invalid_cookie()
    set_session_cookie(ctx, session, user, dont_remember=challenge.dont_remember)
    expire_auth_cookie(ctx, two_factor_name)
    if trust_value is not None:
        _set_trust_cookie(ctx, settings, trust_value)
        expire_auth_cookie(ctx, ctx.context.session_cookies.names[2])
    return {"token": session["token"], "user": public}


# -- the account lockout -------------------------------------------------------------------


async def assert_not_locked(ctx: Ctx[Any], settings: Settings, row: Row) -> None:
    """429 ACCOUNT_TEMPORARILY_LOCKED (with Retry-After) while the lock holds; a lock that
    has run out is lifted, its count reset."""
    locked_until = row.get("lockedUntil")
    if not settings.lockout.enabled or locked_until is None:
        return
    now = ctx.context.now()
    if locked_until > now:
        seconds = max(1, math.ceil((locked_until - now).total_seconds()))
        raise APIError(
            429, TwoFactorCode.ACCOUNT_TEMPORARILY_LOCKED, headers={"retry-after": str(seconds)}
        )
    await ctx.context.store.db.update_many(
        TABLE,
        eq("id", row["id"]) & lte("lockedUntil", now),
        {"failedVerificationCount": 0, "lockedUntil": None},
    )


async def record_failure(ctx: Ctx[Any], settings: Settings, row: Row) -> None:
    """One more consecutive failure of the account's second factor; at the maximum, the lock
    (S5: per account, whichever addresses the tries come from). A compare-and-set, so that
    concurrent failures are all counted."""
    lockout = settings.lockout
    if not lockout.enabled:
        return
    db = ctx.context.store.db
    for _ in range(16):
        current = await db.find_one(TABLE, eq("id", row["id"]))
        if current is None:
            return
        old = current.get("failedVerificationCount")
        count = (old or 0) + 1
        values: dict[str, Any] = {"failedVerificationCount": count}
        if count >= lockout.max_failed_attempts:
            values["lockedUntil"] = ctx.context.now() + timedelta(seconds=lockout.duration_seconds)
        if await db.update_many(
            TABLE, eq("id", row["id"]) & eq("failedVerificationCount", old), values
        ):
            return


async def reset_failures(ctx: Ctx[Any], settings: Settings, row: Row) -> None:
    if settings.lockout.enabled:
        await ctx.context.store.db.update_many(
            TABLE, eq("id", row["id"]), {"failedVerificationCount": 0, "lockedUntil": None}
        )


# -- sessions ------------------------------------------------------------------------------


async def replace_session(
    ctx: Ctx[Any], store: Store, old: Mapping[str, Any], user: dict[str, Any]
) -> dict[str, Any]:
    """A new session in place of `old` (its address, agent and plugin fields kept, a full
    lifetime), `old` deleted: better-auth's after a change to the user's second factor. Set
    its cookie with `set_new_session_cookie` once the block it runs in is done."""
    extra = {k: v for k, v in old.items() if k not in _CORE_SESSION}
    session = await store.create_session(
        user,
        expires_in=ctx.options.session.expires_in,
        ip_address=old.get("ipAddress") or "",
        user_agent=old.get("userAgent") or "",
        extra=extra,
    )
    await store.delete_session(old["token"])
    return session


def set_new_session_cookie(ctx: Ctx[Any], session: dict[str, Any], user: dict[str, Any]) -> None:
    """The cookie of a replaced session: not remembered if the request's was not."""
    set_session_cookie(ctx, session, user, dont_remember=not remembered(ctx))
