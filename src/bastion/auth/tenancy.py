"""Whose memory a request acts for, when users belong to organizations.

`Bastion(memory_scope=...)` chooses the resource id the pipeline puts in
`RequestContext.resource_id`, which every memory route and every run with a `threadId`
uses as the owner (a client's `resourceId` is never taken instead of it):

- `"user"` (the default): the user's own resource id (`map_user_to_resource_id`, by default
  the user's id), whatever organization is active;
- `"organization"`: `org:<organizationId>`, shared by every member of the active
  organization;
- `"user_in_organization"`: `org:<organizationId>:user:<user's resource id>`, the user's
  own threads, apart in each organization.

The organization is the one the provider checked the caller is a member of
(`Membership`), never the session's `activeOrganizationId` alone nor anything the client
sends. With an organization scope and no such membership (no active organization, or no
longer a member) there is no resource id: memory routes answer 403 and nothing is read.

Identity user ids (better-auth's 32 letters and digits) never contain `:`, so a user's
resource id cannot be mistaken for an organization's. A custom `map_user_to_resource_id`
that returns `org:...` values should not be combined with an organization scope.
"""

from __future__ import annotations

from typing import Literal, get_args

from .context import Membership

__all__ = ["MEMORY_SCOPES", "MemoryScope", "check_memory_scope", "scoped_resource_id"]

MemoryScope = Literal["user", "organization", "user_in_organization"]
MEMORY_SCOPES: tuple[str, ...] = get_args(MemoryScope)


def check_memory_scope(value: object) -> MemoryScope:
    if value not in MEMORY_SCOPES:
        raise ValueError(
            f"memory_scope: one of {', '.join(map(repr, MEMORY_SCOPES))}, not {value!r}"
        )
    return value  # type: ignore[return-value]


def scoped_resource_id(
    scope: MemoryScope, user_resource_id: str | None, membership: Membership | None
) -> str | None:
    """The memory owner under `scope` (None: no owner, memory is refused)."""
    if scope == "user":
        return user_resource_id
    if membership is None or not membership.organization_id:
        return None
    if scope == "organization":
        return f"org:{membership.organization_id}"
    if not user_resource_id:
        return None
    return f"org:{membership.organization_id}:user:{user_resource_id}"
