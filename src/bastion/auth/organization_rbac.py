"""`OrganizationRBAC`: the agent server's permissions, from the caller's roles in its active
organization, through the organization plugin's own access-control statements.

    ac = create_access_control({"agents": ["read", "execute"], "refunds": ["create"], ...})
    identity = Identity(..., plugins=[organization(ac=ac, roles={"member": ..., "admin": ...})])
    Bastion(auth=IdentityAuth(identity), rbac=OrganizationRBAC(identity), ...)

**How a role becomes grants.** A role is better-auth statements, `{resource: [action, ...]}`;
each pair is the Bastion grant `resource:action` (rbac.py), so the role

    {"agents": ["read", "execute"], "tools": ["execute"], "memory": ["read", "write"]}

grants `agents:read`, `agents:execute`, `tools:execute`, `memory:read`, `memory:write`: it
may list and run every agent (`POST /api/agents/support/generate` requires
`agents:execute:support`, which `agents:execute` covers), call every tool over HTTP, and
read and write the memory threads the pipeline scopes it to.

- **An id in an action**: an action may name one object after a `:`, `"execute:support"`,
  giving `agents:execute:support` (that agent only). better-auth compares actions as plain
  strings, so its `has-permission` endpoint agrees: `{"agents": ["execute:support"]}`.
- **Wildcards** pass through: an action `"*"` gives `agents:*` (every action on agents), a
  resource `"*"` gives `*:read`. They are Bastion's wildcards, meaningful on the agent
  server only: better-auth's `has-permission` endpoint compares `"*"` as a literal string.
- A resource containing `:` cannot be written as a grant and is skipped (logged).

The roles are the plugin's: its `roles=` (else better-auth's defaults, which hold no agent
server statements: an organization `owner` with the default roles may not run agents), and
with `dynamic_access_control` the organization's stored roles, merged into a static role of
the same name as better-auth merges them. `grants={"owner": ["*"]}` adds Bastion grants to
a role by name, beyond its statements. A caller with no active organization (or no longer a
member of it) has the roles and grants `outside_organization` gives (none by default).

**Costs.** No database read for static roles: each role's grants are computed once. Stored
roles are read once per organization into the plugin's membership cache, dropped by every
role change made through this process's endpoints, and otherwise kept for the cache's TTL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bastion.identity import Identity
from bastion.identity.plugins.access import Role
from bastion.identity.plugins.organization import Runtime, organization_roles

from .context import Membership
from .providers._identity_orgs import organization_runtime

__all__ = ["OrganizationRBAC", "statement_grants"]

logger = logging.getLogger("bastion.auth")

_MEMO_KEPT = 4096


def statement_grants(statements: Mapping[str, Iterable[str]]) -> tuple[str, ...]:
    """A role's statements as Bastion grants: `{"agents": ["execute"]}` → `agents:execute`."""
    grants: dict[str, None] = {}
    for resource, actions in statements.items():
        if not resource or ":" in resource:
            logger.warning("statement resource %r cannot be a grant; skipped", resource)
            continue
        for action in actions:
            if isinstance(action, str) and action:
                grants[f"{resource}:{action}"] = None
    return tuple(grants)


def _membership(user: Any) -> Membership | None:
    found = user.get("membership") if isinstance(user, dict) else None
    return found if isinstance(found, Membership) else None


class OrganizationRBAC:
    """RBAC from organization roles (see the module's text).

    `identity`: the Identity with the `organization()` plugin (its database holds the
    stored roles). `grants`: extra Bastion grants per role name. `outside_organization`:
    the grants of a signed-in caller without an active membership.
    """

    def __init__(
        self,
        identity: Identity,
        *,
        grants: Mapping[str, Sequence[str]] | None = None,
        outside_organization: Sequence[str] = (),
    ) -> None:
        runtime = organization_runtime(identity)
        if runtime is None:
            raise ValueError("OrganizationRBAC needs an Identity with the organization() plugin")
        self._runtime: Runtime = runtime
        self._db = identity.db
        self._extra = {name: tuple(found) for name, found in (grants or {}).items()}
        for name, found in self._extra.items():
            if not all(isinstance(g, str) and g for g in found):
                raise ValueError(f"grants[{name!r}]: a list of permission strings")
        self._outside = tuple(outside_organization)
        self._dynamic = runtime.options.dynamic_roles_enabled and runtime.options.ac is not None
        # Static roles: grants per role name, once.
        self._static = {
            name: self._role_grants(name, role) for name, role in runtime.static_roles.items()
        }
        # (organization or None, role names) -> grants; per organization only with stored
        # roles, whose Role objects are kept to tell a reloaded role from the one seen.
        self._memo: dict[tuple[str | None, tuple[str, ...]], tuple[Any, tuple[str, ...]]] = {}

    @property
    def role_grants(self) -> Mapping[str, tuple[str, ...]]:
        """Each static role's grants (statements and `grants=`), by name."""
        return dict(self._static)

    def _role_grants(self, name: str, role: Role | None) -> tuple[str, ...]:
        found = statement_grants(role.statements) if role is not None else ()
        return tuple(dict.fromkeys((*found, *self._extra.get(name, ()))))

    async def get_roles(self, user: Any) -> tuple[str, ...]:
        membership = _membership(user)
        return membership.roles if membership is not None else ()

    async def get_permissions(self, user: Any) -> tuple[str, ...]:
        membership = _membership(user)
        if membership is None:
            return self._outside
        key: tuple[str | None, tuple[str, ...]]
        if not self._dynamic:
            key = (None, membership.roles)
            known = self._memo.get(key)
            if known is None:
                grants = self._union(membership.roles, self._static)
                self._remember(key, None, grants)
                return grants
            return known[1]
        roles = await self._organization_roles(membership.organization_id)
        key = (membership.organization_id, membership.roles)
        known = self._memo.get(key)
        if known is not None and known[0] is roles:
            return known[1]
        table = {name: self._role_grants(name, roles.get(name)) for name in membership.roles}
        grants = self._union(membership.roles, table)
        self._remember(key, roles, grants)
        return grants

    async def _organization_roles(self, organization_id: str) -> Mapping[str, Role]:
        cache = self._runtime.memberships
        roles = cache.roles(organization_id)
        if roles is cache.MISSING:
            version = cache.version()
            roles = await organization_roles(self._db, self._runtime, organization_id)
            cache.put_roles(organization_id, roles, version)
        return roles  # type: ignore[no-any-return]

    def _union(self, names: Iterable[str], table: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
        grants: dict[str, None] = {}
        for name in names:
            # A role known to neither the statements nor `grants=` grants nothing.
            grants.update(dict.fromkeys(table.get(name) or self._extra.get(name, ())))
        return tuple(grants)

    def _remember(
        self, key: tuple[str | None, tuple[str, ...]], roles: Any, grants: tuple[str, ...]
    ) -> None:
        if len(self._memo) >= _MEMO_KEPT:
            self._memo.clear()  # bounded: organizations and role sets come and go
        self._memo[key] = (roles, grants)
