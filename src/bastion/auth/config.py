"""What `Bastion(auth=...)` accepts, brought to one shape the pipeline runs.

`auth` is an `AuthProvider` (or any object with `authenticate_token` and
`authorize_user`), an `AuthConfig`, or a dict with the `AuthConfig` field names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from starlette.requests import HTTPConnection

from .._callbacks import as_async
from .provider import AuthProvider, MapUserToResourceId, RoutePattern, default_resource_id
from .rules import Rule, to_rules

__all__ = ["AuthConfig", "AuthLike", "Authenticate", "Authorize", "ResolvedAuth", "resolve_auth"]

Authenticate = Callable[[str, HTTPConnection], Any]
Authorize = Callable[[str, str, Any, HTTPConnection], bool | Awaitable[bool]]


@dataclass(frozen=True, kw_only=True)
class AuthConfig:
    """The plain-config form (spec §1.1): functions and lists instead of a provider.

    Without `authenticate_token` every protected request is answered 401. Authorization
    is `authorize(path, method, user, request)` if given, else `rules`, else allow (or,
    with RBAC, allow any user).
    """

    authenticate_token: Authenticate | None = None
    authorize: Authorize | None = None
    rules: Sequence[Rule | Mapping[str, Any]] = ()
    public: Sequence[RoutePattern] = ()
    protected: Sequence[RoutePattern] = ()
    map_user_to_resource_id: MapUserToResourceId | None = None

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> AuthConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise TypeError(f"unknown auth config keys: {sorted(unknown)}")
        return cls(**values)


AuthLike = AuthProvider | AuthConfig | Mapping[str, Any]


AsyncFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ResolvedAuth:
    """Either a provider (`authorize_user` set) or a plain config (`authorize`/`rules`).
    The authenticate/authorize functions are async here, whatever the user gave."""

    name: str
    authenticate: AsyncFunction | None
    authorize_user: AsyncFunction | None
    authorize: AsyncFunction | None
    rules: tuple[Rule, ...]
    public: tuple[RoutePattern, ...]
    protected: tuple[RoutePattern, ...]
    # Sync as typed; an awaitable it answers (a coroutine function's) is awaited.
    map_user_to_resource_id: Callable[[Any], Any]
    # Cookies whose presence counts as a credential for the 401 challenge (S30).
    credential_cookies: tuple[str, ...] = field(default=())
    source: Any = None
    # The provider's `organization_of(user) -> Membership | None`, when it has one (an
    # IdentityAuth of an Identity with the organization plugin): sync, no I/O.
    organization_of: Callable[[Any], Any] | None = None


def _is_provider(value: Any) -> bool:
    return isinstance(value, AuthProvider) or (
        callable(getattr(value, "authenticate_token", None))
        and callable(getattr(value, "authorize_user", None))
    )


def credential_cookie_names(value: Any) -> tuple[str, ...]:
    names = getattr(value, "session_cookie_name", None)
    if not names:
        return ()
    return (names,) if isinstance(names, str) else tuple(names)


def _organization_of(provider: Any) -> Callable[[Any], Any] | None:
    found = getattr(provider, "organization_of", None)
    return found if callable(found) else None


def resolve_auth(value: AuthLike) -> ResolvedAuth:
    if _is_provider(value):
        provider: Any = value  # duck-typed: any object with the two methods
        mapper = (
            provider.resource_mapper()
            if isinstance(provider, AuthProvider)
            else getattr(provider, "map_user_to_resource_id", None)
        )
        return ResolvedAuth(
            name=str(getattr(value, "name", type(value).__name__)),
            authenticate=as_async(provider.authenticate_token),
            authorize_user=as_async(provider.authorize_user),
            authorize=None,
            rules=(),
            public=tuple(getattr(value, "public", None) or ()),
            protected=tuple(getattr(value, "protected", None) or ()),
            map_user_to_resource_id=mapper if callable(mapper) else default_resource_id,
            credential_cookies=credential_cookie_names(value),
            source=value,
            organization_of=_organization_of(provider),
        )
    if isinstance(value, Mapping):
        value = AuthConfig.of(value)
    if not isinstance(value, AuthConfig):
        raise TypeError(
            "auth is an AuthProvider, an AuthConfig or a dict of its fields, "
            f"not {type(value).__name__}"
        )
    return ResolvedAuth(
        name="config",
        authenticate=as_async(value.authenticate_token) if value.authenticate_token else None,
        authorize_user=None,
        authorize=as_async(value.authorize) if value.authorize else None,
        rules=to_rules(value.rules),
        public=tuple(value.public),
        protected=tuple(value.protected),
        # Unset, memory is still scoped by the user's id: never by a client-sent value.
        map_user_to_resource_id=value.map_user_to_resource_id or default_resource_id,
        source=value,
    )
