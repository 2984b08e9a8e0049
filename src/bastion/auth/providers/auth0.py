"""Auth0Auth: Auth0 access tokens (RS256 JWTs for one API), as Mastra's MastraAuthAuth0.

    Auth0Auth()                                   # AUTH0_DOMAIN, AUTH0_AUDIENCE
    Auth0Auth(domain="tenant.eu.auth0.com", audience="https://api.example.com",
              authorize_user=require_scopes("read:things"))

Issuer `https://{domain}/` (with the trailing slash Auth0 puts in `iss`), keys from
`https://{domain}/.well-known/jwks.json` through the shared JWKS cache. Auth0 access tokens
carry `typ: JWT` (or `at+jwt` with the RFC 9068 profile), so Auth0 ID tokens are told apart by
their audience (the client id, never the API identifier) and by `nonce`, which access tokens
never carry (spec/security.md, S28 note).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from ...jose import (
    ConfigurationError,
    JWKSCache,
    JWTPolicy,
    JWTVerifier,
    RemoteKeys,
    check_algorithms,
    default_jwks_cache,
)
from ..provider import AuthorizeUser, MapUserToResourceId, RoutePattern
from ..scopes import require_permissions, require_scopes
from .jwt import JWTProvider, audience_tuple, token_type_set

__all__ = ["AUTH0_TOKEN_TYPES", "Auth0Auth", "require_permissions", "require_scopes"]

# Auth0's two access-token profiles: "Auth0" (typ JWT) and "RFC 9068" (typ at+jwt).
AUTH0_TOKEN_TYPES = ("JWT", "at+jwt")


def _domain(value: str) -> str:
    """ "tenant.auth0.com", "https://tenant.auth0.com" or ".../" -> "tenant.auth0.com"."""
    text = value.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigurationError(f"Auth0Auth: domain must be a host name, not {value!r}")
    if parts.query or parts.fragment or parts.username:
        raise ConfigurationError(f"Auth0Auth: domain must be a host name, not {value!r}")
    return parts.netloc


class Auth0Auth(JWTProvider):
    """Access tokens of one Auth0 API. The user is the claims dict (namespaced custom
    claims included); by default a user passes with a `sub` and an unexpired `exp`.

    `issuer=` and `jwks_uri=` replace the ones derived from `domain` (to point at a local
    stand-in, or a custom domain); with `issuer=`, `domain` may be left out.
    """

    name = "auth0"

    def __init__(
        self,
        *,
        domain: str | None = None,
        audience: str | Sequence[str] | None = None,
        issuer: str | None = None,
        jwks_uri: str | None = None,
        algorithms: Sequence[str] = ("RS256",),
        leeway: float = 30.0,
        token_types: Sequence[str] | None = AUTH0_TOKEN_TYPES,
        jwks_cache: JWKSCache | None = None,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
        authorize_user: AuthorizeUser | None = None,
        map_user_to_resource_id: MapUserToResourceId | None = None,
        public: Sequence[RoutePattern] = (),
        protected: Sequence[RoutePattern] = (),
    ) -> None:
        domain = domain or os.environ.get("AUTH0_DOMAIN") or None
        audience = audience or os.environ.get("AUTH0_AUDIENCE") or None
        missing = []
        if domain is None and issuer is None:
            missing.append("domain (pass domain= or set AUTH0_DOMAIN)")
        if audience is None:
            missing.append("audience (pass audience= or set AUTH0_AUDIENCE)")
        if missing:
            raise ConfigurationError("Auth0Auth: missing " + " and ".join(missing))
        host = _domain(domain) if domain is not None else None
        self.domain = host
        self.issuer = issuer or f"https://{host}/"
        self.jwks_uri = jwks_uri or (
            f"https://{host}/.well-known/jwks.json"
            if host is not None
            else self.issuer.rstrip("/") + "/.well-known/jwks.json"
        )
        cache = jwks_cache if jwks_cache is not None else default_jwks_cache()
        policy = JWTPolicy(
            algorithms=check_algorithms(algorithms, symmetric=False, owner="Auth0Auth"),
            issuer=self.issuer,
            audience=audience_tuple(audience),
            leeway=leeway,
            token_types=token_type_set(token_types),
            required_claims=frozenset({"iss", "exp", "aud", "sub"}),
            forbidden_claims=frozenset({"nonce"}),  # an ID token, never an access token
        )
        super().__init__(
            JWTVerifier(policy, RemoteKeys(cache, self.jwks_uri), clock=clock),
            name=name,
            authorize_user=authorize_user,
            map_user_to_resource_id=map_user_to_resource_id,
            public=public,
            protected=protected,
        )
        self._clock = clock

    async def default_authorize_user(self, user: Any, request: HTTPConnection) -> bool:
        if not isinstance(user, dict) or not (user.get("sub") or user.get("id")):
            return False
        exp = user.get("exp")
        if exp is None:
            return True
        return isinstance(exp, int | float) and not isinstance(exp, bool) and exp > self._clock()

    # Also reachable as Auth0Auth.require_scopes(...) / Auth0Auth.require_permissions(...).
    require_scopes = staticmethod(require_scopes)
    require_permissions = staticmethod(require_permissions)
