"""`IdentityAuth`: the sessions of an Identity as an auth provider — in-process (through
`Identity.get_session`, the Identity's one way to read a session, after its I/O-free first
step `Identity.cached_session`), or asked of a remote better-auth-compatible server.

    IdentityAuth(identity)                           # this process's Identity
    IdentityAuth(url="https://auth.example.com/api/auth")   # Bastion or TypeScript better-auth

The credential is the request's session cookie, or the bearer token the pipeline hands over
(`Authorization: Bearer`, `?apiKey=`): signed (`token.signature`, as `set-auth-token` gives
it) or raw (the `token` of sign-in, signed here with the Identity's secret, as Mastra fixed
#19110). A session cookie already on the request wins over the token. The user is the
get-session answer, `{"session": {...}, "user": {...}}`.

`Set-Cookie` lines the session check produced for a cookie-carrying client (a sliding refresh,
a rewritten cookie cache, the cookies of a dead session to clear) are left on the request for
the server to send with whatever it answers: `("set-cookie", line)` pairs appended to the list
`request.state.response_headers` (`bastion.auth.pipeline.RESPONSE_HEADERS`).

With the organization plugin on the Identity (in-process), the user also carries
`"membership"`: the session's active organization, checked against the member table through
the plugin's membership cache (`_identity_orgs.py`), or None. The pipeline puts it into
`RequestContext.organization_id` / `organization_roles` / `team_id` (`organization_of`),
and `OrganizationRBAC` turns its roles into permissions.

A session that cannot be checked because storage is down (the database, the secondary
storage, the remote server) raises `ProviderUnavailable` (a 503 naming it), never "no user":
a client would drop a valid session on the 401. A valid cookie cache may still decide where
it is trusted (`trust_cookie_cache`), as it would with storage up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
from starlette.requests import HTTPConnection

from bastion.identity import (
    DatabaseUnavailable,
    Identity,
    RedisStorage,
    SessionResult,
    StorageUnavailable,
    TrustCookieCache,
)

from ..context import Membership
from ..errors import ProviderUnavailable, redact
from ..pipeline import RESPONSE_HEADERS
from ..provider import AuthorizeUser, AuthProvider, MapUserToResourceId, RoutePattern
from ._identity_orgs import UNKNOWN, ActiveMemberships, organization_runtime
from ._identity_remote import RemoteSessions

__all__ = ["IdentityAuth", "TrustCookieCache"]

logger = logging.getLogger("bastion.auth.identity")

# What a 503 names (ProviderUnavailable): the storage that is down.
DATABASE = "The database"
SECONDARY_REDIS = "Redis (secondary storage)"
SECONDARY_STORAGE = "The secondary storage"

# dict first: the usual case, and fast. A constant: `dict | Mapping` written in the call
# would build a new union every time, which costs more than the check.
_MAPPING: tuple[type[dict[Any, Any]], type[Mapping[Any, Any]]] = (dict, Mapping)


class IdentityAuth(AuthProvider):
    """Sessions of `identity` (in-process), or of the server at `url` (remote).

    In-process options: `trust_cookie_cache` — when a valid cookie cache (`session_data`)
    stands for the session without a storage read: "reads" (GET/HEAD/OPTIONS, the default, as
    the Identity's own guards: a signed-out session cannot act through its cache), "always"
    (better-auth's get-session), "never"; `require_signature` — refuse raw bearer tokens.

    Remote options: `cookie_prefix` (the server's `advanced.cookiePrefix`, default
    "better-auth"), `timeout` (seconds, default 5), `cache_ttl` (seconds a session is trusted
    without asking again, default 5; 0 turns the cache off), `negative_cache_ttl` (for a
    refusal, default 1), `cache_size` (entries, default 10 000), `http_client` (an
    `httpx.AsyncClient` to use instead of the provider's own), `clock` (a function that
    returns epoch seconds, for tests that move time; by default the system's clocks). Close
    with `await aclose()`.
    """

    name = "identity"

    def __init__(
        self,
        identity: Identity | None = None,
        *,
        url: str | None = None,
        trust_cookie_cache: TrustCookieCache = "reads",
        require_signature: bool = False,
        cookie_prefix: str | None = None,
        timeout: float | None = None,
        cache_ttl: float | None = None,
        negative_cache_ttl: float | None = None,
        cache_size: int | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] | None = None,
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
        if (identity is None) == (url is None):
            raise TypeError("IdentityAuth takes an Identity or url=, one of the two")
        remote_options = {
            "cookie_prefix": cookie_prefix,
            "timeout": timeout,
            "cache_ttl": cache_ttl,
            "negative_cache_ttl": negative_cache_ttl,
            "cache_size": cache_size,
            "http_client": http_client,
            "clock": clock,
        }
        # The Bastion app mounts a given Identity at /api/auth.
        self.identity: Identity | None = identity
        self._remote: RemoteSessions | None = None
        self._memberships: ActiveMemberships | None = None
        if identity is not None:
            given = sorted(k for k, v in remote_options.items() if v is not None)
            if given:
                raise TypeError(f"{', '.join(given)}: options of IdentityAuth(url=...) only")
            if trust_cookie_cache not in ("reads", "always", "never"):
                raise ValueError(
                    f"trust_cookie_cache: 'reads', 'always' or 'never', not {trust_cookie_cache!r}"
                )
            self._trust: TrustCookieCache = trust_cookie_cache
            runtime = organization_runtime(identity)
            if runtime is not None:
                self._memberships = ActiveMemberships(identity, runtime)
            self._require_signature = require_signature
            self.session_cookie_name = identity.session_cookie_name
            storage = identity.options.secondary_storage
            self._secondary_name = (
                SECONDARY_REDIS if isinstance(storage, RedisStorage) else SECONDARY_STORAGE
            )
        else:
            assert url is not None
            if trust_cookie_cache != "reads" or require_signature:
                raise TypeError(
                    "trust_cookie_cache, require_signature: options of IdentityAuth(identity) only"
                )
            self._remote = RemoteSessions(
                url,
                cookie_prefix=cookie_prefix or "better-auth",
                timeout=5.0 if timeout is None else timeout,
                ttl=5.0 if cache_ttl is None else cache_ttl,
                negative_ttl=1.0 if negative_cache_ttl is None else negative_cache_ttl,
                max_entries=10_000 if cache_size is None else cache_size,
                client=http_client,
                clock=clock,
            )
            self.session_cookie_name = self._remote.session_cookie_name
        self.url = url

    async def authenticate_token(self, token: str, request: HTTPConnection) -> Any | None:
        """`{"session", "user"}` of the request's session, or None; `ProviderUnavailable`
        when storage (or the remote server) cannot say."""
        try:
            cookie, method = _cookie_and_method(request)
            identity = self.identity
            if identity is not None:
                set_cookies: Sequence[str] = ()
                # The usual read first: no coroutine, no result object (on every request).
                session: dict[str, Any] | None
                person: dict[str, Any] | None
                rows = identity.cached_session(cookie, method, self._trust)
                if rows is not None:
                    session, person = rows
                else:
                    found: SessionResult = await identity.get_session(
                        {"cookie": cookie},
                        method=method,
                        bearer=token or "",
                        trust_cookie_cache=self._trust,
                        require_signature=self._require_signature,
                    )
                    session, person, set_cookies = found.session, found.user, found.set_cookies
                user: dict[str, Any] | None = None
                if person is not None and session is not None:
                    user = {"session": session, "user": person}
                    memberships = self._memberships
                    if memberships is not None:
                        # The cached member row without a coroutine; read when not cached.
                        membership = memberships.known(session, person)
                        if membership is UNKNOWN:
                            membership = await memberships.read(session, person)
                        user["membership"] = membership
            else:
                assert self._remote is not None
                resolution = await self._remote.resolve(token or "", cookie)
                user, set_cookies = resolution.user, resolution.set_cookies
        except ProviderUnavailable:
            raise
        except DatabaseUnavailable as exc:
            logger.warning("identity session check: %s", redact(exc, token))
            raise ProviderUnavailable(DATABASE) from None
        except StorageUnavailable as exc:
            logger.warning("identity session check: %s", redact(exc, token))
            raise ProviderUnavailable(self._secondary_name) from None
        except Exception as exc:  # a provider answers None, never a 500 (Mastra §7)
            # The exception's text may quote the credential (a driver echoing parameters).
            logger.warning("identity session check failed: %s", type(exc).__name__)
            return None
        if set_cookies and isinstance(request, HTTPConnection):
            state = request.scope.setdefault("state", {})
            pending: list[tuple[str, str]] = state.setdefault(RESPONSE_HEADERS, [])
            pending.extend(("set-cookie", line) for line in set_cookies)
        return user

    @property
    def organization_of(self) -> Any:
        """`(user) -> Membership | None` when the Identity has the organization plugin (the
        pipeline's hook for `RequestContext.organization_id`), else None."""
        return _membership_of if self._memberships is not None else None

    def authorizer(self) -> Callable[[Any, HTTPConnection], Awaitable[bool]] | None:
        """In-process, None in place of the default policy: `authenticate_token` answers only
        a session and a user that the Identity read (from storage or a verified cookie
        cache), each with its id, which `default_authorize_user` would pass every time."""
        found = super().authorizer()
        if (
            self.identity is not None
            and found == self.default_authorize_user
            and type(self).default_authorize_user is IdentityAuth.default_authorize_user
        ):
            return None
        return found

    async def default_authorize_user(self, user: Any, request: HTTPConnection) -> bool:
        """A session and a user, both with an id (MastraAuthBetterAuth's default)."""
        if not isinstance(user, _MAPPING):
            return False
        session, person = user.get("session"), user.get("user")
        return (
            isinstance(session, _MAPPING)
            and isinstance(person, _MAPPING)
            and bool(session.get("id"))
            and bool(person.get("id"))
        )

    async def aclose(self) -> None:
        """Close what the provider opened: the HTTP client and the cached answers (remote).
        In-process, the provider opens nothing: the Identity's storage is the Identity's."""
        if self._remote is not None:
            await self._remote.aclose()


def _membership_of(user: Any) -> Membership | None:
    found = user.get("membership") if isinstance(user, dict) else None
    return found if isinstance(found, Membership) else None


def _cookie_and_method(request: Any) -> tuple[str, str]:
    """The Cookie header (the bearer token is the pipeline's to hand over) and the method of
    a Starlette connection (anything with an ASGI `scope`), or of anything with `headers` (a
    mapping, read case-insensitively: the lesson of Mastra #21253) and `method`. Cookie
    headers sent apart (HTTP/2), or given as a list, are joined."""
    # The scope itself rather than isinstance(request, HTTPConnection): an ABC check, and
    # this runs on every request.
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict):
        # ASGI header names are lower-case bytes: no need to build a Headers object.
        cookie = b""
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie = cookie + b"; " + value if cookie else value
        # No method on a WebSocket, which opens with a GET.
        return cookie.decode("latin-1"), scope.get("method", "GET")
    method = getattr(request, "method", None)
    method = method.upper() if isinstance(method, str) else "GET"
    headers = getattr(request, "headers", None)
    if headers is None and isinstance(request, Mapping):
        headers = request
    if not isinstance(headers, Mapping):
        return "", method
    values: list[Any] = []
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == "cookie":
            values.extend(value if isinstance(value, list | tuple) else [value])
    return "; ".join(str(v) for v in values), method
