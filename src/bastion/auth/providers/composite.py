"""CompositeAuth: several providers tried in order, e.g. sessions and API keys (spec §1.5)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from contextvars import ContextVar
from typing import Any

from starlette.requests import HTTPConnection

from ..errors import ProviderUnavailable, redact
from ..provider import (
    AuthorizeUser,
    AuthProvider,
    MapUserToResourceId,
    RoutePattern,
    default_resource_id,
)

__all__ = ["CompositeAuth"]

logger = logging.getLogger("bastion.auth")


class CompositeAuth(AuthProvider):
    """The first provider that returns a user wins; a provider that raises is skipped, except
    one that raises `ProviderUnavailable`: it could not decide (its storage or issuer is
    down), so the answer is its 503 rather than whatever a later provider makes of a
    credential that may well be the first one's.

    `authorize_user` is true when ANY provider authorizes the user. `public` and
    `protected` are this provider's own entries followed by each provider's.
    `map_user_to_resource_id` and `organization_of` ask the provider that authenticated the
    user, which the composite remembers for the request being served.
    """

    name = "composite"

    def __init__(
        self,
        providers: Sequence[AuthProvider],
        *,
        name: str | None = None,
        authorize_user: AuthorizeUser | None = None,
        map_user_to_resource_id: MapUserToResourceId | None = None,
        public: Sequence[RoutePattern] = (),
        protected: Sequence[RoutePattern] = (),
    ) -> None:
        if not providers:
            raise ValueError("CompositeAuth needs at least one provider")
        super().__init__(
            name=name,
            authorize_user=authorize_user,
            map_user_to_resource_id=map_user_to_resource_id,
            public=public,
            protected=protected,
        )
        self.providers = tuple(providers)
        for provider in self.providers:
            self.public.extend(getattr(provider, "public", None) or ())
            self.protected.extend(getattr(provider, "protected", None) or ())
        # Which provider authenticated whom, per request (a context variable: the pipeline
        # maps the user in the same task that authenticated it). Users may be unhashable
        # dicts, hence no identity map.
        self._origin: ContextVar[tuple[Any, Any] | None] = ContextVar(
            f"bastion_composite_origin_{id(self)}", default=None
        )

    @property
    def session_cookie_name(self) -> tuple[str, ...]:
        names: list[str] = []
        for provider in self.providers:
            value = getattr(provider, "session_cookie_name", None)
            if value:
                names.extend([value] if isinstance(value, str) else value)
        return tuple(dict.fromkeys(names))

    @property
    def identity(self) -> Any:
        """The first inner provider's Identity, so `Bastion` mounts it."""
        for provider in self.providers:
            identity = getattr(provider, "identity", None)
            if identity is not None:
                return identity
        return None

    async def authenticate_token(self, token: str, request: HTTPConnection) -> Any | None:
        for provider in self.providers:
            try:
                user = await provider.authenticate_token(token, request)
            except ProviderUnavailable:
                raise
            except Exception as exc:  # the next provider may know this credential
                logger.warning(
                    "auth provider %s raised %s", getattr(provider, "name", "?"), redact(exc, token)
                )
                continue
            if user is not None:
                self._origin.set((user, provider))
                return user
        return None

    async def default_authorize_user(self, user: Any, request: HTTPConnection) -> bool:
        for provider in self.providers:
            try:
                if await provider.authorize_user(user, request):
                    return True
            except Exception as exc:  # one failing provider does not decide for the others
                logger.error(
                    "authorize_user of %s raised %s",
                    getattr(provider, "name", "?"),
                    type(exc).__name__,
                )
        return False

    @property
    def organization_of(self) -> Any:
        """`(user) -> Membership | None` when an inner provider knows organizations (an
        IdentityAuth with the organization plugin): asks the provider that authenticated
        the user, so an API-key caller never borrows a session's organization."""
        if not any(getattr(p, "organization_of", None) for p in self.providers):
            return None
        return self._organization_of

    def _organization_of(self, user: Any) -> Any:
        origin = self._origin.get()
        if origin is None or origin[0] is not user:
            return None
        found = getattr(origin[1], "organization_of", None)
        return found(user) if callable(found) else None

    def map_user_to_resource_id(self, user: Any) -> str | Awaitable[str | None] | None:
        if self._map_user_to_resource_id is not None:
            return self._map_user_to_resource_id(user)
        origin = self._origin.get()
        if origin is not None and origin[0] is user:
            mapper = getattr(origin[1], "map_user_to_resource_id", None)
            if callable(mapper):
                # As the provider answers it: the pipeline awaits an awaitable (an async
                # hook's) and makes the id text.
                return mapper(user)  # type: ignore[no-any-return]
        return default_resource_id(user)
