"""better-auth's `emailOTP` plugin (1.7.25): one-time codes mailed to an address, to sign in,
verify the address, reset the password or change the address.

    Identity(plugins=[email_otp(send_verification_otp=otp_sender(SMTPMailer(...)))])

Endpoints: `/email-otp/send-verification-otp` (type `sign-in`, `email-verification` or
`forget-password`), `/email-otp/check-verification-otp`, `/sign-in/email-otp`,
`/email-otp/verify-email`, `/email-otp/request-password-reset` (and its deprecated alias
`/forget-password/email-otp`), `/email-otp/reset-password`, and, with
`change_email={"enabled": True}`, `/email-otp/request-email-change` and
`/email-otp/change-email`. Server-only: `identity.api.create_verification_otp` and
`identity.api.get_verification_otp`.

A code is stored as `"<otp>:<failed attempts>"` under `<type>-otp-<email>` (a change of
address: `change-email-otp-<userId>:<newEmail>`), as better-auth stores it, so either
server checks the other's codes. Checking one is atomic: the row is consumed, compared in
constant time, and put back with one more failed attempt when wrong; a code that has had
`allowed_attempts` wrong guesses answers 403 TOO_MANY_ATTEMPTS once and is then gone
(INVALID_OTP), an expired one 400 OTP_EXPIRED. A code sent again replaces the earlier one.

S8: codes are `otp_length` digits from a CSPRNG (`secrets`), single use, bound to the
address and the purpose (the identifier), living `expires_in` seconds (300); stored as they
are by default (better-auth's default; a TypeScript server must read them), or
`store_otp="hashed"` (SHA-256) or `"encrypted"` (XChaCha20-Poly1305 with the secret).
S7: sending answers `{"success": true}` whether or not the address has an account, and the
mail goes in the background, so the answer takes the same time either way; only existing
accounts are mailed (and anyone for `sign-in` while sign-up is allowed). S5: 3 requests a
minute per IP on each path (better-auth's rule), and, when rate limiting is on, wrong codes
counted per address and client (10 per 15 min) and per address (30 an hour from clients
that never signed in to it), so new codes do not buy an attacker fresh guesses forever.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from ..._callbacks import call_user
from ..context import AuthContext
from ..crypto import DIGITS, random_string, sha256_base64url
from ..db import Row
from ..email import EmailLink, Mailer
from ..endpoint import Ctx, Endpoint
from ..errors import APIError, Code, ErrorCode
from ..ratelimit import AccountRule, RateRule
from ..routes.common import (
    additional_input,
    check_password_length,
    guard_account,
    throttle_account,
    user_out,
)
from ..sessions import (
    complete_sign_in,
    create_session_for,
    remembered,
    resolve_session,
    sensitive_session,
    set_session_cookie,
)
from ..store import Store
from ..symmetric import decrypt, encrypt
from ..validation import Body, Image, is_email
from . import EndpointHook, Plugin
from ._passwordless import compose, revoke_unproven_account_access, send_in_background

__all__ = ["OTP_ACCOUNT_RULE", "EmailOTP", "EmailOTPCode", "email_otp", "otp_sender"]

logger = logging.getLogger("bastion.identity")


class EmailOTPCode(ErrorCode):
    """better-auth 1.7.25's EMAIL_OTP_ERROR_CODES."""

    OTP_EXPIRED = "OTP expired"
    INVALID_OTP = "Invalid OTP"
    TOO_MANY_ATTEMPTS = "Too many attempts"


OTPType = Literal["email-verification", "sign-in", "forget-password", "change-email"]
_TYPES: tuple[str, ...] = ("email-verification", "sign-in", "forget-password", "change-email")

OTP_ACCOUNT_RULE = AccountRule(
    per_client=RateRule(window=900, max=10), per_account=RateRule(window=3600, max=30)
)
"""Wrong codes per address (S5), on top of the per-IP rule and the per-code attempts."""


@dataclass(frozen=True, slots=True)
class EmailOTP:
    """What `send_verification_otp` gets (better-auth's `{email, otp, type}`)."""

    email: str
    otp: str
    type: OTPType


OTPSender = Callable[[EmailOTP, Any], Awaitable[None] | None]

