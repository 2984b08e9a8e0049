"""Role-based access control: roles give permissions, routes require them (spec §2.10).

A permission is `resource:action` or `resource:action:id`. A route requires its
`requires_permission` (one string, or a list meaning "any of"), else one derived from
its path template and method:

- resource: the first segment after `/api` (`stored/agents` → `stored-agents`,
  `.well-known` → `a2a`);
- action: GET/HEAD → `read`, PUT/PATCH → `write`, DELETE → `delete`, POST → `execute` when
  the template contains one of the run verbs (`/generate`, `/stream`, `/execute`, ...),
  else `write`;
- id: when the segment right after the resource is a path parameter, its value:
  `GET /api/agents/{agentId}` requires `agents:read:weather` for agent `weather`.

The derivation reads the route's *template*, not the request path, so a parameter value
such as `generate` cannot turn a `write` into an `execute`.

A grant matches part by part, `*` matching any part, and a shorter grant covers the
longer permissions below it: `*` grants everything, `*:read` reading anything,
`agents:*` and `agents:read` every id (`agents:read:weather`), `agents:read:weather` only
that id.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from .._callbacks import call_user

__all__ = [
    "DEFAULT_ROLES",
    "EXECUTE_VERBS",
    "RBACProvider",
    "RoleSpec",
    "RoutePermission",
    "StaticRBAC",
    "derive_permission",
    "has_any_permission",
    "permission_grants",
]

# A role: a list of grants, or {"permissions": [...], "inherits": ["other role", ...]}.
RoleSpec = Sequence[str] | Mapping[str, Sequence[str]]
GetUserRoles = Callable[[Any], str | Sequence[str] | Awaitable[str | Sequence[str]]]

DEFAULT_ROLES: Mapping[str, RoleSpec] = MappingProxyType(
    {
        "owner": {"permissions": ["*"]},
        # Memory threads are the caller's own (the pipeline scopes them by resource id), so
        # keeping and deleting conversations is part of using the agents.
        "admin": {"permissions": ["*:read", "*:write", "*:execute", "memory:delete"]},
        "member": {
            "permissions": [
                "*:read",
                "*:execute",
                "stored-agents:write",
                "stored:write",
                "user:write",
                "memory:write",
                "memory:delete",
            ]
        },
        "viewer": {"permissions": ["*:read"]},
    }
)

EXECUTE_VERBS = (
    "/generate",
    "/stream",
    "/execute",
    "/start",
    "/resume",
    "/restart",
    "/cancel",
    "/approve",
    "/decline",
    "/speak",
    "/listen",
    "/query",
    "/search",
    "/observe",
    "/time-travel",
    "/enhance",
    "/clone",
)

_ACTIONS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}$")


@runtime_checkable
class RBACProvider(Protocol):
    """What the pipeline asks of an RBAC provider (errors are logged, the grants empty)."""

    async def get_roles(self, user: Any) -> Sequence[str]: ...

    async def get_permissions(self, user: Any) -> Sequence[str]: ...


def permission_grants(grant: str, required: str) -> bool:
    if grant == "*":
        return True
    # At most three parts: an id may itself contain ':' and must then match whole.
    have, want = grant.split(":", 2), required.split(":", 2)
    if len(have) > len(want):
        return False
    return all(part == "*" or part == other for part, other in zip(have, want, strict=False))


@lru_cache(maxsize=4096)  # a pure function of its argument: safe to share
def _granting(required: str) -> frozenset[str]:
    """Every grant that covers `required`: its first one, two or three parts, each part
    itself or `*`, joined (14 strings at most). Equivalent to trying `permission_grants`
    on each grant, but a set lookup per candidate instead of a split per grant, which
    matters when a role holds many grants (organization roles do)."""
    parts = required.split(":", 2)
    found: set[str] = {"*"}
    prefixes: list[str] = []
    for index, part in enumerate(parts):
        options = (part, "*")
        prefixes = list(options) if index == 0 else [f"{p}:{x}" for p in prefixes for x in options]
        found.update(prefixes)
    return frozenset(found)


def has_any_permission(grants: Iterable[str], required: Sequence[str]) -> bool:
    global _last_held
    if isinstance(grants, set | frozenset):
        held: Set[str] = grants
    elif type(grants) is tuple:
        # The same tuple comes again and again (OrganizationRBAC's per role set, through the
        # pipeline): its set is made once. A tuple of strings never changes, and the one
        # held here cannot be freed, so no other tuple can be taken for it.
        last = _last_held
        if last[0] is grants:
            held = last[1]
        else:
            held = frozenset(grants)
            _last_held = (grants, held)
    else:
        held = set(grants)
    # A loop, not any() over a generator: asked on every request under RBAC.
    for want in required:  # noqa: SIM110
        if not held.isdisjoint(_granting(want)):
            return True
    return False


_last_held: tuple[tuple[str, ...], frozenset[str]] = ((), frozenset())


def _action(method: str, path: str) -> str | None:
    if method == "POST":
        return "execute" if any(verb in path for verb in EXECUTE_VERBS) else "write"
    return _ACTIONS.get(method)


def _resource(segments: list[str]) -> tuple[str, int] | None:
    """The resource and the index of the segment after it."""
    if not segments:
        return None
    if segments[0] == "stored" and len(segments) > 1 and segments[1] == "agents":
        return "stored-agents", 2
    if segments[0] == ".well-known":
        return "a2a", 1
    return segments[0], 1


def _segments(path: str, prefix: str) -> list[str]:
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :]
    return [segment for segment in path.split("/") if segment]


def derive_permission(path: str, method: str, *, prefix: str = "/api") -> str | None:
    """The permission a request path needs when no route template is known (no id)."""
    found = _resource(_segments(path, prefix))
    action = _action(method, path)
    if found is None or action is None:
        return None
    return f"{found[0]}:{action}"


@dataclass(frozen=True, slots=True)
class RoutePermission:
    """The permission a route requires, computed once from its template."""

    base: str
    id_param: str | None = None

    @classmethod
    def of(cls, template: str, method: str, *, prefix: str = "/api") -> RoutePermission | None:
        segments = _segments(template, prefix)
        found = _resource(segments)
        action = _action(method, template)
        if found is None or action is None or _PARAM.match(found[0]):
            return None
        resource, after = found
        id_param = None
        if after < len(segments):
            param = _PARAM.match(segments[after])
            id_param = param.group(1) if param else None
        return cls(f"{resource}:{action}", id_param)

    def render(self, params: Mapping[str, Any]) -> str:
        if self.id_param is None:
            return self.base
        return f"{self.base}:{params[self.id_param]}"


def _default_user_roles(user: Any) -> str | Sequence[str]:
    """`roles` or `role` of the user (or of `user["user"]`, the shape of an Identity session)."""
    for holder in (user, user.get("user") if isinstance(user, Mapping) else None):
        if holder is None:
            continue
        for key in ("roles", "role"):
            value = holder.get(key) if isinstance(holder, Mapping) else getattr(holder, key, None)
            if value:
                return value  # type: ignore[no-any-return]
    return ()


def _role_names(value: str | Sequence[str]) -> tuple[str, ...]:
    # better-auth's admin plugin stores several roles as "admin,user".
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(",") if name.strip())
    return tuple(str(name) for name in value)


class StaticRBAC:
    """Roles defined in code: `StaticRBAC(roles=..., get_user_roles=lambda u: u["roles"])`.

    `roles` maps a role name to a list of grants, or to `{"permissions": [...],
    "inherits": [...]}`; inheritance is resolved once, at construction (an unknown role or
    a cycle raises ValueError). `role_mapping` maps the role names a provider reports to
    grants and wins over `roles`; its key `"_default"` covers roles found in neither.
    `get_user_roles(user)` (sync or async) returns the user's role names, by default the
    user's `roles` or `role` (a comma-separated string is split).
    """

    def __init__(
        self,
        roles: Mapping[str, RoleSpec] = DEFAULT_ROLES,
        get_user_roles: GetUserRoles | None = None,
        role_mapping: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._get_user_roles = get_user_roles or _default_user_roles
        self._grants = _flatten(roles)
        self._mapping = {name: tuple(grants) for name, grants in (role_mapping or {}).items()}

    @property
    def roles(self) -> Mapping[str, tuple[str, ...]]:
        """Each role's grants, inheritance resolved."""
        return MappingProxyType(self._grants)

    async def get_roles(self, user: Any) -> tuple[str, ...]:
        if user is None:
            return ()
        return _role_names(await call_user(self._get_user_roles, user))

    async def get_permissions(self, user: Any) -> tuple[str, ...]:
        return self.permissions_of(await self.get_roles(user))

    def permissions_of(self, roles: Iterable[str]) -> tuple[str, ...]:
        grants: dict[str, None] = {}
        for role in roles:
            if role in self._mapping:
                found: tuple[str, ...] = self._mapping[role]
            elif role in self._grants:
                found = self._grants[role]
            else:
                found = self._mapping.get("_default", ())
            grants.update(dict.fromkeys(found))
        return tuple(grants)


