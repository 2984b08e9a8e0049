"""The Identity's options: frozen dataclasses mirroring better-auth's, in snake_case.

Plain dicts are accepted wherever an options dataclass is expected
(`Identity(email_and_password={"enabled": True})`). Defaults are better-auth's (spec §9).
The environment is read in one place, `IdentityOptions.resolve`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._secret import InsecureSecret

if TYPE_CHECKING:
    from .db import Database, Field
    from .storage import SecondaryStorage
    from .store import DatabaseHooks

__all__ = [
    "AccountLinking",
    "AccountOptions",
    "Advanced",
    "ChangeEmail",
    "CookieCache",
    "DeleteUser",
    "EmailAndPassword",
    "EmailCallback",
    "EmailVerification",
    "IdentityOptions",
    "InsecureSecret",
    "PasswordOptions",
    "RateLimitOptions",
    "SessionOptions",
    "UserOptions",
]

# (link, request) -> None, sync or async; see bastion.identity.email.
EmailCallback = Callable[..., Awaitable[None] | None]
# A user's function the Identity calls at a point of a flow, sync or async.
Callback = Callable[..., Any]
# better-auth's signatures: hash(password) -> str, verify({"hash": ..., "password": ...}) ->
# bool; sync or async.
HashFunction = Callable[[str], Awaitable[str] | str]
VerifyFunction = Callable[[dict[str, str]], Awaitable[bool] | bool]


@dataclass(frozen=True, kw_only=True, slots=True)
class PasswordOptions:
    """better-auth's `emailAndPassword.password`: your own password hash in place of scrypt.
    Either function may be left out (scrypt's is used for it)."""

    hash: HashFunction | None = None
    verify: VerifyFunction | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class EmailAndPassword:
    enabled: bool = False
    disable_sign_up: bool = False
    require_email_verification: bool = False
    min_password_length: int = 8
    max_password_length: int = 128
    auto_sign_in: bool = True
    send_reset_password: EmailCallback | None = None
    reset_password_token_expires_in: int = 3600
    on_password_reset: Callback | None = None
    revoke_sessions_on_password_reset: bool = False
    password: PasswordOptions = PasswordOptions()

    def __post_init__(self) -> None:
        if not 1 <= self.min_password_length <= self.max_password_length:
            raise ValueError("need 1 <= min_password_length <= max_password_length")


@dataclass(frozen=True, kw_only=True, slots=True)
class EmailVerification:
    send_verification_email: EmailCallback | None = None
    send_on_sign_up: bool | None = None  # None: follow require_email_verification
    send_on_sign_in: bool = False
    auto_sign_in_after_verification: bool = False
    expires_in: int = 3600
    before_email_verification: Callback | None = None
    after_email_verification: Callback | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CookieCache:
    """The signed `session_data` cookie: get-session answers from it without the database."""

    enabled: bool = False
    max_age: int = 300
    version: str = "1"


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionOptions:
    expires_in: int = 604800
    update_age: int = 86400
    fresh_age: int = 86400
    disable_session_refresh: bool = False
    cookie_cache: CookieCache = CookieCache()
    store_session_in_database: bool = False
    additional_fields: Mapping[str, Field] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimitOptions:
    enabled: bool | None = None  # None: on when BASTION_ENV=production, as better-auth does
    window: int = 10
    max: int = 100
    storage: Literal["memory", "database", "secondary-storage"] | None = None
    custom_rules: Mapping[str, Any] = field(default_factory=dict)
    # Per-account failure limits by path (S5), e.g. {"/sign-in/email": {"per_client":
    # {"window": 300, "max": 5}, "per_account": {"window": 900, "max": 50}}}: see
    # bastion.identity.ratelimit.AccountRule. Bastion's own; better-auth has none.
    account_rules: Mapping[str, Any] = field(default_factory=dict)
    # Limit only the endpoints that declare a rule (credentials, mails); Bastion's own.
    declared_only: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Advanced:
    cookie_prefix: str = "better-auth"
    use_secure_cookies: bool | None = None  # None: Secure when base_url is https
    ip_address_headers: Sequence[str] = ("x-forwarded-for",)
    trusted_proxies: Sequence[str] = ()
    # With no base_url, derive it per request from X-Forwarded-Proto/-Host (behind a proxy
    # that sets them; otherwise a client could choose the host of the links we mail).
    trusted_proxy_headers: bool = False
    disable_ip_tracking: bool = False
    disable_csrf_check: bool = False
    disable_origin_check: bool = False
    cookie_domain: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ChangeEmail:
    enabled: bool = False
    send_change_email_confirmation: EmailCallback | None = None
    update_email_without_verification: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class DeleteUser:
    enabled: bool = False
    send_delete_account_verification: EmailCallback | None = None
    before_delete: Callback | None = None
    after_delete: Callback | None = None
    delete_token_expires_in: int = 86400


@dataclass(frozen=True, kw_only=True, slots=True)
class UserOptions:
    change_email: ChangeEmail = ChangeEmail()
    delete_user: DeleteUser = DeleteUser()
    additional_fields: Mapping[str, Field] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class AccountLinking:
    """When a social identity may join an existing user (better-auth's rules, S34)."""

    enabled: bool = True
    # Providers whose addresses count as verified even when they do not say so.
    trusted_providers: Sequence[str] = ()
    allow_different_emails: bool = False  # link-social with another address than the user's
    update_user_info_on_link: bool = False  # copy name and image from a newly linked provider
    disable_implicit_linking: bool = False  # sign-in never links by address; link-social only
    allow_unlinking_all: bool = False  # unlink-account may remove the last sign-in method
    # Link by address only into a user whose own address is verified.
    require_local_email_verified: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class AccountOptions:
    account_linking: AccountLinking = AccountLinking()
    # Access and refresh tokens stored encrypted (better-auth's symmetricEncrypt).
    encrypt_oauth_tokens: bool = False
    # Where the OAuth state waits for the callback: a verification row and a signed cookie
    # (the default), or an encrypted cookie alone.
    store_state_strategy: Literal["database", "cookie"] = "database"
    update_account_on_sign_in: bool = True  # store the tokens of each social sign-in
    skip_state_cookie_check: bool = False  # not recommended: the state is bound to no browser


@dataclass(frozen=True, kw_only=True)
class IdentityOptions:
    secret: str | None = None
    base_url: str | None = None
    base_path: str = "/api/auth"
    app_name: str = "Bastion"
    database: str | Database | None = None
    email_and_password: EmailAndPassword = EmailAndPassword()
    email_verification: EmailVerification = EmailVerification()
    session: SessionOptions = SessionOptions()
    rate_limit: RateLimitOptions = RateLimitOptions()
    trusted_origins: Sequence[str] | Callable[[Any], Awaitable[Sequence[str]]] = ()
    advanced: Advanced = Advanced()
    user: UserOptions = UserOptions()
    # {"github": {"client_id": ..., "client_secret": ...}, "google": {...}}: see
    # bastion.identity.social. Values may also be SocialProvider objects.
    social_providers: Mapping[str, Any] = field(default_factory=dict)
    account: AccountOptions = AccountOptions()
    secondary_storage: SecondaryStorage | None = None
    hooks: Mapping[str, Callback] = field(default_factory=dict)  # "before" / "after"
    database_hooks: DatabaseHooks = field(default_factory=dict)
    production: bool = False
    max_body_size: int = 1024 * 1024

    def __post_init__(self) -> None:
        if not self.base_path.startswith("/") or self.base_path.endswith("/"):
            raise ValueError("base_path starts with '/' and does not end with one")
        if self.account.store_state_strategy not in ("database", "cookie"):
            raise ValueError("account.store_state_strategy is 'database' or 'cookie'")
        unknown = set(self.hooks) - {"before", "after"}
        if unknown:
            raise ValueError(f"hooks takes 'before' and 'after', not {sorted(unknown)}")

    @classmethod
    def build(cls, values: Mapping[str, Any]) -> IdentityOptions:
        """From keyword arguments where nested options may be plain dicts."""
        return _build(cls, values)

    def resolve(self, env: Mapping[str, str] = os.environ) -> IdentityOptions:
        """Fill what the environment gives: secret, base URL, production mode. Without a
        secret, `secret` stays None outside production: the Identity then makes one for its
        database (`bastion.identity._secret`); in production that is refused."""
        production = self.production or env.get("BASTION_ENV", "").lower() == "production"
        secret = self.secret or env.get("BASTION_SECRET") or env.get("BETTER_AUTH_SECRET")
        if not secret and production:
            raise InsecureSecret("no secret: set BASTION_SECRET (make one with `bastion secret`)")
        base_url = self.base_url or env.get("BETTER_AUTH_URL") or env.get("BASTION_URL")
        return dataclasses.replace(
            self,
            secret=secret or None,
            base_url=base_url.rstrip("/") if base_url else None,
            production=production,
        )


T = TypeVar("T")


def _build(cls: type[T], values: Mapping[str, Any]) -> T:
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - set(fields)
    if unknown:
        raise TypeError(f"{cls.__name__} has no option {sorted(unknown)[0]!r}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        default = fields[name].default
        if isinstance(value, Mapping) and dataclasses.is_dataclass(default):
            value = _build(type(default), value)
        kwargs[name] = value
    return cls(**kwargs)
