"""`AuthContext`: what endpoints and plugins see of an Identity (better-auth's `ctx.context`).

Handlers get this, not the `Identity`: the typed options, the store, the password hasher,
the session cookies, the rate limiter, the clock and the secret. The Identity builds one at
construction and serves every request with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ._session_cookies import SessionCookies
from .crypto import PasswordHashing, sign_jwt, verify_jwt
from .db import Schema
from .options import IdentityOptions
from .origins import TrustedOrigins
from .origins import resolve as resolve_origins
from .ratelimit import RateLimiter
from .social import ProviderClient, SocialProvider
from .store import Store

__all__ = ["AuthContext"]

# `plugins.SignInCheck`, typed loosely here: the context knows no Ctx (it would be a cycle).
_SignInCheck = Callable[[Any, dict[str, Any]], Awaitable[Any]]


class AuthContext:
    """One Identity's working parts. `options` are resolved (secret and base URL filled);
    `secure_cookies` is decided once from them (spec §5.1), never from a request's scheme."""

    __slots__ = (
        "_dates",
        "_env",
        "_output",
        "_static_origins",
        "_trusted",
        "endpoints",
        "hasher",
        "now",
        "oauth",
        "options",
        "plugin_ids",
        "rate_limiter",
        "schema",
        "secret",
        "secure_cookies",
        "session_cookies",
        "sign_in_checks",
        "social_providers",
        "store",
    )

    def __init__(
        self,
        *,
        options: IdentityOptions,
        secret: str,
        schema: Schema,
        store: Store,
        hasher: PasswordHashing,
        rate_limiter: RateLimiter | None,
        now: Callable[[], datetime],
        plugin_ids: frozenset[str],
        sign_in_checks: Sequence[_SignInCheck] = (),
        social_providers: Mapping[str, SocialProvider] | None = None,
        oauth: ProviderClient | None = None,
        env: Mapping[str, str],
    ) -> None:
        self.options = options
        self.secret = secret
        self.schema = schema
        self.store = store
        self.hasher = hasher
        self.rate_limiter = rate_limiter
        self.now = now
        self.plugin_ids = plugin_ids
        self.sign_in_checks = tuple(sign_in_checks)
        # Social providers by id, and the client that talks to them.
        self.social_providers: Mapping[str, SocialProvider] = dict(social_providers or {})
        self.oauth = oauth or ProviderClient()
        # The served endpoints, each with the id of the plugin that declared it (None: core),
        # for a plugin that describes the API (open-api). Set by the Identity once built;
        # typed loosely, as the context knows no Endpoint (it would be a cycle).
        self.endpoints: tuple[tuple[str | None, Any], ...] = ()
        self._env = env
        self._output: dict[str, set[str]] = {
            model: {n for n, f in schema.fields(model).items() if f.returned} for model in schema
        }
        self._dates: dict[str, set[str]] = {
            model: {n for n, f in schema.fields(model).items() if f.type == "date"}
            for model in schema
        }
        self.secure_cookies = _secure_cookies(options)
        self.session_cookies = SessionCookies(
            secret,
            options.advanced.cookie_prefix,
            options.session.cookie_cache.version,
            self._dates,
            self._output,
            secure=self.secure_cookies,
            now=now,
        )
        configured = options.trusted_origins
        # Static entries are checked now: a typo fails at start-up, not on a request.
        self._static_origins = TrustedOrigins.from_options(
            None, [] if callable(configured) else list(configured), env
        )
        self._trusted: dict[str, TrustedOrigins] = {}

    def public_row(self, model: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """The row without its `returned=False` fields (password hashes, OAuth tokens)."""
        keep = self._output[model]
        if row.keys() <= keep:  # the usual case, checked in C: a plain copy
            return dict(row)
        return {k: v for k, v in row.items() if k in keep}

    def date_fields(self, model: str) -> set[str]:
        return self._dates[model]

    def sign_jwt(self, claims: Mapping[str, Any], expires_in: int) -> str:
        return sign_jwt(self.secret, dict(claims), expires_in, now=self.now())

    def verify_jwt(self, token: str) -> dict[str, Any]:
        return verify_jwt(self.secret, token, now=self.now())

    @property
    def static_trusted_origins(self) -> TrustedOrigins:
        """The configured entries and $BETTER_AUTH_TRUSTED_ORIGINS, without the base URL's
        origin or what a `trusted_origins` callable adds per request (CORS lists these)."""
        return self._static_origins

    async def trusted_origins(self, base_url: str, request: Any) -> TrustedOrigins:
        """The origins trusted for a request whose base URL is `base_url`."""
        configured = self.options.trusted_origins
        if callable(configured):
            # Entries a callable returns per request are dropped when unusable, not a 500.
            return await resolve_origins(
                self._static_origins, configured, request, base_url=base_url
            )
        trusted = self._trusted.get(base_url)
        if trusted is None:
            trusted = await resolve_origins(self._static_origins, None, request, base_url=base_url)
            if len(self._trusted) < 64:  # one per base URL seen; bounded for derived URLs
                self._trusted[base_url] = trusted
        return trusted


def _secure_cookies(options: IdentityOptions) -> bool:
    """`__Secure-` names and `Secure`, decided as better-auth decides (spec §5.1): the
    option, else a configured https base URL, else production. Not the request's scheme:
    behind a TLS-terminating proxy it is http, and the cookie names must not change with
    it (a better-auth server on the same database reads the same cookies)."""
    chosen = options.advanced.use_secure_cookies
    if chosen is not None:
        return chosen
    if options.base_url:
        return options.base_url.startswith("https://")
    return options.production
