"""The request pipeline: who is calling, and may they call this route (spec §2.4 to §2.11).

For each request, in order:

1. no auth configured, or the route says `requires_auth=False` → pass, anonymous;
2. the path is not protected (defaults `/api/*`, then the config's `protected`) and the
   route does not say `requires_auth=True` → pass, anonymous;
3. the path is public (defaults `/api`, `/api/auth/*`, `/health`, then the config's
   `public`) and the route does not say `requires_auth=True` → pass, anonymous;
4. the credential: `Authorization` without its literal `"Bearer "` prefix, else the
   `apiKey` query parameter (either one sent twice → 400 `invalid_request`);
   `authenticate_token(token or "", request)` always runs, so cookie providers read their
   cookie from the request. No user, or an exception → 401; `ProviderUnavailable` (a
   dependency of the check is down) → 503;
5. the context: the active organization membership (a provider's `organization_of`), the
   resource id (`map_user_to_resource_id`; raising → 500; under an organization
   `memory_scope`, derived from the membership: tenancy.py), and with RBAC the roles and
   permissions;
6. authorization, exactly one of: the provider's `authorize_user`, the config's
   `authorize`, the config's `rules`, else allow. False → 403, raising → 500 (raising an
   `AuthError` → that answer);
7. with RBAC, the route's permission (its `requires_permission`, else derived) → 403.

The answer is a `RequestContext`, or an `AuthError` raised for the caller to render.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from ..errors import HTTPError
from .config import AuthLike, ResolvedAuth, resolve_auth
from .context import Membership, RequestContext
from .errors import (
    AuthError,
    AuthorizationFailed,
    Forbidden,
    InvalidRequest,
    PermissionDenied,
    ProviderUnavailable,
    ResourceMappingFailed,
    Unauthenticated,
    redact,
)
from .patterns import PatternSet
from .provider import AuthProvider
from .rbac import RBACProvider, RoutePermission, has_any_permission
from .rules import check_rules
from .tenancy import MemoryScope, check_memory_scope, scoped_resource_id

__all__ = [
    "DEFAULT_PROTECTED",
    "DEFAULT_PUBLIC",
    "RESPONSE_HEADERS",
    "AuthPipeline",
    "RouteAuth",
    "error_response",
    "extract_token",
    "pending_headers",
]

logger = logging.getLogger("bastion.auth")

DEFAULT_PROTECTED = ("/api/*",)
DEFAULT_PUBLIC = ("/api", "/api/auth/*", "/health")
_DECISIONS_KEPT = 4096

RESPONSE_HEADERS = "response_headers"
"""Key in `request.state` (the scope's "state" dict) of a list of `(name, value)` headers a
provider wants on the response, e.g. a refreshed session's `Set-Cookie`. The server adds
them to whatever it answers: success, 401, 403 or error (spec §2.7)."""


def pending_headers(scope: Mapping[str, Any]) -> list[tuple[str, str]]:
    state = scope.get("state")
    if not state:
        return []
    found = state.get(RESPONSE_HEADERS)
    return list(found) if found else []


@dataclass(frozen=True, slots=True)
class RouteAuth:
    """A route's own auth settings, fixed when the route is registered.

    `requires_auth`: True protects the route whatever the patterns say (and authenticates
    it even on a public path), False opens it, None lets the patterns decide.
    `requires_permission`: any one of these is needed (with RBAC); else `permission`, the
    one derived from the route's template, applies.
    """

    requires_auth: bool | None = None
    requires_permission: tuple[str, ...] | None = None
    permission: RoutePermission | None = None


PATTERN_DECIDES = RouteAuth()


def extract_token(request: HTTPConnection) -> str | None:
    """`Authorization` without a literal (case-sensitive) `"Bearer "` prefix, else `?apiKey=`.

    Raises `InvalidRequest` when either is sent more than once: "the first wins" or "the last
    wins" is a choice a proxy in front may make the other way, and then the proxy and this
    server disagree on who is calling (RFC 6750 §3.1 `invalid_request`)."""
    scope = request.scope
    # The raw ASGI list (names are lower-case bytes): cheaper than a Headers object.
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                raise InvalidRequest("Send one Authorization header")
            found = value
    if found:
        return found.decode("latin-1").removeprefix("Bearer ")
    query: bytes = scope.get("query_string", b"")
    # find(), not `in`: bytes.__contains__ first tries its operand as an int, and the
    # TypeError it makes and drops costs more than the search, on every request. A `%`
    # may spell the name percent-encoded, which the parsed parameters decode.
    if query and (query.find(b"apiKey=") != -1 or query.find(b"%") != -1):
        keys = request.query_params.getlist("apiKey")
        if len(keys) > 1:
            raise InvalidRequest("Send the apiKey query parameter once")
        return keys[0] if keys else None
    return None


def error_response(error: HTTPError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers())


class AuthPipeline:
    """Compiled once from the auth config; `authenticate` runs on every request."""

    def __init__(
        self,
        auth: AuthLike | None = None,
        *,
        rbac: RBACProvider | None = None,
        memory_scope: MemoryScope = "user",
    ) -> None:
        if rbac is not None and auth is None:
            raise ValueError("rbac needs an auth provider or config to know the user")
        self.auth: ResolvedAuth | None = resolve_auth(auth) if auth is not None else None
        self.rbac = rbac
        self.memory_scope = check_memory_scope(memory_scope)
        if memory_scope != "user" and (self.auth is None or self.auth.organization_of is None):
            # Every caller would be refused memory: say so now, not as 403s later.
            raise ValueError(
                f"memory_scope={memory_scope!r} needs a provider that knows the caller's "
                "organization (IdentityAuth of an Identity with the organization plugin)"
            )
        extra_protected = self.auth.protected if self.auth else ()
        extra_public = self.auth.public if self.auth else ()
        # Defaults first, the config's entries merged after them (spec §2.6).
        self._protected = PatternSet((*DEFAULT_PROTECTED, *extra_protected))
        self._public = PatternSet((*DEFAULT_PUBLIC, *extra_public))
        self._cookies = self.auth.credential_cookies if self.auth else ()
        # Step 6 with a provider: its own policy, called directly when `authorize_user`
        # would only forward to it; none when that policy passes every user it can get.
        self._authorize_user: Callable[..., Awaitable[Any]] | None = (
            self.auth.authorize_user if self.auth else None
        )
        if self.auth is not None and isinstance(self.auth.source, AuthProvider):
            self._authorize_user = self.auth.source.authorizer()
        # (method, path) -> protected by the patterns. Paths repeat, so most requests skip
        # the regexes; bounded, as clients choose the paths.
        self._decided: dict[tuple[str, str], bool] = {}

    @property
    def enabled(self) -> bool:
        return self.auth is not None

    def is_protected(self, path: str, method: str, route: RouteAuth = PATTERN_DECIDES) -> bool:
        """Whether a request must be authenticated (steps 1 to 3)."""
        if self.auth is None or route.requires_auth is False:
            return False
        if route.requires_auth is True:
            return True
        key = (method, path)
        decided = self._decided.get(key)
        if decided is None:
            decided = self._protected.matches(path, method) and not self._public.matches(
                path, method
            )
            if len(self._decided) >= _DECISIONS_KEPT:
                self._decided.clear()
            self._decided[key] = decided
        return decided

    async def authenticate(
        self,
        request: HTTPConnection,
        path: str,
        method: str,
        route: RouteAuth = PATTERN_DECIDES,
        params: Mapping[str, Any] | None = None,
    ) -> RequestContext:
        """The caller's context; raises an `AuthError` when the request may not go on."""
        auth = self.auth
        if auth is None:
            return RequestContext()
        # `is_protected`'s remembered answer first: a call fewer on every request.
        decided = self._decided.get((method, path)) if route.requires_auth is None else None
        if decided is None:
            decided = self.is_protected(path, method, route)
        if not decided:
            return RequestContext()
        # One flat coroutine: this runs on every protected request.
        token = extract_token(request)
        user = None
        if auth.authenticate is not None:
            try:
                user = await auth.authenticate(token or "", request)
            except ProviderUnavailable as exc:  # cannot decide: 503, the token is not void
                logger.warning("auth provider %s: %s", auth.name, redact(exc, token))
                raise
            except Exception as exc:  # a provider fault fails closed; no token in the logs
                logger.warning("auth provider %s raised %s", auth.name, redact(exc, token))
        else:
            logger.warning("auth config has no authenticate_token: every protected call is 401")
        if user is None:
            raise Unauthenticated(credential_sent=self._credential_sent(request, token))

        membership: Membership | None = None
        if auth.organization_of is not None:
            membership = auth.organization_of(user)
        try:
            resource_id = auth.map_user_to_resource_id(user)
            # Awaited whatever made it: a coroutine function, or a sync hook that answers
            # an awaitable (a CompositeAuth asking its provider's async hook). Its repr as
            # the memory owner could be another user's, once the address is reused.
            if type(resource_id) is not str and inspect.isawaitable(resource_id):
                resource_id = await resource_id
        except Exception as exc:  # fail closed: memory must never go unscoped
            logger.error("map_user_to_resource_id raised %s", type(exc).__name__)
            raise ResourceMappingFailed() from None
        if resource_id:
            resource_id = str(resource_id)
        if self.memory_scope != "user":
            resource_id = scoped_resource_id(self.memory_scope, resource_id, membership)

        roles: tuple[str, ...] = ()
        permissions: tuple[str, ...] = ()
        if self.rbac is not None:
            try:
                roles = tuple(await self.rbac.get_roles(user))
                permissions = tuple(await self.rbac.get_permissions(user))
            except Exception as exc:  # no grants: the permission check then denies
                logger.error("RBAC provider raised %s", redact(exc, token))
                roles, permissions = (), ()

        # Exactly one mechanism decides (spec §2.9); with none, any user passes (with RBAC
        # that is the default rule "any user", and the user is known here).
        try:
            if self._authorize_user is not None:
                allowed = bool(await self._authorize_user(user, request))
            elif auth.authorize is not None:
                allowed = bool(await auth.authorize(path, method, user, request))
            elif auth.rules:
                allowed = await check_rules(auth.rules, path, method, user)
            else:
                allowed = True
        except AuthError:  # the policy chose its own answer (e.g. InsufficientScope)
            raise
        except Exception as exc:
            logger.error("authorization raised %s", redact(exc, token))
            raise AuthorizationFailed() from None
        if not allowed:
            raise Forbidden()

        if self.rbac is not None:
            required = self._required(route, params or {})
            if required and not has_any_permission(permissions, required):
                raise PermissionDenied(required)
        # Positional: half the cost of keywords, on every protected request.
        if membership is None:
            return RequestContext(user, token, resource_id or None, roles, permissions)
        return RequestContext(
            user,
            token,
            resource_id or None,
            roles,
            permissions,
            {},
            membership.organization_id,
            membership.roles,
            membership.team_id,
        )

    def _credential_sent(self, request: HTTPConnection, token: str | None) -> bool:
        if token is not None:
            return True
        if not self._cookies:
            return False
        cookies = request.cookies
        return any(name in cookies for name in self._cookies)

    @staticmethod
    def _required(route: RouteAuth, params: Mapping[str, Any]) -> Sequence[str] | None:
        if route.requires_permission:
            return route.requires_permission
        if route.permission is not None:
            return (route.permission.render(params),)
        return None
