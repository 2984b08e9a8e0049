"""The two-factor endpoints, answering as better-auth 1.7.25's do (spec §10.1 and its
errata: see docs/two-factor.md)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationError
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from ...._callbacks import call_user
from ...crypto import DIGITS, URL_SAFE, random_string
from ...db import eq, lt
from ...endpoint import JSON_NULL, Ctx, Endpoint
from ...errors import APIError, Code
from ...ratelimit import RateRule
from ...sessions import expire_auth_cookie, sensitive_session, session_required
from ...symmetric import decrypt, encrypt
from ...validation import Body, describe_errors, js_type
from . import _secrets as secrets
from ._flow import (
    TABLE,
    Challenge,
    Settings,
    assert_not_locked,
    begin_attempt,
    check_password,
    cookie_names,
    find_row,
    finish,
    open_challenge,
    read_signed,
    record_failure,
    replace_session,
    reset_failures,
    set_new_session_cookie,
)
from ._options import TwoFactorCode, TwoFactorOTP

__all__ = ["RULE", "endpoints"]

logger = logging.getLogger("bastion.identity")

RULE = RateRule(window=10, max=3)
"""better-auth's rule for every /two-factor/ path: 3 requests per 10 s per address."""


# -- bodies --------------------------------------------------------------------------------


def _not_null(kind: str) -> Callable[[Any], Any]:
    """zod's `.optional()`: left out is fine, null is not (`expected boolean, received null`)."""

    def check(value: Any) -> Any:
        if value is None:
            raise PydanticCustomError(kind, "null")
        return value

    return check


def _method(value: Any) -> Any:
    if not isinstance(value, str) or value not in ("otp", "totp"):
        raise PydanticCustomError("invalid_value", 'Invalid option: expected one of "otp"|"totp"')
    return value


OptionalBool = Annotated[bool | None, BeforeValidator(_not_null("bool_type"))]
OptionalStr = Annotated[str | None, BeforeValidator(_not_null("string_type"))]


class PasswordBody(Body):
    password: str


class OptionalPasswordBody(Body):
    password: OptionalStr = None


class EnableBody(PasswordBody):
    method: Annotated[str, BeforeValidator(_method)] = "totp"
    issuer: OptionalStr = None


class EnablePasswordlessBody(OptionalPasswordBody):
    method: Annotated[str, BeforeValidator(_method)] = "totp"
    issuer: OptionalStr = None


class CodeBody(Body):
    code: str
    trust_device: OptionalBool = PydanticField(None, alias="trustDevice")


class BackupCodeBody(CodeBody):
    disable_session: OptionalBool = PydanticField(None, alias="disableSession")


class SendOTPBody(Body):
    trust_device: OptionalBool = PydanticField(None, alias="trustDevice")


