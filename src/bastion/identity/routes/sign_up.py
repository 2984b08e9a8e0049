"""POST /sign-up/email (spec §3.2).

S1: the password is checked for length only (8..128 UTF-16 code units by default) and
hashed whole. S7: with `require_email_verification` or `auto_sign_in=False` a duplicate
email gets the answer a new one gets (`{token: null, user}` with a synthetic user of the
same shape), after the same scrypt work.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field as PydanticField

from ..crypto import generate_id
from ..db import DatabaseError, DatabaseUnavailable
from ..endpoint import JSON_OR_FORM, Ctx, Endpoint
from ..errors import APIError, Code
from ..ratelimit import CREDENTIAL_RULE
from ..security import form_csrf
from ..sessions import set_session_cookie, start_session
from ..validation import Body, Email, Image, Name, NonEmpty
from .common import (
    check_password_length,
    send_verification_email,
    synthetic_user,
    user_input,
    user_out,
)

__all__ = ["ENDPOINTS", "SignUpBody"]

logger = logging.getLogger("bastion.identity")


class SignUpBody(Body):
    expects = ("object", "record")  # better-auth 1.7.25's message names both (erratum 17)

    name: Name
    email: Email
    password: NonEmpty  # "" is a VALIDATION_ERROR here, a 401 at sign-in (errata 3)
    image: Image | None = None
    callback_url: str | None = PydanticField(None, alias="callbackURL")
    remember_me: bool | None = PydanticField(None, alias="rememberMe")


_RESERVED = {"name", "email", "password", "image", "callbackURL", "rememberMe"}


async def sign_up_email(ctx: Ctx[SignUpBody]) -> dict[str, Any]:
    context, body = ctx.context, ctx.body
    options = ctx.options.email_and_password
    if not options.enabled or options.disable_sign_up:
        raise APIError(400, Code.EMAIL_PASSWORD_SIGN_UP_DISABLED)
    check_password_length(ctx, body.password)
    extra = user_input(
        ctx, {k: v for k, v in (body.model_extra or {}).items() if k not in _RESERVED}, create=True
    )
    email = body.email.lower()
    generic = options.require_email_verification or not options.auto_sign_in
    if await context.store.find_user_by_email(email) is not None:
        if not generic:
            raise APIError(422, Code.USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL)
        # The same answer as a new sign-up, with the same cost: no account enumeration (S7).
        await context.hasher.hash(body.password)
        given = {"name": body.name, "email": email, "image": body.image, **extra}
        return {"token": None, "user": synthetic_user(ctx, given, generate_id(32))}

    password_hash = await context.hasher.hash(body.password)
    session = None
    try:
        # The user, their password account and their session (in the database or secondary
        # storage) exist together or not at all: a storage that fails leaves no user behind,
        # and the same sign-up can be tried again (S41).
        async with context.store.atomic() as store:
            user = await store.create_user(
                {"name": body.name, "email": email, "emailVerified": False, "image": body.image}
                | extra
            )
            await store.create_account(
                {
                    "userId": user["id"],
                    "accountId": user["id"],
                    "providerId": "credential",
                    "password": password_hash,
                }
            )
            if not generic:
                session = await start_session(
                    ctx, user, dont_remember=body.remember_me is False, store=store
                )
    except DatabaseUnavailable:
        raise
    except DatabaseError as exc:
        # What the database refuses (an email longer than MySQL's varchar(255)) is the
        # client's 422, as in better-auth, not a 500.
        logger.warning("sign-up: could not create the user: %s", exc)
        raise APIError(422, Code.FAILED_TO_CREATE_USER) from None
    verification = ctx.options.email_verification
    send_on_sign_up = verification.send_on_sign_up
    if send_on_sign_up is None:
        send_on_sign_up = options.require_email_verification
    if send_on_sign_up:
        await send_verification_email(ctx, user, body.callback_url)
    if session is None:
        return {"token": None, "user": user_out(ctx, user)}
    set_session_cookie(ctx, session, user, dont_remember=body.remember_me is False)
    return {"token": session["token"], "user": user_out(ctx, user)}


ENDPOINTS = (
    Endpoint(
        "/sign-up/email",
        ("POST",),
        sign_up_email,
        name="sign_up_email",
        body=SignUpBody,
        media_types=JSON_OR_FORM,
        tags=("sign-up",),
        use=(form_csrf,),
        rate_limit=CREDENTIAL_RULE,
        operation_id="signUpWithEmailAndPassword",
    ),
)
