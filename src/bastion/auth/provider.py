"""The provider contract: turn a credential into a user, then say whether that user may pass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from re import Pattern
from typing import Any, TypeVar

from starlette.requests import HTTPConnection

from .._callbacks import call_user

__all__ = [
    "AuthProvider",
    "AuthorizeUser",
    "MapUserToResourceId",
    "RoutePattern",
]

# A path pattern: "/api/x/:id", a compiled regex, or (pattern, "GET" | ["GET", "POST"]).
RoutePattern = str | Pattern[str] | tuple[str | Pattern[str], str | Sequence[str]]
AuthorizeUser = Callable[[Any, HTTPConnection], bool | Awaitable[bool]]
# Sync or async: the pipeline awaits an awaitable answer.
MapUserToResourceId = Callable[[Any], str | Awaitable[str | None] | None]


T = TypeVar("T")


class AuthProvider:
    """Base of every provider. Subclasses implement `authenticate_token`, and may override
    `default_authorize_user` (the provider's own policy, used unless the application passes
    `authorize_user=`).

    `authenticate_token` returns None for a missing, empty or invalid credential; it should
    not raise (the pipeline turns an exception into a 401 anyway, and logs it).
    """

    name: str = "auth"

    def __init__(
        self,
        *,
        name: str | None = None,
        authorize_user: AuthorizeUser | None = None,
        map_user_to_resource_id: MapUserToResourceId | None = None,
        public: Sequence[RoutePattern] = (),
        protected: Sequence[RoutePattern] = (),
    ) -> None:
        if name is not None:
            self.name = name
        self._authorize_user = authorize_user
        self._map_user_to_resource_id = map_user_to_resource_id
        self.public: list[RoutePattern] = list(public)
        self.protected: list[RoutePattern] = list(protected)

    async def authenticate_token(self, token: str, request: HTTPConnection) -> Any | None:
        raise NotImplementedError

    async def authorize_user(self, user: Any, request: HTTPConnection) -> bool:
        if self._authorize_user is not None:
            return bool(await call_user(self._authorize_user, user, request))
        return await self.default_authorize_user(user, request)

    async def default_authorize_user(self, user: Any, request: HTTPConnection) -> bool:
        return user is not None

    def authorizer(self) -> Callable[[Any, HTTPConnection], Awaitable[bool]] | None:
        """What `authorize_user` comes down to, for the pipeline, which asks on every
        request: `default_authorize_user` itself when the application gave no
        `authorize_user=` and no subclass redefines `authorize_user` (a call that only
        forwards is skipped), and None when that policy is this base class's "any user",
        which every user the pipeline has by then passes."""
        if self._authorize_user is not None or (
            type(self).authorize_user is not AuthProvider.authorize_user
        ):
            return self.authorize_user
        if type(self).default_authorize_user is AuthProvider.default_authorize_user:
            return None
        return self.default_authorize_user

    def resource_mapper(self) -> Callable[[Any], Any]:
        """What `map_user_to_resource_id` comes down to: the application's hook itself, else
        `default_resource_id` — unless a subclass redefines the method. The pipeline asks on
        every request, and a call that only forwards would be paid each time."""
        if type(self).map_user_to_resource_id is not AuthProvider.map_user_to_resource_id:
            return self.map_user_to_resource_id
        return self._map_user_to_resource_id or default_resource_id

    def map_user_to_resource_id(self, user: Any) -> str | Awaitable[str | None] | None:
        """The memory owner of a user: the hook's answer (awaited by the pipeline when it is
        awaitable), else the user's `id`."""
        if self._map_user_to_resource_id is not None:
            return self._map_user_to_resource_id(user)
        return default_resource_id(user)


def default_resource_id(user: Any) -> str | None:
    if isinstance(user, dict):
        nested = user.get("user")
        if isinstance(nested, dict) and nested.get("id"):
            return str(nested["id"])
        for key in ("id", "sub"):
            if user.get(key):
                return str(user[key])
        return None
    for attribute in ("id", "sub"):
        value = getattr(user, attribute, None)
        if value:
            return str(value)
    return None