def _js_string(value: Any) -> Any:
    """zod's `z.coerce.string()`: String(value)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


class ViewBackupCodesBody(Body):
    user_id: Annotated[str, BeforeValidator(_js_string)] = PydanticField(alias="userId")


class SecretBody(Body):
    secret: str


def _optional_body(ctx: Ctx[Any], model: type[Body]) -> Any:
    """A body that may be left out (zod's `z.object(…).optional()`), as better-auth reads it:
    none is `{}`; anything but an object is refused."""
    raw = ctx.raw_body
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        received = js_type(None if raw is JSON_NULL else raw)
        raise APIError(
            400,
            Code.VALIDATION_ERROR,
            f"[body] Invalid input: expected object, received {received}",
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise APIError(400, Code.VALIDATION_ERROR, describe_errors(exc, model, "body")) from None


# -- the handlers --------------------------------------------------------------------------


class Handlers:
    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def _passwordless(self, specific: bool | None) -> bool:
        return self.s.allow_passwordless if specific is None else specific

    def _user_out(self, ctx: Ctx[Any], user: dict[str, Any]) -> dict[str, Any]:
        return ctx.context.public_row("user", user)

    # /two-factor/enable ------------------------------------------------------------------

    async def enable(self, ctx: Ctx[Any]) -> dict[str, Any]:
        assert ctx.session is not None
        session, user = ctx.session
        body = ctx.body
        s = self.s
        await check_password(ctx, user["id"], body.password, s.allow_passwordless)
        if body.method == "otp" and s.otp.send_otp is None:
            raise APIError(400, TwoFactorCode.OTP_NOT_CONFIGURED)
        if body.method == "totp" and s.totp.disable:
            raise APIError(400, TwoFactorCode.TOTP_NOT_CONFIGURED)
        store = ctx.context.store
        if body.method == "otp":  # on at once: the codes go where the user already receives mail
            async with store.atomic() as tx:
                enabled = await tx.update_user(user["id"], {"twoFactorEnabled": True}) or user
                replaced = await replace_session(ctx, tx, session, enabled)
            set_new_session_cookie(ctx, replaced, enabled)
            return {"method": "otp"}
        existing = await find_row(store, user["id"])
        if existing is not None and existing.get("verified") is not False:
            raise APIError(400, TwoFactorCode.TOTP_ALREADY_ENABLED)
        codes = secrets.generate_backup_codes(s.backup_codes)
        stored_codes = await secrets.encode_backup_codes(codes, ctx.context.secret, s.backup_codes)
        secret = random_string(32, URL_SAFE)
        values = {
            "secret": encrypt(ctx.context.secret, secret),
            "backupCodes": stored_codes,
            # Off until the user proves the authenticator works (verify-totp), unless told.
            "verified": s.skip_verification_on_enable,
        }
        new: dict[str, Any] | None = None
        updated: dict[str, Any] | None = None
        async with store.atomic() as tx:
            if s.skip_verification_on_enable:
                updated = await tx.update_user(user["id"], {"twoFactorEnabled": True}) or user
                new = await replace_session(ctx, tx, session, updated)
            if existing is not None:
                await tx.db.update_many(TABLE, eq("id", existing["id"]), values)
            else:
                await tx.db.create(TABLE, {**values, "userId": user["id"]})
        if new is not None and updated is not None:
            set_new_session_cookie(ctx, new, updated)
        issuer = body.issuer or s.issuer or ctx.options.app_name
        uri = secrets.totp_uri(
            secrets.totp_key(secret),
            issuer=issuer,
            account=user["email"],
            digits=s.totp.digits,
            period=s.totp.period,
        )
        return {"method": "totp", "totpURI": uri, "backupCodes": codes}

    # /two-factor/disable -----------------------------------------------------------------

    async def disable(self, ctx: Ctx[Any]) -> dict[str, Any]:
        assert ctx.session is not None
        session, user = ctx.session
        await check_password(ctx, user["id"], ctx.body.password, self.s.allow_passwordless)
        store = ctx.context.store
        async with store.atomic() as tx:
            updated = await tx.update_user(user["id"], {"twoFactorEnabled": False}) or user
            await tx.db.delete_many(TABLE, eq("userId", user["id"]))
            new = await replace_session(ctx, tx, session, updated)
        set_new_session_cookie(ctx, new, updated)
        await self._forget_trusted_device(ctx, user["id"])
        return {"status": True}

    async def _forget_trusted_device(self, ctx: Ctx[Any], user_id: str) -> None:
        """This device is not trusted any more: its row deleted, its cookie expired."""
        _, trust_name = cookie_names(ctx)
        value = read_signed(ctx, trust_name)
        if value is None:
            return
        parts = value.split("!")
        trust_id = parts[1] if len(parts) > 1 else ""
        store = ctx.context.store
        row = await store.find_verification(trust_id) if trust_id else None
        if row is not None and row["value"] == user_id:
            await store.delete_verification(trust_id)
        expire_auth_cookie(ctx, trust_name)

    # /two-factor/get-totp-uri ------------------------------------------------------------

    async def get_totp_uri(self, ctx: Ctx[Any]) -> dict[str, Any]:
        s = self.s
        if s.totp.disable:
            raise APIError(400, TwoFactorCode.TOTP_NOT_CONFIGURED, "totp isn't configured")
        assert ctx.session is not None
        user = ctx.session[1]
        row = await find_row(ctx.context.store, user["id"])
        if row is None:
            raise APIError(400, TwoFactorCode.TOTP_NOT_ENABLED)
        key = secrets.totp_key(decrypt(ctx.context.secret, row["secret"]))
        passwordless = self._passwordless(s.totp.allow_passwordless)
        await check_password(ctx, user["id"], ctx.body.password, passwordless)
        # better-auth 1.7.25 names the app here, not the plugin's `issuer` (enable does).
        uri = secrets.totp_uri(
            key,
            issuer=ctx.options.app_name,
            account=user["email"],
            digits=s.totp.digits,
            period=s.totp.period,
        )
        return {"totpURI": uri}

    # /two-factor/verify-totp -------------------------------------------------------------

    async def verify_totp(self, ctx: Ctx[CodeBody]) -> dict[str, Any]:
        s = self.s
        if s.totp.disable:
            raise APIError(400, TwoFactorCode.TOTP_NOT_CONFIGURED, "totp isn't configured")
        challenge = await open_challenge(ctx)
        user = challenge.user
        store = ctx.context.store
        row = await find_row(store, user["id"])
        if row is None or (challenge.signing_in and row.get("verified") is False):
            raise APIError(400, TwoFactorCode.TOTP_NOT_ENABLED)
        if challenge.signing_in:
            await assert_not_locked(ctx, s, row)
        attempt = await begin_attempt(ctx, challenge)
        try:
            key = secrets.totp_key(decrypt(ctx.context.secret, row["secret"]))
            ok = await self._totp_matches(ctx, user["id"], key, ctx.body.code)
        except BaseException:
            if attempt is not None:
                await attempt.restore()
            raise
        if not ok:
            if attempt is not None:
                await attempt.record_failure()
            if challenge.signing_in:
                await record_failure(ctx, s, row)
            raise APIError(401, TwoFactorCode.INVALID_CODE)
        if challenge.signing_in:
            await reset_failures(ctx, s, row)
        if row.get("verified") is not True:
            await self._enrol(ctx, challenge, row)
        return await finish(ctx, s, challenge, trust_device=bool(ctx.body.trust_device))

    async def _totp_matches(self, ctx: Ctx[Any], user_id: str, key: bytes, code: str) -> bool:
        """Whether `code` is the user's TOTP code now (±1 step) and newer than the last one
        accepted (S9: a code works once; a replay, or an older code after a newer one, is
        refused)."""
        totp = self.s.totp
        now = ctx.context.now().timestamp()
        step = secrets.matching_code(key, code, digits=totp.digits, period=totp.period, now=now)
        if step is None:
            return False
        seconds = max(1, math.ceil((step + 2) * totp.period - now))  # out of every window
        async with self.s.user_lock(user_id):
            return await _record_step(ctx, user_id, step, seconds)

    async def _enrol(self, ctx: Ctx[Any], challenge: Challenge, row: dict[str, Any]) -> None:
        """The first code from a new authenticator: two-factor is on from now, and the
        session is replaced (better-auth answers with the old one's token all the same)."""
        user = challenge.user
        store = ctx.context.store
        new: dict[str, Any] | None = None
        updated: dict[str, Any] | None = None
        async with store.atomic() as tx:
            if not user.get("twoFactorEnabled") and challenge.session is not None:
                updated = await tx.update_user(user["id"], {"twoFactorEnabled": True}) or user
                new = await replace_session(ctx, tx, challenge.session, updated)
            await tx.db.update_many(TABLE, eq("id", row["id"]), {"verified": True})
        if new is not None and updated is not None:
            set_new_session_cookie(ctx, new, updated)

    # /two-factor/send-otp ----------------------------------------------------------------

    async def send_otp(self, ctx: Ctx[Any]) -> dict[str, Any]:
        _optional_body(ctx, SendOTPBody)
        otp = self.s.otp
        if otp.send_otp is None:
            raise APIError(400, TwoFactorCode.OTP_NOT_CONFIGURED, "otp isn't configured")
        challenge = await open_challenge(ctx)
        code = random_string(otp.digits, DIGITS)
        stored = await secrets.store_otp(code, ctx.context.secret, otp)
        identifier = f"2fa-otp-{challenge.key}"
        store = ctx.context.store
        # One code at a time: a new one replaces any before it (better-auth's consume takes
        # the newest and drops the older ones).
        await store.delete_verification(identifier)
        await store.create_verification(identifier, f"{stored}:0", math.ceil(otp.period * 60))
        message = TwoFactorOTP(user=self._user_out(ctx, challenge.user), otp=code)
        try:
            await call_user(otp.send_otp, message, ctx.request)
        except Exception as exc:  # as better-auth: logged, the answer stands
            logger.error("two-factor code for user %s not sent: %s", challenge.user["id"], exc)
        return {"status": True}

    # /two-factor/verify-otp --------------------------------------------------------------

    async def verify_otp(self, ctx: Ctx[CodeBody]) -> dict[str, Any]:
        s = self.s
        challenge = await open_challenge(ctx)
        user = challenge.user
        store = ctx.context.store
        row = None
        if challenge.signing_in:
            row = await find_row(store, user["id"])
            if row is not None:
                await assert_not_locked(ctx, s, row)
        identifier = f"2fa-otp-{challenge.key}"
        consumed = await store.consume_verification(identifier)
        if consumed is None:
            raise APIError(400, TwoFactorCode.OTP_HAS_EXPIRED)
        parts = str(consumed["value"]).split(":")
        stored, counter = parts[0], parts[1] if len(parts) > 1 else ""
        digits = "".join(c for c in _leading_digits(counter))
        attempts = int(digits) if digits else 0
        if attempts >= (s.otp.allowed_attempts or 5):
            raise APIError(400, TwoFactorCode.TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE)
        kept, given = await secrets.unstore_otp(stored, ctx.body.code, ctx.context.secret, s.otp)
        if secrets.constant_time_equal(kept, given):
            if row is not None:
                await reset_failures(ctx, s, row)
            if not user.get("twoFactorEnabled"):
                if challenge.session is None:
                    raise APIError(400, Code.FAILED_TO_CREATE_SESSION)
                async with store.atomic() as tx:
                    updated = await tx.update_user(user["id"], {"twoFactorEnabled": True}) or user
                    new = await replace_session(ctx, tx, challenge.session, updated)
                set_new_session_cookie(ctx, new, updated)
                return {"token": new["token"], "user": self._user_out(ctx, updated)}
            return await finish(ctx, s, challenge, trust_device=bool(ctx.body.trust_device))
        seconds = math.ceil((consumed["expiresAt"] - ctx.context.now()).total_seconds())
        if seconds > 0:
            await store.create_verification(identifier, f"{stored}:{attempts + 1}", seconds)
        if row is not None:
            await record_failure(ctx, s, row)
        raise APIError(401, TwoFactorCode.INVALID_CODE)

    # /two-factor/generate-backup-codes ---------------------------------------------------

    async def generate_backup_codes(self, ctx: Ctx[Any]) -> dict[str, Any]:
        assert ctx.session is not None
        user = ctx.session[1]
        if not user.get("twoFactorEnabled"):
            raise APIError(400, TwoFactorCode.TWO_FACTOR_NOT_ENABLED)
        options = self.s.backup_codes
        passwordless = self._passwordless(options.allow_passwordless)
        await check_password(ctx, user["id"], ctx.body.password, passwordless)
        store = ctx.context.store
        row = await find_row(store, user["id"])
        if row is None:
            raise APIError(400, TwoFactorCode.TWO_FACTOR_NOT_ENABLED)
        codes = secrets.generate_backup_codes(options)
        stored = await secrets.encode_backup_codes(codes, ctx.context.secret, options)
        await store.db.update_many(TABLE, eq("id", row["id"]), {"backupCodes": stored})
        return {"status": True, "backupCodes": codes}

    # /two-factor/verify-backup-code ------------------------------------------------------

    async def verify_backup_code(self, ctx: Ctx[BackupCodeBody]) -> dict[str, Any]:
        s = self.s
        challenge = await open_challenge(ctx)
        user = challenge.user
        store = ctx.context.store
        row = await find_row(store, user["id"])
        if row is None:
            raise APIError(400, TwoFactorCode.BACKUP_CODES_NOT_ENABLED)
        if challenge.signing_in:
            await assert_not_locked(ctx, s, row)
        attempt = await begin_attempt(ctx, challenge)
        options = s.backup_codes
        try:
            codes = await secrets.read_backup_codes(row["backupCodes"], ctx.context.secret, options)
            left = None if codes is None else secrets.use_backup_code(codes, ctx.body.code, options)
        except BaseException:
            if attempt is not None:
                await attempt.restore()
            raise
        if left is None:
            if attempt is not None:
                await attempt.record_failure()
            if challenge.signing_in:
                await record_failure(ctx, s, row)
            raise APIError(401, TwoFactorCode.INVALID_BACKUP_CODE)
        stored = await secrets.encode_kept_codes(left, ctx.context.secret, options)
        # Used once (S10): the list is written only if no other request changed it meanwhile.
        where = eq("id", row["id"]) & eq("backupCodes", row["backupCodes"])
        if not await store.db.update_many(TABLE, where, {"backupCodes": stored}):
            raise APIError(409, None, "Failed to verify backup code. Please try again.")
        if challenge.signing_in:
            await reset_failures(ctx, s, row)
        if not ctx.body.disable_session:
            return await finish(ctx, s, challenge, trust_device=bool(ctx.body.trust_device))
        out: dict[str, Any] = {}
        if challenge.session is not None:
            out["token"] = challenge.session["token"]
        out["user"] = self._user_out(ctx, user)
        return out

    # server-only -------------------------------------------------------------------------

    async def view_backup_codes(self, ctx: Ctx[ViewBackupCodesBody]) -> dict[str, Any]:
        options = self.s.backup_codes
        row = await find_row(ctx.context.store, ctx.body.user_id)
        if row is None:
            raise APIError(400, TwoFactorCode.BACKUP_CODES_NOT_ENABLED)
        if options.store == "hashed":
            raise APIError(
                400, TwoFactorCode.INVALID_BACKUP_CODE, "Hashed backup codes cannot be shown"
            )
        codes = await secrets.read_backup_codes(row["backupCodes"], ctx.context.secret, options)
        if codes is None:
            raise APIError(400, TwoFactorCode.INVALID_BACKUP_CODE)
        return {"status": True, "backupCodes": codes}

    async def generate_totp(self, ctx: Ctx[SecretBody]) -> dict[str, Any]:
        totp = self.s.totp
        if totp.disable:
            raise APIError(400, TwoFactorCode.TOTP_NOT_CONFIGURED, "totp isn't configured")
        key = secrets.totp_key(ctx.body.secret)
        now = ctx.context.now().timestamp()
        return {"code": secrets.totp_code(key, digits=totp.digits, period=totp.period, now=now)}


async def _record_step(ctx: Ctx[Any], user_id: str, step: int, seconds: int) -> bool:
    """Keep `step` as the user's last accepted TOTP step, if it is newer than the one kept
    (a verification row `2fa-totp-used-<userId>`, the step zero-padded so that text order is
    number order). On a database, one compare-and-set in the usual case; the other server
    of a shared database ignores the row."""
    store = ctx.context.store
    identifier = f"2fa-totp-used-{user_id}"
    value = f"{step:012d}"
    if store.secondary is None:
        expires = ctx.context.now() + timedelta(seconds=seconds)
        where = eq("identifier", identifier) & lt("value", value)
        if await store.db.update_many(
            "verification", where, {"value": value, "expiresAt": expires}
        ):
            return True
    last = await store.find_verification(identifier)
    if last is not None and str(last["value"]) >= value:
        return False
    await store.delete_verification(identifier)
    await store.create_verification(identifier, value, seconds)
    return True


def _leading_digits(text: str) -> str:
    """What parseInt(text, 10) reads: the digits after any leading white space."""
    text = text.lstrip()
    end = 0
    while end < len(text) and text[end].isascii() and text[end].isdigit():
        end += 1
    return text[:end]


def endpoints(settings: Settings) -> list[Endpoint]:
    h = Handlers(settings)
    passwordless = settings.allow_passwordless
    password_body: type[Body] = OptionalPasswordBody if passwordless else PasswordBody
    enable_body: type[Body] = EnablePasswordlessBody if passwordless else EnableBody

    def body_for(specific: bool | None) -> type[Body]:
        chosen = passwordless if specific is None else specific
        return OptionalPasswordBody if chosen else PasswordBody

    tags = ("two-factor",)

    def post(path: str, handler: Any, name: str, body: type[Body] | None, **kw: Any) -> Endpoint:
        return Endpoint(
            f"/two-factor/{path}",
            ("POST",),
            handler,
            name=name,
            body=body,
            tags=tags,
            rate_limit=RULE,
            **kw,
        )

    return [
        post("enable", h.enable, "enable_two_factor", enable_body, use=(sensitive_session,)),
        post("disable", h.disable, "disable_two_factor", password_body, use=(sensitive_session,)),
        post(
            "get-totp-uri",
            h.get_totp_uri,
            "get_totp_uri",
            body_for(settings.totp.allow_passwordless),
            use=(session_required,),
        ),
        post("verify-totp", h.verify_totp, "verify_totp", CodeBody),
        post("send-otp", h.send_otp, "send_two_factor_otp", None),
        post("verify-otp", h.verify_otp, "verify_two_factor_otp", CodeBody),
        post(
            "generate-backup-codes",
            h.generate_backup_codes,
            "generate_backup_codes",
            body_for(settings.backup_codes.allow_passwordless),
            use=(session_required,),
        ),
        post("verify-backup-code", h.verify_backup_code, "verify_backup_code", BackupCodeBody),
        Endpoint(
            "/two-factor/view-backup-codes",
            ("POST",),
            h.view_backup_codes,
            name="view_backup_codes",
            body=ViewBackupCodesBody,
            server_only=True,
        ),
        Endpoint(
            "/totp/generate",
            ("POST",),
            h.generate_totp,
            name="generate_totp",
            body=SecretBody,
            server_only=True,
        ),
    ]
