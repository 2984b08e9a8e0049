"""Authorization from verified token claims: OAuth scopes and Auth0 permissions.

    Auth0Auth(audience=..., authorize_user=require_scopes("read:things"))
    JWTAuth(issuer=..., audience=..., authorize_user=require_permissions("admin:all"))

The user handed to these callables is the claims dict a JWT provider verified, so scopes
and permissions come only from verified claims (S29). Each callable also requires a
subject (`sub`), as the providers' default policies do, because passing `authorize_user=`
replaces that default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection

__all__ = ["require_permissions", "require_scopes", "token_permissions", "token_scopes"]


def _words(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def token_scopes(user: Any) -> frozenset[str]:
    """The space-separated `scope` claim (RFC 9068, Auth0), else `scp` (a list or a string,
    as Okta and Entra ID send it)."""
    if not isinstance(user, dict):
        return frozenset()
    if "scope" in user:
        return _words(user["scope"]) if isinstance(user["scope"], str) else frozenset()
    return _words(user.get("scp"))


def token_permissions(user: Any) -> frozenset[str]:
    """The `permissions` list claim (Auth0 RBAC: "Add Permissions in the Access Token")."""
    if not isinstance(user, dict) or not isinstance(user.get("permissions"), list):
        return frozenset()
    return _words(user["permissions"])


def _has_subject(user: Any) -> bool:
    return isinstance(user, dict) and isinstance(user.get("sub"), str) and bool(user["sub"])


def require_scopes(*scopes: str) -> Callable[[Any, HTTPConnection], bool]:
    """An `authorize_user` that lets a user through only with every one of `scopes`."""
    needed = _check_names("require_scopes", scopes)

    def authorize(user: Any, request: HTTPConnection) -> bool:
        return _has_subject(user) and needed <= token_scopes(user)

    return authorize


def require_permissions(*permissions: str) -> Callable[[Any, HTTPConnection], bool]:
    """An `authorize_user` that lets a user through only with every one of `permissions`."""
    needed = _check_names("require_permissions", permissions)

    def authorize(user: Any, request: HTTPConnection) -> bool:
        return _has_subject(user) and needed <= token_permissions(user)

    return authorize


def _check_names(owner: str, names: tuple[str, ...]) -> frozenset[str]:
    if not names or not all(isinstance(name, str) and name and " " not in name for name in names):
        raise ValueError(f"{owner} takes one or more names without spaces")
    return frozenset(names)