_SUBJECTS = {
    "sign-in": "Your {app} sign-in code",
    "email-verification": "Verify your email address for {app}",
    "forget-password": "Your {app} password reset code",
    "change-email": "Confirm your new email address for {app}",
}


def otp_sender(
    mailer: Mailer, app_name: str = "Bastion"
) -> Callable[[EmailOTP, Any], Awaitable[None]]:
    """A `send_verification_otp` callback that mails the code with `mailer`."""

    async def send(data: EmailOTP, request: Any = None) -> None:
        await compose(
            mailer,
            data.email,
            _SUBJECTS[data.type].format(app=app_name),
            [
                "Hello,",
                f"Your code is: {data.otp}",
                "It works once, for a few minutes. If you did not ask for it, ignore this email.",
                app_name,
            ],
        )

    return send


def _otp_type(value: Any) -> str:
    if value not in _TYPES:
        expected = "|".join(f'"{t}"' for t in _TYPES)
        raise PydanticCustomError("invalid_option", f"Invalid option: expected one of {expected}")
    return str(value)


TypeField = Annotated[Any, AfterValidator(_otp_type)]


class EmailTypeBody(Body):
    email: str
    type: TypeField = PydanticField(None, validate_default=True)


class CheckBody(EmailTypeBody):
    otp: str


class VerifyEmailBody(Body):
    email: str
    otp: str


class SignInBody(Body):
    expects = ("object", "record")  # an object-and-record intersection, as sign-up's

    email: str
    otp: str
    name: str | None = None
    image: Image | None = None


class EmailBody(Body):
    email: str


class ResetBody(Body):
    email: str
    otp: str
    password: str


class RequestChangeBody(Body):
    new_email: str = PydanticField(alias="newEmail")
    otp: str | None = None


class ChangeBody(Body):
    new_email: str = PydanticField(alias="newEmail")
    otp: str


class TypeQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    email: str
    type: TypeField = PydanticField(None, validate_default=True)