def _flatten(roles: Mapping[str, RoleSpec]) -> dict[str, tuple[str, ...]]:
    own: dict[str, tuple[str, ...]] = {}
    parents: dict[str, tuple[str, ...]] = {}
    for name, spec in roles.items():
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"permissions", "inherits"}
            if unknown:
                raise ValueError(f"role {name!r}: unknown keys {sorted(unknown)}")
            own[name] = _strings(spec.get("permissions", ()), name)
            parents[name] = _strings(spec.get("inherits", ()), name)
        else:
            own[name], parents[name] = _strings(spec, name), ()
    for name, inherited in parents.items():
        for parent in inherited:
            if parent not in own:
                raise ValueError(f"role {name!r} inherits the unknown role {parent!r}")

    resolved: dict[str, tuple[str, ...]] = {}

    def resolve(name: str, path: tuple[str, ...]) -> tuple[str, ...]:
        if name in path:
            raise ValueError("roles inherit in a cycle: " + " -> ".join((*path, name)))
        if name not in resolved:
            grants = dict.fromkeys(own[name])
            for parent in parents[name]:
                grants.update(dict.fromkeys(resolve(parent, (*path, name))))
            resolved[name] = tuple(grants)
        return resolved[name]

    for name in own:
        resolve(name, ())
    return resolved


def _strings(values: Sequence[str] | str, role: str) -> tuple[str, ...]:
    if isinstance(values, str) or not all(isinstance(value, str) for value in values):
        raise ValueError(f"role {role!r}: permissions and inherits are lists of strings")
    return tuple(values)
