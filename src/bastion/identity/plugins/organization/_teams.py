"""Organization team endpoints (better-auth 1.7.25). Being built: see /work/helpers/org-plan.md."""

from __future__ import annotations

import json
from typing import Any

from ...crypto import sha256_base64url
from ...db import Row, eq
from ...endpoint import Ctx, Endpoint
from ._common import Runtime

__all__ = ["add_team_member_row", "endpoints", "membership_key"]


def membership_key(team_id: str, user_id: str) -> str:
    """better-auth's teamMember.membershipKey: one row per (team, user), enforced by a
    unique column rather than a two-column index."""
    return sha256_base64url(
        json.dumps([team_id, user_id], separators=(",", ":"), ensure_ascii=False)
    )


async def add_team_member_row(ctx: Ctx[Any], team_id: str, user_id: str) -> Row:
    """The (team, user) row, made if it is not there (findOrCreateTeamMember)."""
    db = ctx.context.store.db
    key = membership_key(team_id, user_id)
    found = await db.find_one("teamMember", eq("membershipKey", key))
    if found is not None:
        return found
    return await db.create(
        "teamMember",
        {
            "teamId": team_id,
            "userId": user_id,
            "membershipKey": key,
            "createdAt": ctx.context.now(),
        },
    )


def endpoints(rt: Runtime) -> list[Endpoint]:
    return []
