"""Team membership rows and team seats, as better-auth 1.7.25's organization adapter keeps them.

Every path that puts a user in a team (add-team-member, add-member with `teamId`, accepting an
invitation to teams, the default team of a new organization) or takes one out (remove-team-
member, remove-member, leave) goes through here, so the two stored invariants hold whoever
wrote the rows, this server or a TypeScript one sharing the database:

* `teamMember.membershipKey` = base64url(SHA-256(JSON `[teamId, userId]`)), a unique column:
  a pair is stored once, even when two requests add it at the same moment;
* `team.memberCount` counts the team's rows: with `maximum_members_per_team` a seat is taken by
  one conditional UPDATE (`memberCount < maximum`) before the row is written, so concurrent
  adds cannot overfill a team.
"""

from __future__ import annotations

import json
from typing import Any

from ...._callbacks import call_user
from ...crypto import sha256_base64url
from ...db import Database, Row, Transaction, UniqueViolation, eq, gte, in_, lt
from ...endpoint import Ctx
from ._common import Runtime

__all__ = [
    "add_team_member_row",
    "add_team_member_with_limit",
    "find_team_member",
    "members_per_team_limit",
    "membership_key",
    "remove_from_organization_teams",
    "remove_team_member_rows",
]

Db = Database | Transaction


def membership_key(team_id: str, user_id: str) -> str:
    """better-auth's teamMember.membershipKey: one row per (team, user), enforced by a
    unique column rather than a two-column index."""
    return sha256_base64url(
        json.dumps([team_id, user_id], separators=(",", ":"), ensure_ascii=False)
    )


async def find_team_member(db: Db, team_id: str, user_id: str) -> Row | None:
    """The (team, user) row: by its key, else by the pair (rows written before the key
    existed have none)."""
    found = await db.find_one("teamMember", eq("membershipKey", membership_key(team_id, user_id)))
    if found is not None:
        return found
    return await db.find_one("teamMember", eq("teamId", team_id) & eq("userId", user_id))


async def members_per_team_limit(
    rt: Runtime,
    *,
    team_id: str,
    organization_id: str,
    session: Any,
) -> int | None:
    """`maximum_members_per_team` for this team: None is no limit (better-auth's undefined).
    A callable gets `{"team_id", "session", "organization_id"}`; `session` is the
    `{"session", "user"}` of the caller."""
    limit = rt.options.teams.maximum_members_per_team
    if callable(limit):
        limit = await call_user(
            limit, {"team_id": team_id, "session": session, "organization_id": organization_id}
        )
    return None if limit is None else int(limit)


async def add_team_member_row(
    ctx: Ctx[Any], team_id: str, user_id: str, *, db: Db | None = None
) -> Row:
    """The (team, user) row, made if it is not there (findOrCreateTeamMember: no limit)."""
    row = await _add(ctx, db or ctx.context.store.db, team_id, user_id, None)
    assert row is not None  # only a limit refuses
    return row


async def add_team_member_with_limit(
    ctx: Ctx[Any], team_id: str, user_id: str, maximum: int, *, db: Db | None = None
) -> Row | None:
    """The (team, user) row, made if it is not there and the team has a seat under
    `maximum`; None when it is full (TEAM_MEMBER_LIMIT_REACHED). A user already in the
    team gets the row back even when the team is full, as better-auth answers."""
    return await _add(ctx, db or ctx.context.store.db, team_id, user_id, maximum)


async def _add(
    ctx: Ctx[Any], db: Db, team_id: str, user_id: str, maximum: int | None
) -> Row | None:
    found = await find_team_member(db, team_id, user_id)
    if found is not None:
        return found
    key = membership_key(team_id, user_id)
    try:
        async with db.transaction() as tx:
            await _sync_member_count(tx, team_id)
            if maximum is not None:
                seat = await tx.increment(
                    "team", eq("id", team_id) & lt("memberCount", maximum), {"memberCount": 1}
                )
                if seat is None:
                    return None
            row = await tx.create(
                "teamMember",
                {
                    "teamId": team_id,
                    "userId": user_id,
                    "membershipKey": key,
                    "createdAt": ctx.context.now(),
                },
            )
            if maximum is None:
                await tx.increment("team", eq("id", team_id), {"memberCount": 1})
            return row
    except UniqueViolation:
        # Added meanwhile by another request: its transaction (and the seat this one
        # took) was rolled back; answer the row that won.
        found = await find_team_member(db, team_id, user_id)
        if found is None:
            raise
        return found


async def _sync_member_count(db: Db, team_id: str) -> None:
    """Raise `memberCount` to the rows' count where it lags behind (rows written by a
    version that kept no count), as better-auth does before it counts a seat."""
    rows = await db.count("teamMember", eq("teamId", team_id))
    if rows:
        await db.increment(
            "team", eq("id", team_id) & lt("memberCount", rows), {}, set={"memberCount": rows}
        )


async def remove_team_member_rows(db: Db, team_id: str, user_id: str) -> int:
    """Take a user out of a team, releasing its seat; how many rows went."""
    async with db.transaction() as tx:
        gone = await tx.delete_many("teamMember", eq("teamId", team_id) & eq("userId", user_id))
        await _release_seats(tx, team_id, gone)
    return gone


async def remove_from_organization_teams(db: Db, organization_id: str, user_id: str) -> None:
    """Take a user out of every team of an organization (a member removed or leaving),
    releasing the seats, as better-auth's deleteMember does."""
    async with db.transaction() as tx:
        teams = await tx.find_many("team", eq("organizationId", organization_id), select=["id"])
        if not teams:
            return
        rows = await tx.find_many(
            "teamMember",
            in_("teamId", [t["id"] for t in teams]) & eq("userId", user_id),
            select=["teamId"],
        )
        for team_id in dict.fromkeys(r["teamId"] for r in rows):
            gone = await tx.delete_many("teamMember", eq("teamId", team_id) & eq("userId", user_id))
            await _release_seats(tx, team_id, gone)


async def _release_seats(db: Db, team_id: str, count: int) -> None:
    if count > 0:
        await db.increment(
            "team", eq("id", team_id) & gte("memberCount", count), {"memberCount": -count}
        )
