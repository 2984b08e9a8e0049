"""Who a social identity is here: the account it signs in to, the user it may join, or the
user it creates (better-auth 1.7.25's `handleOAuthUserInfo` and `linkOAuthAccount`).

S34: an identity is linked into an existing user by address only when the provider is
trusted or says the address is verified, the local user's own address is verified (unless
`require_local_email_verified` is off), and linking is enabled and implicit linking not
disabled. A provider that reports `email_verified: false` for an address that exists here
never takes that user over.

Failures are `OAuthFailure`s whose `code` is the redirect error (`account_not_linked`,
`signup_disabled`, …); nothing is half-written: a new user and its account are made in one
transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..db import ConstraintViolation, UniqueViolation, UnknownField
from ..endpoint import Ctx
from ..errors import APIError
from ..sessions import complete_sign_in
from ..social.client import Tokens
from ..social.provider import Profile, SocialProvider
from ..symmetric import DecryptionFailed, decrypt, encrypt, looks_encrypted
from ..validation import MAX_IMAGE_LENGTH, MAX_NAME_LENGTH
from .common import coerce_field, send_verification_email

__all__ = [
    "AccountNotCreated",
    "OAuthFailure",
    "SignedIn",
    "account_values",
    "link_account",
    "merge_scopes",
    "read_token",
    "sign_in_with",
    "stored_token",
    "update_user_info_on_link",
]


logger = logging.getLogger("bastion.identity")


class OAuthFailure(Exception):
    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message


class AccountNotCreated(OAuthFailure):
    """Linking was allowed, but the account could not be written (a hook refused it)."""

    def __init__(self) -> None:
        super().__init__("unable_to_link_account")


@dataclass(frozen=True, slots=True)
class SignedIn:
    session: dict[str, Any]
    user: dict[str, Any]
    is_register: bool


# -- tokens as stored ----------------------------------------------------------------------


def stored_token(ctx: Ctx[Any], token: str | None) -> str | None:
    """A token as `account` keeps it: encrypted with `account.encrypt_oauth_tokens`."""
    if token and ctx.options.account.encrypt_oauth_tokens:
        return encrypt(ctx.context.secret, token)
    return token


def read_token(ctx: Ctx[Any], stored: str | None) -> str | None:
    """A stored token in the clear. One stored before encryption was turned on is read as
    it is (better-auth's `isLikelyEncrypted`); one that does not decrypt is None."""
    if not stored or not ctx.options.account.encrypt_oauth_tokens or not looks_encrypted(stored):
        return stored
    try:
        return decrypt(ctx.context.secret, stored)
    except DecryptionFailed:
        return None


def account_values(ctx: Ctx[Any], tokens: Tokens) -> dict[str, Any]:
    """The token columns of an account, as better-auth writes them (unset ones left out)."""
    values = {
        "accessToken": stored_token(ctx, tokens.access_token),
        "refreshToken": stored_token(ctx, tokens.refresh_token),
        "idToken": tokens.id_token,
        "accessTokenExpiresAt": tokens.access_token_expires_at,
        "refreshTokenExpiresAt": tokens.refresh_token_expires_at,
    }
    return {k: v for k, v in values.items() if v is not None}


def merge_scopes(stored: str | None, incoming: Sequence[str]) -> str:
    """The stored comma-separated scopes, then the new ones, without repeats (GitHub's
    comma-separated grant counted scope by scope, so a second link adds nothing)."""
    merged: list[str] = []
    for scope in [*(stored or "").split(","), *",".join(incoming).split(",")]:
        scope = scope.strip()
        if scope and scope not in merged:
            merged.append(scope)
    return ",".join(merged)


# -- sign-in -------------------------------------------------------------------------------


def _trusted(ctx: Ctx[Any], provider_id: str) -> bool:
    return provider_id in ctx.options.account.account_linking.trusted_providers


_CORE_USER_FIELDS = frozenset(
    {"id", "email", "emailVerified", "name", "image", "createdAt", "updatedAt"}
)


def _profile_fields(ctx: Ctx[Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """What a profile may write to a user: name, image and the additional fields a mapping
    gave, never the address or its verification. As better-auth's
    `parseAdditionalUserInputFromProviderProfile`, a field clients may not set, or a value
    of the wrong type, is dropped rather than failing the sign-in; values are bounded as
    sign-up bounds them."""
    values: dict[str, Any] = {}
    for name, spec in ctx.context.schema.fields("user").items():
        if name in _CORE_USER_FIELDS or name not in user or not spec.input:
            continue
        try:
            values[name] = coerce_field(name, spec, user[name])
        except APIError:
            logger.warning("a social profile's %r is not a %s: dropped", name, spec.type)
    values["name"] = str(user.get("name") or "")[:MAX_NAME_LENGTH]
    image = user.get("image")
    if isinstance(image, str) and len(image) <= MAX_IMAGE_LENGTH:
        values["image"] = image
    return values


async def sign_in_with(
    ctx: Ctx[Any],
    provider: SocialProvider,
    profile: Profile,
    tokens: Tokens,
    *,
    callback_url: str | None,
    request_sign_up: bool,
    scope: str | None,
    override_user_info: bool = False,
) -> SignedIn:
    """The user `profile` signs in as, found, joined or created, with a new session.
    `scope`: what a new account stores (the redirect flow's granted scopes, comma-joined;
    an ID token sign-in stores none). `override_user_info`: an existing user takes the
    profile's name, image and address (the provider's `override_user_info_on_sign_in`)."""
    context = ctx.context
    store = context.store
    account_options = ctx.options.account
    linking = account_options.account_linking
    user_info = profile.user
    email = str(user_info.get("email") or "").lower()
    verified = user_info.get("emailVerified") is True
    if not email:
        raise OAuthFailure("email_not_found")
    account = await store.find_account(provider.id, profile.account_id)
    user: dict[str, Any] | None
    if account is not None:
        user = await store.find_user_by_id(account["userId"])
        if user is None:  # an orphan: its user is gone
            raise OAuthFailure("unable_to_link_account")
        if account_options.update_account_on_sign_in:
            fresh = account_values(ctx, tokens)
            if fresh and await store.update_account(account["id"], fresh) is None:
                raise OAuthFailure("unable_to_update_account")
        if verified and not user.get("emailVerified") and email == user["email"]:
            user = await store.update_user(user["id"], {"emailVerified": True}) or user
    else:
        user = await store.find_user_by_email(email)
    is_register = user is None
    if user is not None and account is None:
        trusted = _trusted(ctx, provider.id)
        if (
            (not trusted and not verified)
            or (linking.require_local_email_verified and not user.get("emailVerified"))
            or not linking.enabled
            or linking.disable_implicit_linking
        ):
            raise OAuthFailure("account_not_linked")
        try:
            await store.create_account(
                {
                    "providerId": provider.id,
                    "accountId": profile.account_id,
                    "userId": user["id"],
                    "scope": scope,
                    **account_values(ctx, tokens),
                }
            )
        except (APIError, ConstraintViolation) as error:
            logger.warning("linking %s refused: %s", provider.id, error)
            raise OAuthFailure("unable_to_link_account") from None
        if verified and not user.get("emailVerified") and email == user["email"]:
            user = await store.update_user(user["id"], {"emailVerified": True}) or user
        if linking.update_user_info_on_link:
            values = _profile_fields(ctx, user_info)
            user = await store.update_user(user["id"], values) or user
    if user is not None and override_user_info:
        values = _profile_fields(ctx, user_info)
        values["email"] = email
        values["emailVerified"] = (
            bool(user.get("emailVerified")) or verified if email == user["email"] else verified
        )
        try:
            user = await store.update_user(user["id"], values) or user
        except UniqueViolation:  # the new address is another user's: keep this one as it is
            logger.warning("override_user_info_on_sign_in: %s is taken; user kept", email)
    if user is None:
        if provider.disable_sign_up or (provider.disable_implicit_sign_up and not request_sign_up):
            raise OAuthFailure("signup_disabled")
        fields = _profile_fields(ctx, user_info)
        try:
            async with store.atomic() as tx:
                user = await tx.create_user({**fields, "email": email, "emailVerified": verified})
                await tx.create_account(
                    {
                        "providerId": provider.id,
                        "accountId": profile.account_id,
                        "userId": user["id"],
                        "scope": scope,
                        **account_values(ctx, tokens),
                    }
                )
        except (APIError, ConstraintViolation, UnknownField) as error:
            # A required field the profile lacks, a hook's refusal, a lost race for the
            # address: better-auth's "unable to create user" (nothing of it is kept).
            logger.warning("social sign-up with %s refused: %s", provider.id, error)
            raise OAuthFailure("unable_to_create_user") from None
        if not verified and ctx.options.email_verification.send_on_sign_up:
            await send_verification_email(ctx, user, callback_url)
    session = await complete_sign_in(ctx, user)
    return SignedIn(session, user, is_register)


# -- linking to a signed-in user -----------------------------------------------------------


async def link_account(
    ctx: Ctx[Any],
    provider: SocialProvider,
    profile: Profile,
    tokens: Tokens,
    *,
    user_id: str,
    user_email: str,
) -> None:
    """Link `profile` to the user who started the flow (link-social)."""
    store = ctx.context.store
    linking = ctx.options.account.account_linking
    verified = profile.user.get("emailVerified") is True
    if (not _trusted(ctx, provider.id) and not verified) or not linking.enabled:
        raise OAuthFailure("unable_to_link_account")
    email = str(profile.user.get("email") or "")
    if email.lower() != user_email.lower() and not linking.allow_different_emails:
        raise OAuthFailure("email_does_not_match")
    existing = await store.find_account(provider.id, profile.account_id)
    if existing is not None:
        if existing["userId"] != user_id:
            raise OAuthFailure("account_already_linked_to_different_user")
        values = account_values(ctx, tokens)
        merged = merge_scopes(existing.get("scope"), tokens.scopes)
        if merged:
            values["scope"] = merged
        await store.update_account(existing["id"], values)
    else:
        try:
            await store.create_account(
                {
                    "providerId": provider.id,
                    "accountId": profile.account_id,
                    "userId": user_id,
                    "scope": ",".join(tokens.scopes),
                    **account_values(ctx, tokens),
                }
            )
        except (APIError, ConstraintViolation) as error:
            logger.warning("linking %s refused: %s", provider.id, error)
            raise AccountNotCreated() from None
    await update_user_info_on_link(ctx, user_id, profile)


async def update_user_info_on_link(ctx: Ctx[Any], user_id: str, profile: Profile) -> None:
    """`account_linking.update_user_info_on_link`: name, image and mapped fields from the
    provider just linked; never the address. A failed update does not undo the link."""
    if not ctx.options.account.account_linking.update_user_info_on_link:
        return
    try:
        await ctx.context.store.update_user(user_id, _profile_fields(ctx, profile.user))
    except (APIError, ConstraintViolation) as error:
        logger.warning("update_user_info_on_link: %s", error)
