"""What the pipeline learned about a request, handed to handlers, agents and tools."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RESERVED_KEYS",
    "Membership",
    "RequestContext",
    "bind_context",
    "current_context",
    "strip_reserved",
]

# Keys a client may never set through a request body or query: identity comes only from
# the pipeline (the class of bug behind Mastra's GHSA-cw45-899f-pvrr). The organization's
# keys are listed in both spellings a client might try.
RESERVED_KEYS = frozenset(
    {
        "user",
        "token",
        "resource_id",
        "resourceId",
        "roles",
        "permissions",
        "organization_id",
        "organizationId",
        "activeOrganizationId",
        "organization_roles",
        "organizationRoles",
        "team_id",
        "teamId",
        "activeTeamId",
        "membership",
    }
)
# Mastra's server keeps the caller's scope in `mastra__resourceId` / `mastra__threadId` of the
# request context; a tool ported from Mastra may read them, so a client may not set them.
RESERVED_PREFIXES = ("bastion__", "mastra__")


@dataclass(frozen=True, slots=True)
class Membership:
    """The caller's membership of its active organization, as the provider checked it (a
    member row exists now, or did within the provider's cache window): never what the
    session or the client merely claims. `roles` are the member's role names (better-auth
    keeps several as "admin,member"); `team_id` the session's active team, if any."""

    organization_id: str
    roles: tuple[str, ...]
    team_id: str | None = None
    member_id: str | None = None


@dataclass
class RequestContext:
    """The authenticated caller of one request; `user` is None on a public route."""

    user: Any = None
    token: str | None = None
    resource_id: str | None = None
    roles: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    # Anything else a handler or a client put there (reserved keys stripped).
    values: dict[str, Any] = field(default_factory=dict)
    # The active organization the caller is a member of, its roles there, and its active
    # team (an Identity with the organization plugin; None and () otherwise).
    organization_id: str | None = None
    organization_roles: tuple[str, ...] = ()
    team_id: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def strip_reserved(values: Mapping[str, Any]) -> dict[str, Any]:
    """A client-supplied context without the keys only the pipeline may set."""
    return {
        key: value
        for key, value in values.items()
        if key not in RESERVED_KEYS and not key.startswith(RESERVED_PREFIXES)
    }


_current: ContextVar[RequestContext | None] = ContextVar("bastion_request_context", default=None)


def current_context() -> RequestContext:
    """The context of the request being served (an empty one outside a request)."""
    context = _current.get()
    return context if context is not None else RequestContext()


class bind_context:
    """`with bind_context(context):` makes `context` the current one for the block (and the
    tasks it starts). A class rather than @contextmanager: it is entered on every request,
    and a generator-based manager costs about a microsecond more."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: RequestContext) -> None:
        self._context = context

    def __enter__(self) -> RequestContext:
        self._token = _current.set(self._context)
        return self._context

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)
