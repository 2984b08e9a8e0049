"""The answers the auth pipeline gives instead of running a handler.

    AuthError                     rendered once by the pipeline as {"error": ...}
    ├── Unauthenticated           401 no credential, or the provider found no user
    ├── Forbidden                 403 authorize_user / authorize / rules said no
    │   ├── InsufficientScope     403 the token lacks OAuth scopes (RFC 6750 challenge)
    │   └── PermissionDenied      403 RBAC: the route's permission is missing
    ├── AuthorizationFailed       500 authorize_user / authorize raised
    └── ResourceMappingFailed     500 map_user_to_resource_id raised

An `authorize_user` or `authorize` callable may raise an `AuthError` itself (e.g.
`InsufficientScope`): that is the answer, instead of the 500 any other exception gives.

`ProviderError` is not an answer but a fault a provider may raise (a JWKS outage, an
identity server that does not answer): the pipeline logs it and fails closed with a 401.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

__all__ = [
    "AuthError",
    "AuthorizationFailed",
    "Forbidden",
    "InsufficientScope",
    "PermissionDenied",
    "ProviderError",
    "ResourceMappingFailed",
    "Unauthenticated",
    "redact",
]


class ProviderError(Exception):
    """A provider could not decide (its key set or server is unreachable, ...)."""


class AuthError(Exception):
    status: ClassVar[int] = 500
    error: ClassVar[str] = "Authorization error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.error)
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.error}

    def headers(self) -> dict[str, str]:
        return {}


class Unauthenticated(AuthError):
    """401. `credential_sent` chooses the RFC 6750 challenge (security item S30): a request
    that carried no credential at all gets a bare `Bearer` challenge, without an error code."""

    status = 401
    error = "Invalid or expired token"

    def __init__(self, *, credential_sent: bool = True) -> None:
        super().__init__()
        self.credential_sent = credential_sent

    def headers(self) -> dict[str, str]:
        if self.credential_sent:
            return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(AuthError):
    status = 403
    error = "Access denied"


class InsufficientScope(Forbidden):
    """403 for a valid token without the scopes a route needs (RFC 6750 §3.1, S30)."""

    def __init__(self, scopes: Sequence[str] = ()) -> None:
        super().__init__()
        self.scopes = tuple(scopes)

    def headers(self) -> dict[str, str]:
        challenge = 'Bearer error="insufficient_scope"'
        if self.scopes:
            challenge += f', scope="{" ".join(self.scopes)}"'
        return {"WWW-Authenticate": challenge}


class PermissionDenied(Forbidden):
    error = "Forbidden"

    def __init__(self, required: Sequence[str]) -> None:
        self.required = tuple(required)
        super().__init__("Missing required permission: " + " or ".join(self.required))

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": str(self)}


class AuthorizationFailed(AuthError):
    status = 500
    error = "Authorization error"


class ResourceMappingFailed(AuthError):
    status = 500
    error = "Failed to map authenticated user to a resource ID"


def redact(exc: BaseException, secret: str | None) -> str:
    """An exception for the logs, with the credential cut out of its message."""
    message = f"{type(exc).__name__}: {exc}"
    return message.replace(secret, "[redacted]") if secret else message
