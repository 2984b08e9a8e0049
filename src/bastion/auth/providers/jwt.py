"""JWTAuth: bearer JWTs checked with a shared secret, a JWKS URL, or OIDC discovery.

    JWTAuth(secret=...)                                   # HS256; env JWT_AUTH_SECRET
    JWTAuth(jwks_uri="https://idp/jwks.json", issuer=..., audience=...)
    JWTAuth(issuer="https://idp/realms/main", audience=...)   # discovery

The user is the verified claims dict. See docs/jwt.md for what is checked.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from starlette.requests import HTTPConnection

from ...jose import (
    DEFAULT_ASYMMETRIC_ALGORITHMS,
    ConfigurationError,
    DiscoveredKeys,
    JWKSCache,
    JWTError,
    JWTPolicy,
    JWTVerifier,
    KeySource,
    KeysUnavailable,
    RemoteKeys,
    SecretKey,
    check_algorithms,
    default_jwks_cache,
    normalize_token_type,
)
from ..errors import ProviderUnavailable
from ..provider import AuthorizeUser, AuthProvider, MapUserToResourceId, RoutePattern

__all__ = ["ACCESS_TOKEN_TYPES", "RFC9068_CLAIMS", "JWTAuth", "JWTProvider"]

log = logging.getLogger("bastion.auth.jwt")

# What a 503 names when the keys cannot be had.
ISSUER_KEYS = "The issuer's key set (JWKS)"
# RFC 9068 §4: the typ of a JWT access token.
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
# RFC 9068 §2.2: the claims every JWT access token carries (S29).
RFC9068_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")


class _Default(enum.Enum):
    """Tells "not given" from None (which means "do not check")."""

    DEFAULT = enum.auto()


DEFAULT = _Default.DEFAULT


def audience_tuple(audience: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if audience is None:
        return None
    if isinstance(audience, str):
        return (audience,)
    return tuple(audience)


def token_type_set(types: Sequence[str] | None) -> frozenset[str] | None:
    if types is None:
        return None
    if isinstance(types, str):
        types = (types,)
    if not types:
        raise ConfigurationError("token_types must name at least one type, or be None")
    return frozenset(normalize_token_type(t) for t in types)


class JWTProvider(AuthProvider):
    """A provider whose credential is a JWT checked by a JWTVerifier; the user is its claims.

    An invalid token is "no user" (None), which the pipeline answers with 401. Keys that
    cannot be had (the issuer's JWKS is down and nothing usable is cached) raise
    `ProviderUnavailable`, a 503: the token may well be valid (S40). An unknown
    `kid` while the key set is at hand stays a 401 (S23, S31)."""

    def __init__(
        self,
        verifier: JWTVerifier,
        *,
        name: str | None = None,
        authorize_user: AuthorizeUser | None = None,
        map_user_to_resource_id: MapUserToResourceId | None = None,
        public: Sequence[RoutePattern] = (),
        protected: Sequence[RoutePattern] = (),
    ) -> None:
        super().__init__(
            name=name,
            authorize_user=authorize_user,
            map_user_to_resource_id=map_user_to_resource_id,
            public=public,
            protected=protected,
        )
        self.verifier = verifier

    async def authenticate_token(self, token: str, request: HTTPConnection) -> Any | None:
        if not token:
            return None
        try:
            return await self.verifier.verify(token)
        except KeysUnavailable as error:
            log.warning("%s: the issuer's keys are unavailable: %s", self.name, error)
            seconds = error.retry_after
            raise ProviderUnavailable(
                ISSUER_KEYS, retry_after=None if seconds is None else math.ceil(seconds)
            ) from None
        except JWTError as error:
            log.debug("%s: token rejected: %s: %s", self.name, type(error).__name__, error)
            return None
        except Exception:
            log.exception("%s: token verification failed unexpectedly", self.name)
            return None

    async def default_authorize_user(self, user: Any, request: HTTPConnection) -> bool:
        return isinstance(user, dict) and bool(user.get("sub") or user.get("id"))


class JWTAuth(JWTProvider):
    """Bearer JWTs from a shared secret (HMAC), a JWKS URL, or an OIDC issuer's discovery.

    Exactly one key source: `secret=` (HS256 by default; HS384/HS512 if listed in
    `algorithms`; taken from $JWT_AUTH_SECRET when no source is passed), `jwks_uri=`, or
    `issuer=` alone (discovery at `{issuer}/.well-known/openid-configuration`, whose
    `issuer` must match exactly). With `jwks_uri` or discovery, `audience` is required and
    tokens must have `typ: at+jwt` (RFC 9068) unless `token_types=` says otherwise
    (`None`: no check); their required claims are then RFC 9068's.
    """

    name = "jwt"

    def __init__(
        self,
        *,
        secret: str | bytes | None = None,
        jwks_uri: str | None = None,
        issuer: str | None = None,
        audience: str | Sequence[str] | None = None,
        algorithms: Sequence[str] | None = None,
        leeway: float = 30.0,
        token_types: Sequence[str] | Literal[_Default.DEFAULT] | None = DEFAULT,
        required_claims: Sequence[str] | None = None,
        jwks_cache: JWKSCache | None = None,
        allow_http: bool = False,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
        authorize_user: AuthorizeUser | None = None,
        map_user_to_resource_id: MapUserToResourceId | None = None,
        public: Sequence[RoutePattern] = (),
        protected: Sequence[RoutePattern] = (),
    ) -> None:
        owner = "JWTAuth"
        if secret is not None and jwks_uri is not None:
            raise ConfigurationError(f"{owner}: pass either secret= or jwks_uri=, not both")
        if secret is None and jwks_uri is None and issuer is None:
            secret = os.environ.get("JWT_AUTH_SECRET") or None
            if secret is None:
                raise ConfigurationError(
                    f"{owner} needs a key source: secret= (or the JWT_AUTH_SECRET environment "
                    "variable), jwks_uri=, or issuer= for OIDC discovery"
                )
        keys: KeySource
        cache = jwks_cache if jwks_cache is not None else default_jwks_cache()
        if secret is not None:
            names = check_algorithms(algorithms or ("HS256",), symmetric=True, owner=owner)
            keys = SecretKey(secret, names, owner=owner)
            types = token_type_set(None if token_types is DEFAULT else token_types)
            required = {"exp"}
        else:
            if audience is None:
                raise ConfigurationError(
                    f"{owner}: audience= is required with jwks_uri= or issuer= (the "
                    "identifier of this API; tokens minted for another resource are refused)"
                )
            names = check_algorithms(
                algorithms or DEFAULT_ASYMMETRIC_ALGORITHMS, symmetric=False, owner=owner
            )
            if jwks_uri is not None:
                keys = RemoteKeys(cache, jwks_uri, allow_http=allow_http)
            else:
                assert issuer is not None
                keys = DiscoveredKeys(cache, issuer, allow_http=allow_http)
            types = token_type_set(ACCESS_TOKEN_TYPES if token_types is DEFAULT else token_types)
            at_jwt = types is not None and types <= {"at+jwt"}
            required = set(RFC9068_CLAIMS) if at_jwt else {"exp"}
        if required_claims is not None:
            required = {"exp", *required_claims}
        if issuer is not None:
            required.add("iss")
        if audience is not None:
            required.add("aud")
        policy = JWTPolicy(
            algorithms=names,
            issuer=issuer,
            audience=audience_tuple(audience),
            leeway=leeway,
            token_types=types,
            required_claims=frozenset(required),
        )
        super().__init__(
            JWTVerifier(policy, keys, clock=clock),
            name=name,
            authorize_user=authorize_user,
            map_user_to_resource_id=map_user_to_resource_id,
            public=public,
            protected=protected,
        )
