"""The active organization membership of an Identity session, for `IdentityAuth`.

The session (its cookie cache included) carries `activeOrganizationId` and `activeTeamId`;
the member's role is in the `member` table. That row is read through the organization
plugin's `Runtime.memberships` cache, so with the cookie cache on a request costs no
database round trip:

- every change the plugin's endpoints make in this process (a member added, removed or
  given another role; a role created, changed or deleted; an organization deleted) drops
  the entries it touches at once (`forget_membership`), so what a removed member could do
  ends with the request that removed it (S17);
- a change made by another process (another server on the same database, a TypeScript
  better-auth server) shows here within the cache's TTL (`Memberships.ttl`, 30 s by
  default; set `plugin.runtime.memberships.ttl` to shorten it, 0 to read every time).

The organization counts only while a member row exists: a session whose
`activeOrganizationId` names an organization the user has left, or that was deleted,
has no membership.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.identity import Identity
from bastion.identity.db import eq
from bastion.identity.plugins.organization import (
    Memberships,
    OrganizationPlugin,
    Runtime,
    parse_role_list,
)

from ..context import Membership

__all__ = ["UNKNOWN", "ActiveMemberships", "organization_runtime"]


def organization_runtime(identity: Identity) -> Runtime | None:
    """The organization plugin's runtime of `identity`, or None without the plugin."""
    for plugin in identity.plugins:
        if isinstance(plugin, OrganizationPlugin):
            return plugin.runtime
    return None


class ActiveMemberships:
    """Resolves a session's active organization to a checked `Membership`."""

    __slots__ = ("_built", "_db", "_memberships")

    def __init__(self, identity: Identity, runtime: Runtime) -> None:
        self._db = identity.db
        self._memberships = runtime.memberships
        # The Membership made from a cached member row, by (row, active team): the same row
        # comes back on every request of a member until the cache drops it, and a Membership
        # is immutable. A row the cache replaced is another object, so it is not matched.
        self._built: dict[tuple[int, str | None], tuple[Any, Membership]] = {}

    def known(self, session: Mapping[str, Any], user: Mapping[str, Any]) -> Any:
        """The session's Membership (None: no active organization, or not a member of it)
        when the member row is in the cache, as on nearly every request: no coroutine.
        `UNKNOWN` when the row must be read (`read`)."""
        ids = _ids(session, user)
        if ids is None:
            return None
        member = self._memberships.member(*ids)
        if member is UNKNOWN:
            return UNKNOWN
        return self._membership(ids, member, session)

    async def read(self, session: Mapping[str, Any], user: Mapping[str, Any]) -> Membership | None:
        """`known`'s answer where it said `UNKNOWN`: the member row read, and cached."""
        ids = _ids(session, user)
        if ids is None:
            return None
        organization_id, user_id = ids
        cache = self._memberships
        # Taken before the read: a change that lands meanwhile keeps this answer out.
        version = cache.version()
        member = await self._db.find_one(
            "member", eq("organizationId", organization_id) & eq("userId", user_id)
        )
        cache.put_member(organization_id, user_id, member, version)
        return self._membership(ids, member, session)

    def _membership(
        self, ids: tuple[str, str], member: Any, session: Mapping[str, Any]
    ) -> Membership | None:
        """The Membership of a member row (None: not a member)."""
        organization_id, user_id = ids
        # Exactly: MySQL's default collation would match ids case-insensitively.
        if member is None or member["organizationId"] != organization_id:
            return None
        if member["userId"] != user_id:
            return None
        team_id = session.get("activeTeamId")
        team = team_id if isinstance(team_id, str) and team_id else None
        key = (id(member), team)
        built = self._built.get(key)
        if built is not None and built[0] is member:
            return built[1]
        membership = Membership(
            organization_id,
            tuple(parse_role_list(member.get("role") or "")),
            team,
            member.get("id"),
        )
        if len(self._built) >= _BUILT_KEPT:
            self._built.clear()
        self._built[key] = (member, membership)  # the row held: its id is not reused meanwhile
        return membership


def _ids(session: Mapping[str, Any], user: Mapping[str, Any]) -> tuple[str, str] | None:
    """(active organization, user) of a session, or None without an active organization."""
    organization_id = session.get("activeOrganizationId")
    user_id = user.get("id")
    if not organization_id or not isinstance(organization_id, str) or not user_id:
        return None
    return organization_id, user_id


# What `known` answers when the member row must be read: the cache's own "not cached".
UNKNOWN = Memberships.MISSING


_BUILT_KEPT = 4096
