"""The answers the auth pipeline gives instead of running a handler.

    bastion.errors.HTTPError
    └── AuthError                 rendered once by the pipeline as {"error": ...}
        ├── InvalidRequest            400 a malformed credential request (RFC 6750 invalid_request)
        ├── Unauthenticated           401 no credential, or the provider found no user
        ├── Forbidden                 403 authorize_user / authorize / rules said no
        │   ├── InsufficientScope     403 the token lacks OAuth scopes (RFC 6750 challenge)
        │   └── PermissionDenied      403 RBAC: the route's permission is missing
        ├── AuthorizationFailed       500 authorize_user / authorize raised
        ├── ResourceMappingFailed     500 map_user_to_resource_id raised
        └── ProviderUnavailable       503 a dependency of the credential check is down

An `authorize_user` or `authorize` callable may raise an `AuthError` itself (e.g.
`InsufficientScope`): that is the answer, instead of the 500 any other exception gives.

A provider that cannot decide because something it depends on is down (the database,
Redis, an issuer's keys, a remote identity server) raises `ProviderUnavailable`: a 503 with
`Retry-After` and no `invalid_token` challenge, since a client that drops its token on a 401
would sign its user out because of an outage (S40). Any other exception from a
provider (`ProviderError` included) is a fault the pipeline logs and fails closed on with a
401.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..errors import HTTPError

__all__ = [
    "AuthError",
    "AuthorizationFailed",
    "Forbidden",
    "InsufficientScope",
    "InvalidRequest",
    "PermissionDenied",
    "ProviderError",
    "ProviderUnavailable",
    "ResourceMappingFailed",
    "Unauthenticated",
    "redact",
]


class ProviderError(Exception):
    """A provider failed in a way of its own; the pipeline answers 401 (fails closed). For a
    dependency that is down, raise `ProviderUnavailable` instead."""


class AuthError(HTTPError):
    """A refusal of the auth pipeline. Its body is the class's `error` alone: the message,
    which may name what was checked, is for the logs (subclasses that must say more, say
    it)."""

    status = 500
    error: ClassVar[str] = "Authorization error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(None, message)

    def body(self) -> dict[str, str]:
        return {"error": self.error}

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(AuthError):
    """400 for a request whose credential is ambiguous or malformed (RFC 6750 §3.1
    `invalid_request`): e.g. two `Authorization` headers, or `apiKey` twice in the query,
    where taking either one would let a proxy and the server disagree on who is calling."""

    status = 400
    error = "Invalid request"

    def body(self) -> dict[str, str]:
        return {"error": self.message or self.error}

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="invalid_request"'}


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


class ProviderUnavailable(AuthError):
    """503: the provider cannot decide, because `dependency` is down. The body names it,
    `{"error": "The database is unavailable"}`; `Retry-After` says when to try again. No
    `WWW-Authenticate`: the credential was not found invalid.

    `dependency` is written as it starts a sentence ("The database", "Redis (secondary
    storage)", "The issuer's key set (JWKS)", "The identity server")."""

    status = 503
    error = "Service unavailable"
    DEFAULT_RETRY_AFTER: ClassVar[int] = 5

    def __init__(self, dependency: str, *, retry_after: int | None = None) -> None:
        super().__init__(f"{dependency} is unavailable")
        self.dependency = dependency
        self.retry_after = max(1, self.DEFAULT_RETRY_AFTER if retry_after is None else retry_after)

    def body(self) -> dict[str, str]:
        return {"error": str(self)}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def redact(exc: BaseException, secret: str | None) -> str:
    """An exception for the logs, with the credential cut out of its message."""
    message = f"{type(exc).__name__}: {exc}"
    return message.replace(secret, "[redacted]") if secret else message