def _split(value: str) -> tuple[str, str]:
    """`"<otp>:<attempts>"` at its last colon (an encrypted otp has none; a custom one may)."""
    head, colon, tail = value.rpartition(":")
    return (head, tail) if colon else (value, "")


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def email_otp(
    *,
    send_verification_otp: OTPSender,
    otp_length: int = 6,
    expires_in: int = 300,
    allowed_attempts: int = 3,
    generate_otp: Callable[[str, str], str | None] | None = None,
    store_otp: Literal["plain", "hashed", "encrypted"] | Mapping[str, Any] = "plain",
    resend_strategy: Literal["rotate", "reuse"] = "rotate",
    disable_sign_up: bool = False,
    send_verification_on_sign_up: bool = False,
    override_default_email_verification: bool = False,
    change_email: Mapping[str, bool] | None = None,
    rate_limit: Mapping[str, int] | None = None,
) -> Plugin:
    """better-auth's `emailOTP()`. `send_verification_otp(EmailOTP, request)`, sync or async
    (`otp_sender(mailer)` makes one), runs in the background. `generate_otp(email, type)`
    replaces the random digits. `store_otp`: "plain", "hashed", "encrypted", or
    `{"hash": fn}` / `{"encrypt": fn, "decrypt": fn}`. `resend_strategy="reuse"` sends an
    unexpired code again instead of a new one (not with hashed codes).
    `change_email={"enabled": True, "verify_current_email": False}`. `rate_limit`:
    `{"window": 60, "max": 3}` per IP on each path. `override_default_email_verification`:
    every verification the Identity would mail as a link (sign-up, send-verification-email,
    a sign-in of an unverified user) is a code instead, checked by /email-otp/verify-email."""
    if otp_length < 1 or expires_in <= 0 or allowed_attempts < 1:
        raise ValueError("otp_length, expires_in and allowed_attempts must be positive")
    rule = RateRule(
        window=(rate_limit or {}).get("window") or 60, max=(rate_limit or {}).get("max") or 3
    )
    change = dict(change_email or {})
    hashed = store_otp == "hashed" or (isinstance(store_otp, Mapping) and "hash" in store_otp)

    def new_otp(email: str, kind: str) -> str:
        made = generate_otp(email, kind) if generate_otp is not None else None
        return made or random_string(otp_length, DIGITS)

    async def stored_form(ctx: Ctx[Any], otp: str) -> str:
        if store_otp == "encrypted":
            return encrypt(ctx.context.secret, otp)
        if store_otp == "hashed":
            return sha256_base64url(otp)
        if isinstance(store_otp, Mapping):
            if "hash" in store_otp:
                return str(await call_user(store_otp["hash"], otp))
            return str(await call_user(store_otp["encrypt"], otp))
        return otp

    async def plain_form(ctx: Ctx[Any], stored: str) -> str | None:
        """The code itself, or None when it is stored hashed (or does not decrypt)."""
        try:
            if store_otp == "encrypted":
                return decrypt(ctx.context.secret, stored)
            if isinstance(store_otp, Mapping) and "decrypt" in store_otp:
                return str(await call_user(store_otp["decrypt"], stored))
        except Exception:
            return None
        return None if hashed else stored

    async def matches(ctx: Ctx[Any], stored: str, given: str) -> bool:
        if hashed:
            return _equal(await stored_form(ctx, given), stored)
        plain = await plain_form(ctx, stored)
        return plain is not None and _equal(plain, given)

    async def store_new(ctx: Ctx[Any], identifier: str, otp: str) -> None:
        value = f"{await stored_form(ctx, otp)}:0"
        await ctx.context.store.create_verification(identifier, value, expires_in)

    async def resolve(ctx: Ctx[Any], email: str, kind: str) -> str:
        """The code to send: an unexpired one again (`reuse`), else a new one stored."""
        identifier = f"{kind}-otp-{email}"
        store = ctx.context.store
        if resend_strategy == "reuse":
            row = await store.find_verification(identifier)
            if row is not None:
                stored, attempts = _split(row["value"])
                plain = await plain_form(ctx, stored)
                if plain is not None and int(attempts or 0) < allowed_attempts:
                    await store.delete_verification(identifier)  # a fresh expiry
                    await store.create_verification(identifier, row["value"], expires_in)
                    return plain
        otp = new_otp(email, kind)
        await store_new(ctx, identifier, otp)
        return otp

    def send(ctx: Ctx[Any], email: str, otp: str, kind: str) -> None:
        data = EmailOTP(email=email, otp=otp, type=kind)  # type: ignore[arg-type]
        send_in_background(
            send_verification_otp, data, ctx.request, purpose=f"{kind} code", user=email
        )

    async def verify(
        ctx: Ctx[Any], identifier: str, given: str, account: str, *, restore: bool = False
    ) -> None:
        """better-auth's `atomicVerifyOTP`, with the per-account count of wrong codes (S5)."""
        attempt = await guard_account(ctx, account, OTP_ACCOUNT_RULE)
        try:
            await _verify(ctx, ctx.context.store, identifier, given, restore=restore)
        except APIError:
            await attempt.count()
            raise

    async def _verify(
        ctx: Ctx[Any], store: Store, identifier: str, given: str, *, restore: bool
    ) -> None:
        existing = await store.find_verification(identifier, include_expired=True)
        if existing is not None and existing["expiresAt"] < ctx.context.now():
            await store.delete_verification(identifier)
            raise APIError(400, EmailOTPCode.OTP_EXPIRED)
        consumed = await store.consume_verification(identifier)
        if consumed is None:
            raise APIError(400, EmailOTPCode.INVALID_OTP)
        stored, attempts = _split(consumed["value"])
        used = int(attempts) if attempts.isdigit() else 0
        if used >= allowed_attempts:
            raise APIError(403, EmailOTPCode.TOO_MANY_ATTEMPTS)  # and it stays consumed
        if not await matches(ctx, stored, given):
            await store.create_verification(
                identifier, f"{stored}:{used + 1}", expires_in, expires_at=consumed["expiresAt"]
            )
            raise APIError(400, EmailOTPCode.INVALID_OTP)
        if not restore:
            return
        if await store.find_verification(identifier) is not None:
            raise APIError(400, EmailOTPCode.INVALID_OTP)  # a new code came meanwhile
        await store.create_verification(
            identifier, consumed["value"], expires_in, expires_at=consumed["expiresAt"]
        )

    def valid_email(raw: str) -> str:
        email = raw.lower()
        if not is_email(email):
            raise APIError(400, Code.INVALID_EMAIL)
        return email

    # -- endpoints -----------------------------------------------------------------------

    async def send_otp(ctx: Ctx[EmailTypeBody]) -> dict[str, Any]:
        email = valid_email(ctx.body.email)
        kind = ctx.body.type
        if kind == "change-email":
            raise APIError(400, None, "Invalid OTP type")
        await throttle_account(ctx, email)
        otp = await resolve(ctx, email, kind)
        user = await ctx.context.store.find_user_by_email(email)
        if user is None and not (kind == "sign-in" and not disable_sign_up):
            await ctx.context.store.delete_verification(f"{kind}-otp-{email}")
            return {"success": True}
        send(ctx, user["email"] if user else email, otp, kind)
        return {"success": True}

    async def create_otp(ctx: Ctx[EmailTypeBody]) -> str:
        email = ctx.body.email.lower()
        otp = new_otp(email, ctx.body.type)
        await store_new(ctx, f"{ctx.body.type}-otp-{email}", otp)
        return otp

    async def get_otp(ctx: Ctx[Any]) -> dict[str, Any]:
        email = str(ctx.query["email"]).lower()
        row = await ctx.context.store.find_verification(f"{ctx.query['type']}-otp-{email}")
        if row is None:
            return {"otp": None}
        if hashed:
            raise APIError(400, None, "OTP is hashed, cannot return the plain text OTP")
        return {"otp": await plain_form(ctx, _split(row["value"])[0])}

    async def check_otp(ctx: Ctx[CheckBody]) -> dict[str, Any]:
        email = valid_email(ctx.body.email)
        await verify(ctx, f"{ctx.body.type}-otp-{email}", ctx.body.otp, email, restore=True)
        if await ctx.context.store.find_user_by_email(email) is None:
            raise APIError(400, Code.USER_NOT_FOUND)  # the caller holds the code already
        return {"success": True}

    async def verify_email(ctx: Ctx[VerifyEmailBody]) -> dict[str, Any]:
        email = valid_email(ctx.body.email)
        context = ctx.context
        await verify(ctx, f"email-verification-otp-{email}", ctx.body.otp, email)
        user = await context.store.find_user_by_email(email)
        if user is None:
            raise APIError(400, Code.USER_NOT_FOUND)
        options = ctx.options.email_verification
        if options.before_email_verification is not None:
            await call_user(options.before_email_verification, user, ctx.request)
        updated = await context.store.update_user(
            user["id"], {"email": email, "emailVerified": True}
        )
        updated = updated or {**user, "emailVerified": True}
        if options.after_email_verification is not None:
            await call_user(options.after_email_verification, updated, ctx.request)
        if options.auto_sign_in_after_verification:
            session = await create_session_for(ctx, updated)
            return {"status": True, "token": session["token"], "user": user_out(ctx, updated)}
        if ctx.options.session.cookie_cache.enabled:
            current = await resolve_session(ctx, disable_refresh=True)
            if current is not None and current[1]["id"] == updated["id"]:
                # The signed-in user's cookie cache says verified at once.
                set_session_cookie(ctx, current[0], updated, dont_remember=not remembered(ctx))
                ctx.new_session = None
        return {"status": True, "token": None, "user": user_out(ctx, updated)}

    async def sign_in_otp(ctx: Ctx[SignInBody]) -> dict[str, Any]:
        body, store = ctx.body, ctx.context.store
        email = body.email.lower()
        await verify(ctx, f"sign-in-otp-{email}", body.otp, email)
        user = await store.find_user_by_email(email)
        if user is None:
            if disable_sign_up:
                raise APIError(400, EmailOTPCode.INVALID_OTP)
            extra = additional_input(ctx, "user", body.model_extra or {}, create=True)
            data: dict[str, Any] = {
                **extra,
                "email": email,
                "emailVerified": True,
                "name": body.name or "",
                "image": body.image,
            }
            user = await store.create_user(data)
        elif not user["emailVerified"]:
            promoted = await revoke_unproven_account_access(ctx, user)
            if promoted is None:
                raise APIError(400, EmailOTPCode.INVALID_OTP)
            user = promoted
        session = await complete_sign_in(ctx, user)
        return {"token": session["token"], "user": user_out(ctx, user)}

    async def request_reset(ctx: Ctx[EmailBody]) -> dict[str, Any]:
        email = valid_email(ctx.body.email)
        await throttle_account(ctx, email)
        otp = await resolve(ctx, email, "forget-password")
        user = await ctx.context.store.find_user_by_email(email)
        if user is None:
            await ctx.context.store.delete_verification(f"forget-password-otp-{email}")
            return {"success": True}
        send(ctx, user["email"], otp, "forget-password")
        return {"success": True}

    async def reset_password(ctx: Ctx[ResetBody]) -> dict[str, Any]:
        email = valid_email(ctx.body.email)
        check_password_length(ctx, ctx.body.password)
        context = ctx.context
        identifier = f"forget-password-otp-{email}"
        await verify(ctx, identifier, ctx.body.otp, email, restore=True)
        user = await context.store.find_user_by_email(email)
        if user is None:
            raise APIError(400, Code.USER_NOT_FOUND)
        password_hash = await context.hasher.hash(ctx.body.password)
        options = ctx.options.email_and_password
        # The code, the revocation and the new password together or not at all (S41).
        async with context.store.atomic() as store:
            await _verify(ctx, store, identifier, ctx.body.otp, restore=False)
            if options.revoke_sessions_on_password_reset:
                await store.delete_user_sessions(user["id"])
            await store.set_password(user["id"], password_hash)
        if options.on_password_reset is not None:
            await call_user(options.on_password_reset, {"user": user}, ctx.request)
        if not user["emailVerified"]:
            await context.store.update_user(user["id"], {"emailVerified": True})
        return {"success": True}

    def change_enabled() -> None:
        if not change.get("enabled"):
            raise APIError(400, None, "Change email with OTP is disabled")

    def new_address(ctx: Ctx[Any], raw: str) -> tuple[Row, str]:
        assert ctx.session is not None
        user = ctx.session[1]
        new_email = valid_email(raw)
        if new_email == user["email"].lower():
            raise APIError(400, None, "Email is the same")
        return user, new_email

    async def request_email_change(ctx: Ctx[RequestChangeBody]) -> dict[str, Any]:
        change_enabled()
        user, new_email = new_address(ctx, ctx.body.new_email)
        store = ctx.context.store
        if change.get("verify_current_email"):
            if not ctx.body.otp:
                raise APIError(400, None, "OTP is required to verify current email")
            current = user["email"].lower()
            await verify(ctx, f"email-verification-otp-{current}", ctx.body.otp, current)
        await throttle_account(ctx, new_email)
        identifier = f"change-email-otp-{user['id']}:{new_email}"
        otp = new_otp(new_email, "change-email")
        await store_new(ctx, identifier, otp)
        if await store.find_user_by_email(new_email) is not None:
            await store.delete_verification(identifier)  # the same answer (S7)
            return {"success": True}
        send(ctx, new_email, otp, "change-email")
        return {"success": True}

    async def change_email_otp(ctx: Ctx[ChangeBody]) -> dict[str, Any]:
        change_enabled()
        user, new_email = new_address(ctx, ctx.body.new_email)
        assert ctx.session is not None
        context = ctx.context
        identifier = f"change-email-otp-{user['id']}:{new_email}"
        await verify(ctx, identifier, ctx.body.otp, f"user:{user['id']}")
        current = await context.store.find_user_by_email(user["email"])
        if current is None:
            raise APIError(400, Code.USER_NOT_FOUND)
        if await context.store.find_user_by_email(new_email) is not None:
            raise APIError(400, None, "Email already in use")
        options = ctx.options.email_verification
        if options.before_email_verification is not None:
            await call_user(options.before_email_verification, current, ctx.request)
        updated = await context.store.update_user(
            current["id"], {"email": new_email, "emailVerified": True}
        )
        updated = updated or {**current, "email": new_email, "emailVerified": True}
        if options.after_email_verification is not None:
            await call_user(options.after_email_verification, updated, ctx.request)
        set_session_cookie(ctx, ctx.session[0], updated, dont_remember=not remembered(ctx))
        ctx.new_session = None
        return {"success": True}

    async def after_sign_up(ctx: Ctx[Any]) -> None:
        returned = ctx.returned
        if ctx.error is not None or not isinstance(returned, dict):
            return
        user = returned.get("user")
        email = user.get("email") if isinstance(user, dict) else None
        if isinstance(email, str) and email:
            otp = new_otp(email, "email-verification")
            await store_new(ctx, f"email-verification-otp-{email}", otp)
            send(ctx, email, otp, "email-verification")

    def endpoint(path: str, handler: Any, name: str, body: Any, **kw: Any) -> Endpoint:
        return Endpoint(path, ("POST",), handler, name=name, body=body, rate_limit=rule, **kw)

    endpoints = [
        endpoint(
            "/email-otp/send-verification-otp",
            send_otp,
            "send_verification_otp",
            EmailTypeBody,
            operation_id="sendEmailVerificationOTP",
        ),
        Endpoint(
            "/email-otp/create-verification-otp",
            ("POST",),
            create_otp,
            name="create_verification_otp",
            body=EmailTypeBody,
            server_only=True,
        ),
        Endpoint(
            "/email-otp/get-verification-otp",
            ("GET",),
            get_otp,
            name="get_verification_otp",
            query=TypeQuery,
            server_only=True,
        ),
        endpoint(
            "/email-otp/check-verification-otp",
            check_otp,
            "check_verification_otp",
            CheckBody,
            operation_id="verifyEmailWithOTP",
        ),
        endpoint("/email-otp/verify-email", verify_email, "verify_email_otp", VerifyEmailBody),
        endpoint(
            "/sign-in/email-otp",
            sign_in_otp,
            "sign_in_email_otp",
            SignInBody,
            tags=("sign-in",),
            operation_id="signInWithEmailOTP",
        ),
        endpoint(
            "/email-otp/request-password-reset",
            request_reset,
            "request_password_reset_email_otp",
            EmailBody,
            operation_id="requestPasswordResetWithEmailOTP",
        ),
        endpoint(
            "/forget-password/email-otp",
            request_reset,
            "forget_password_email_otp",
            EmailBody,
            operation_id="forgetPasswordWithEmailOTP",
        ),
        endpoint(
            "/email-otp/reset-password",
            reset_password,
            "reset_password_email_otp",
            ResetBody,
            operation_id="resetPasswordWithEmailOTP",
        ),
        endpoint(
            "/email-otp/request-email-change",
            request_email_change,
            "request_email_change_email_otp",
            RequestChangeBody,
            use=(sensitive_session,),
            operation_id="requestEmailChangeWithEmailOTP",
        ),
        endpoint(
            "/email-otp/change-email",
            change_email_otp,
            "change_email_email_otp",
            ChangeBody,
            use=(sensitive_session,),
            operation_id="changeEmailWithEmailOTP",
        ),
    ]
    after: tuple[EndpointHook, ...] = ()
    if send_verification_on_sign_up and not override_default_email_verification:
        after = (EndpointHook(lambda e: e.path.startswith("/sign-up"), after_sign_up),)

    def init(context: AuthContext) -> None:
        """better-auth's `init`: the Identity's verification mail becomes a code."""
        if not override_default_email_verification:
            return

        async def send_code_instead(link: EmailLink, request: Any) -> None:
            # The senders take a request's context; this one is the Identity's own.
            holder: Any = SimpleNamespace(context=context, request=request)
            email = str(link.user["email"]).lower()
            send(
                holder,
                email,
                await resolve(holder, email, "email-verification"),
                ("email-verification"),
            )

        verification = context.options.email_verification
        context.options = dataclasses.replace(
            context.options,
            email_verification=dataclasses.replace(
                verification, send_verification_email=send_code_instead
            ),
        )

    return Plugin(
        id="email-otp",
        endpoints=tuple(endpoints),
        after=after,
        error_codes=EmailOTPCode,
        init=init,
    )
