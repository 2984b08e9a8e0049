"""`GET /api/auth-context`: what the auth pipeline made of this request (the playground's "auth"
panel, and a debugging aid for any client).

It answers the `RequestContext` the route's handler received: the user, the session (an
Identity's), the verified claims (a JWT provider's), the resource id memory uses, the RBAC
roles and permissions, and the active organization with the caller's roles there. It goes
through the pipeline like every `/api` route (protected by the default `/api/*`), but needs
no RBAC permission of its own: it only tells a caller about itself.

Never a secret: the session's token, the credential the request carried, and keys whose
names say they hold one (`token`, `password`, `secret`, ...) are left out, at any depth.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from starlette.requests import Request

from ..._openapi import Doc
from ...auth.context import RequestContext
from .router import Router

__all__ = ["AUTH_CONTEXT_PATH", "add_auth_context_route", "describe_context"]

# Beside /api/auth, not under it: the mounted Identity answers everything below /api/auth/.
# Not /api/whoami, which applications use for their own routes (a clash is an error).
AUTH_CONTEXT_PATH = "/api/auth-context"

# Lower-cased key fragments that mark a secret (sessionToken, accessToken, client_secret,
# passwordHash, apiKey, ...): such keys are dropped, not masked, so nothing of them leaks.
_SECRET_PARTS = ("token", "secret", "password", "apikey", "api_key", "privatekey", "private_key")
_DEPTH = 6  # deep enough for any claim set; a cycle or a pathological user stops here


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _SECRET_PARTS)


def _plain(value: Any, depth: int = 0) -> Any:
    """`value` as JSON data without secret keys; an object that is not data is named by
    its type (a custom provider's user object), never `repr`-ed (which may hold anything)."""
    if value is None or isinstance(value, str | bool | int | float | datetime | date):
        return value
    if depth >= _DEPTH:
        return None
    if isinstance(value, Mapping):
        return {
            str(key): _plain(item, depth + 1)
            for key, item in value.items()
            if not _is_secret(str(key))
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item, depth + 1) for item in value]
    return f"<{type(value).__name__}>"


def _is_identity_session(user: Any) -> bool:
    return (
        isinstance(user, Mapping)
        and isinstance(user.get("session"), Mapping)
        and isinstance(user.get("user"), Mapping)
    )


def _is_jwt(source: Any) -> bool:
    """Whether the provider's users are verified JWT claims (a JWTProvider, or a composite
    holding one: its users that are not Identity sessions are then claims)."""
    from ...auth.providers.jwt import JWTProvider

    if isinstance(source, JWTProvider):
        return True
    return any(isinstance(p, JWTProvider) for p in getattr(source, "providers", ()))


def describe_context(context: RequestContext, source: Any = None) -> dict[str, Any]:
    """The JSON answer for `context`; `source` is the auth provider (to tell claims apart)."""
    user = context.user
    session: Any = None
    claims: Any = None
    if _is_identity_session(user):
        session, user = user["session"], user["user"]
    elif isinstance(user, Mapping) and _is_jwt(source):
        claims = user
    organization = None
    if context.organization_id is not None:
        organization = {
            "id": context.organization_id,
            "roles": list(context.organization_roles),
            "teamId": context.team_id,
        }
    credential = None
    if context.authenticated:
        # The pipeline hands a bearer token / ?apiKey= over; without one the provider read
        # its cookie.
        credential = "token" if context.token else "cookie"
    return {
        "authenticated": context.authenticated,
        "credential": credential,
        "user": _plain(user),
        "session": _plain(session),
        "claims": _plain(claims),
        "resourceId": context.resource_id,
        "roles": list(context.roles),
        "permissions": list(context.permissions),
        "organization": organization,
    }


def add_auth_context_route(router: Router) -> None:
    auth = router.pipeline.auth
    source = auth.source if auth is not None else None

    async def auth_context(request: Request, context: RequestContext) -> Any:
        answer = describe_context(context, source)
        answer["provider"] = auth.name if auth is not None else None
        return answer

    # No permission derived from the path ("auth-context:read"): any caller may learn about itself.
    router.add(
        AUTH_CONTEXT_PATH,
        ["GET"],
        auth_context,
        derive_permission=False,
        doc=Doc("What the server knows of the caller (its request context)", ("System",)),
    )
