"""SimpleAuth: a fixed map of tokens to users, for development and API keys (spec §1.5)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from starlette.requests import HTTPConnection

from ..provider import AuthorizeUser, AuthProvider, MapUserToResourceId, RoutePattern

__all__ = ["SimpleAuth"]

_MISSING = object()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class SimpleAuth(AuthProvider):
    """`SimpleAuth({"key-1": {"id": "ana"}}, headers="X-Api-Key")`.

    The user is the value of the first known token among: the token the pipeline passes
    (from `Authorization: Bearer` or `?apiKey=`), the headers `Authorization` and
    `X-Playground-Access` plus `headers` (a leading `"Bearer "` stripped), and the
    `bastion-token` cookie. By default only the configured users are authorized.
    """

    name = "simple"
    session_cookie_name = "bastion-token"
    DEFAULT_HEADERS = ("Authorization", "X-Playground-Access")

    def __init__(
        self,
        tokens: Mapping[str, Any],
        *,
        headers: str | Sequence[str] = (),
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
        for token in tokens:
            if not isinstance(token, str) or not token:
                raise ValueError("SimpleAuth tokens are non-empty strings")
        # Looked up by SHA-256 digest: the time a lookup takes says nothing about the tokens.
        self._users = {_digest(token): user for token, user in tokens.items()}
        self._values = list(tokens.values())
        extra = [headers] if isinstance(headers, str) else list(headers)
        seen = {name.lower() for name in self.DEFAULT_HEADERS}
        self.headers = [*self.DEFAULT_HEADERS]
        for header in extra:
            if header.lower() not in seen:
                seen.add(header.lower())
                self.headers.append(header)

    def _candidates(self, token: str, request: HTTPConnection) -> Iterator[str]:
        yield token
        for header in self.headers:
            value = request.headers.get(header)
            if value:
                yield value.removeprefix("Bearer ")
        cookie = request.cookies.get(self.session_cookie_name)
        if cookie:
            yield cookie

    async def authenticate_token(self, token: str, request: HTTPConnection) -> Any | None:
        for candidate in self._candidates(token, request):
            if not candidate:
                continue
            user = self._users.get(_digest(candidate), _MISSING)
            if user is not _MISSING:
                return user
        return None

    async def default_authorize_user(self, user: Any, request: HTTPConnection) -> bool:
        # The same object for object users, equality for strings and numbers (JS `includes`).
        return any(
            user is value or (isinstance(value, str | int | float) and user == value)
            for value in self._values
        )
