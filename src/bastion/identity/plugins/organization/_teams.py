"""Teams: create-team, update-team, remove-team, list-teams, list-user-teams, list-team-members,
add-team-member, remove-team-member and set-active-team (better-auth 1.7.25's `crud-team`
routes; served only with `teams={"enabled": True}`).

The refusals, their order and codes are 1.7.25's, quirks included (the table is in
/work/helpers/errata-teams.md). One deliberate difference: list-team-members answers
TEAM_NOT_FOUND for a team of an organization the caller is not in, as for an id that does
not exist, where 1.7.25 tells the two apart.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field as PydanticField

from ...._callbacks import call_user
from ...db import Row, Where, and_, eq, in_
from ...endpoint import Ctx, Endpoint
from ...errors import APIError
from ...sessions import session_required
from ...validation import Body
from ._common import (
    CoercedString,
    LooseName,
    Name,
    Runtime,
    absent,
    find_member,
    has_permission,
    optional_session,
    organization_or_refuse,
    run_hook,
    set_active,
    team_out,
)
from ._errors import OrganizationCode as OC
from ._team_members import (
    add_team_member_row,
    add_team_member_with_limit,
    find_team_member,
    members_per_team_limit,
    membership_key,
    remove_team_member_rows,
)

__all__ = ["add_team_member_row", "endpoints", "membership_key"]


class CreateTeamBody(Body):
    name: LooseName  # no minimum: 1.7.25's create-team takes "" (update-team does not)
    organization_id: str | None = PydanticField(None, alias="organizationId")


class UpdateTeamData(Body):
    name: Name | None = None
    organization_id: str | None = PydanticField(None, alias="organizationId")


class UpdateTeamBody(Body):
    team_id: str = PydanticField(alias="teamId")
    data: UpdateTeamData


class RemoveTeamBody(Body):
    team_id: str = PydanticField(alias="teamId")
    organization_id: str | None = PydanticField(None, alias="organizationId")


class TeamMemberBody(Body):
    team_id: str = PydanticField(alias="teamId")
    # Named as on the wire: a default's validation error is placed by the field's name.
    userId: CoercedString = PydanticField(default_factory=absent, validate_default=True)
    organization_id: str | None = PydanticField(None, alias="organizationId")


class SetActiveTeamBody(Body):
    team_id: str | None = PydanticField(None, alias="teamId")


class OrganizationQuery(Body):
    organization_id: str | None = PydanticField(None, alias="organizationId")


class UserTeamsQuery(Body):
    user_id: str | None = PydanticField(None, alias="userId")
    organization_id: str | None = PydanticField(None, alias="organizationId")


class TeamQuery(Body):
    team_id: str | None = PydanticField(None, alias="teamId")


def endpoints(rt: Runtime) -> list[Endpoint]:
    teams = rt.options.teams

    async def find_team(ctx: Ctx[Any], team_id: str, organization_id: str | None) -> Row | None:
        """The team, only within `organization_id` when given: another organization's
        team is not found, as an unknown id."""
        where: Where = eq("id", team_id)
        if organization_id is not None:
            where = and_(eq("id", team_id), eq("organizationId", organization_id))
        return await ctx.context.store.db.find_one("team", where)

    async def allowed(
        ctx: Ctx[Any], member: Row, organization_id: str, permissions: dict[str, list[str]]
    ) -> bool:
        return await has_permission(
            ctx, rt, role=member["role"], permissions=permissions, organization_id=organization_id
        )

    def signed_out_call(ctx: Ctx[Any]) -> bool:
        """A request (HTTP, or in-process with headers) without a session: 401. An
        in-process call without headers is the server acting, unchecked, as better-auth
        lets `auth.api` do."""
        return ctx.request is not None or bool(ctx.headers)

    # -- create, update, remove --------------------------------------------------------------

    async def create_team(ctx: Ctx[CreateTeamBody]) -> Any:
        found = await optional_session(ctx)
        organization_id = ctx.body.organization_id or (
            found[0].get("activeOrganizationId") if found else None
        )
        if found is None and signed_out_call(ctx):
            raise APIError(401)
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        if found is not None:
            member = await find_member(ctx, organization_id, found[1]["id"])
            if member is None:  # sic: 1.7.25's code for this refusal
                raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_INVITE_USERS_TO_THIS_ORGANIZATION)
            if not await allowed(ctx, member, organization_id, {"team": ["create"]}):
                raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_CREATE_TEAMS_IN_THIS_ORGANIZATION)
        db = ctx.context.store.db
        maximum = teams.maximum_teams
        if callable(maximum):
            session = {"session": found[0], "user": found[1]} if found else None
            maximum = await call_user(
                maximum, {"organization_id": organization_id, "session": session}, ctx
            )
        # better-auth tests the limit for truth: 0 is no limit.
        if maximum and await db.count("team", eq("organizationId", organization_id)) >= maximum:
            raise APIError(400, OC.YOU_HAVE_REACHED_THE_MAXIMUM_NUMBER_OF_TEAMS)
        organization = await organization_or_refuse(ctx, organization_id=organization_id)
        now = ctx.context.now()
        data: dict[str, Any] = {
            "name": ctx.body.name,
            "organizationId": organization_id,
            "createdAt": now,
            "updatedAt": now,
        }
        user = found[1] if found else None
        changed = await run_hook(
            rt,
            "before_create_team",
            {
                "team": {"name": ctx.body.name, "organizationId": organization_id},
                "user": user,
                "organization": organization,
            },
        )
        if changed:
            data = {**data, **changed}
        team = team_out(ctx, await db.create("team", {**data, "memberCount": 0}))
        await run_hook(
            rt, "after_create_team", {"team": team, "user": user, "organization": organization}
        )
        return team

    async def update_team(ctx: Ctx[UpdateTeamBody]) -> Any:
        session, user = ctx.session  # type: ignore[misc]
        changes = ctx.body.data
        # `data.organizationId` only says where to look: a team never moves.
        organization_id = changes.organization_id or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        member = await find_member(ctx, organization_id, user["id"])
        if member is None or not await allowed(ctx, member, organization_id, {"team": ["update"]}):
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_TEAM)
        team = await find_team(ctx, ctx.body.team_id, organization_id)
        if team is None:
            raise APIError(400, OC.TEAM_NOT_FOUND)
        organization = await organization_or_refuse(ctx, organization_id=organization_id)
        updates: dict[str, Any] = {}
        if changes.name is not None:
            updates["name"] = changes.name
        changed = await run_hook(
            rt,
            "before_update_team",
            {
                "team": team_out(ctx, team),
                "updates": dict(updates),
                "user": user,
                "organization": organization,
            },
        )
        if changed is not None:
            updates = changed  # better-auth writes the hook's data instead
        updated = await ctx.context.store.db.update("team", eq("id", team["id"]), updates)
        if updated is None:  # removed meanwhile
            raise APIError(400, OC.TEAM_NOT_FOUND)
        await run_hook(
            rt,
            "after_update_team",
            {"team": team_out(ctx, updated), "user": user, "organization": organization},
        )
        return team_out(ctx, updated)

    async def remove_team(ctx: Ctx[RemoveTeamBody]) -> Any:
        found = await optional_session(ctx)
        team_id = ctx.body.team_id
        organization_id = ctx.body.organization_id or (
            found[0].get("activeOrganizationId") if found else None
        )
        # 1.7.25's order: the organization is asked for before the session.
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        if found is None and signed_out_call(ctx):
            raise APIError(401)
        if found is not None:
            session, user = found
            member = await find_member(ctx, organization_id, user["id"])
            if member is None or session.get("activeTeamId") == team_id:
                raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_TEAM)
            if not await allowed(ctx, member, organization_id, {"team": ["delete"]}):
                raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_DELETE_TEAMS_IN_THIS_ORGANIZATION)
        team = await find_team(ctx, team_id, organization_id)
        if team is None:
            raise APIError(400, OC.TEAM_NOT_FOUND)
        db = ctx.context.store.db
        if (
            not teams.allow_removing_all_teams
            and await db.count("team", eq("organizationId", organization_id)) <= 1
        ):
            raise APIError(400, OC.UNABLE_TO_REMOVE_LAST_TEAM)
        organization = await organization_or_refuse(ctx, organization_id=organization_id)
        actor = found[1] if found else None
        hook_data = {"team": team_out(ctx, team), "user": actor, "organization": organization}
        await run_hook(rt, "before_delete_team", hook_data)
        async with ctx.context.store.atomic() as store:
            await store.db.delete_many("teamMember", eq("teamId", team["id"]))
            await store.db.delete("team", eq("id", team["id"]))
            await _forget_team_in_invitations(ctx, store.db, organization_id, team["id"])
        await run_hook(rt, "after_delete_team", hook_data)
        return {"message": "Team removed successfully."}

    # -- lists ---------------------------------------------------------------------------------

    async def list_teams(ctx: Ctx[Any]) -> Any:
        session, user = ctx.session  # type: ignore[misc]
        organization_id = ctx.query.get("organizationId") or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        if await find_member(ctx, organization_id, user["id"]) is None:
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_ACCESS_THIS_ORGANIZATION)
        rows = await ctx.context.store.db.find_many(
            "team", eq("organizationId", organization_id), order_by="createdAt"
        )
        return [team_out(ctx, row) for row in rows]

    async def teams_of(ctx: Ctx[Any], user_id: str) -> list[Row]:
        """The teams a user is in, in the order of its memberships."""
        db = ctx.context.store.db
        ids = [r["teamId"] for r in await db.find_many("teamMember", eq("userId", user_id))]
        if not ids:
            return []
        rows = {row["id"]: row for row in await db.find_many("team", in_("id", ids))}
        return [rows[i] for i in dict.fromkeys(ids) if i in rows]

    async def list_user_teams(ctx: Ctx[Any]) -> Any:
        session, user = ctx.session  # type: ignore[misc]
        target = ctx.query.get("userId") or user["id"]
        explicit = ctx.query.get("organizationId")
        organization_id = explicit or session.get("activeOrganizationId")
        if target != user["id"]:
            if not organization_id:
                raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
            member = await find_member(ctx, organization_id, user["id"])
            if member is None:
                raise APIError(403, OC.YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION)
            if not await allowed(ctx, member, organization_id, {"member": ["update"]}):
                raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_MEMBER)
            if await find_member(ctx, organization_id, target) is None:
                raise APIError(400, OC.USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION)
            found = await teams_of(ctx, target)
            return [team_out(ctx, t) for t in found if t["organizationId"] == organization_id]
        if explicit:
            if await find_member(ctx, explicit, user["id"]) is None:
                raise APIError(403, OC.YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION)
            found = await teams_of(ctx, user["id"])
            return [team_out(ctx, t) for t in found if t["organizationId"] == explicit]
        # Every organization (not only the active one) the caller is still a member of.
        found = await teams_of(ctx, user["id"])
        if not found:
            return []
        organization_ids = {t["organizationId"] for t in found}
        members = await ctx.context.store.db.find_many(
            "member",
            eq("userId", user["id"]) & in_("organizationId", list(organization_ids)),
            select=["organizationId"],
        )
        mine = {m["organizationId"] for m in members}
        return [team_out(ctx, t) for t in found if t["organizationId"] in mine]

    async def list_team_members(ctx: Ctx[Any]) -> Any:
        session, user = ctx.session  # type: ignore[misc]
        team_id = ctx.query.get("teamId") or session.get("activeTeamId")
        if not team_id:
            raise APIError(400, OC.YOU_DO_NOT_HAVE_AN_ACTIVE_TEAM)
        team = await find_team(ctx, team_id, None)
        # Another organization's team answers as an unknown one (1.7.25 tells them apart).
        if team is None or await find_member(ctx, team["organizationId"], user["id"]) is None:
            raise APIError(400, OC.TEAM_NOT_FOUND)
        db = ctx.context.store.db
        if await find_team_member(db, team_id, user["id"]) is None:
            raise APIError(400, OC.USER_IS_NOT_A_MEMBER_OF_THE_TEAM)
        rows = await db.find_many("teamMember", eq("teamId", team_id), order_by="createdAt")
        return [ctx.context.public_row("teamMember", row) for row in rows]

    # -- team members ----------------------------------------------------------------------------

    async def team_member_checks(
        ctx: Ctx[TeamMemberBody], action: str, refusal: OC
    ) -> tuple[str, Row, Row, dict[str, Any]]:
        """What add- and remove-team-member check alike, in 1.7.25's order: the
        organization, the team and the user being added or removed."""
        session, user = ctx.session  # type: ignore[misc]
        body = ctx.body
        organization_id = body.organization_id or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        member = await find_member(ctx, organization_id, user["id"])
        if member is None:
            raise APIError(400, OC.USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION)
        if not await allowed(ctx, member, organization_id, {"member": [action]}):
            raise APIError(403, refusal)
        if await find_member(ctx, organization_id, body.userId) is None:
            raise APIError(400, OC.USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION)
        team = await find_team(ctx, body.team_id, organization_id)
        if team is None:
            raise APIError(400, OC.TEAM_NOT_FOUND)
        organization = await organization_or_refuse(ctx, organization_id=organization_id)
        target = await ctx.context.store.find_user_by_id(body.userId)
        if target is None:  # a member row whose user is gone
            raise APIError(400, message="User not found")
        return organization_id, team, organization, target

    async def add_team_member(ctx: Ctx[TeamMemberBody]) -> Any:
        organization_id, team, organization, target = await team_member_checks(
            ctx, "update", OC.YOU_ARE_NOT_ALLOWED_TO_CREATE_A_NEW_TEAM_MEMBER
        )
        team_id, user_id = ctx.body.team_id, ctx.body.userId
        hook_data = {"team": team_out(ctx, team), "user": target, "organization": organization}
        # better-auth runs the hook and ignores any data it returns.
        await run_hook(
            rt,
            "before_add_team_member",
            {"teamMember": {"teamId": team_id, "userId": user_id}, **hook_data},
        )
        session, user = ctx.session  # type: ignore[misc]
        maximum = await members_per_team_limit(
            rt,
            team_id=team_id,
            organization_id=organization_id,
            session={"session": session, "user": user},
        )
        if maximum is None:
            row = await add_team_member_row(ctx, team_id, user_id)
        else:
            added = await add_team_member_with_limit(ctx, team_id, user_id, maximum)
            if added is None:
                raise APIError(403, OC.TEAM_MEMBER_LIMIT_REACHED)
            row = added
        out = ctx.context.public_row("teamMember", row)
        await run_hook(rt, "after_add_team_member", {"teamMember": out, **hook_data})
        return out

    async def remove_team_member(ctx: Ctx[TeamMemberBody]) -> Any:
        _, team, organization, target = await team_member_checks(
            ctx, "delete", OC.YOU_ARE_NOT_ALLOWED_TO_REMOVE_A_TEAM_MEMBER
        )
        team_id, user_id = ctx.body.team_id, ctx.body.userId
        db = ctx.context.store.db
        row = await find_team_member(db, team_id, user_id)
        if row is None:
            raise APIError(400, OC.USER_IS_NOT_A_MEMBER_OF_THE_TEAM)
        hook_data = {
            "teamMember": ctx.context.public_row("teamMember", row),
            "team": team_out(ctx, team),
            "user": target,
            "organization": organization,
        }
        await run_hook(rt, "before_remove_team_member", hook_data)
        await remove_team_member_rows(db, team_id, user_id)
        await run_hook(rt, "after_remove_team_member", hook_data)
        return {"message": "Team member removed successfully."}

    # -- the active team -------------------------------------------------------------------------

    async def set_active_team(ctx: Ctx[SetActiveTeamBody]) -> Any:
        session, user = ctx.session  # type: ignore[misc]
        active = session.get("activeTeamId")
        if ctx.body.team_id is None and "team_id" in ctx.body.model_fields_set:  # null
            if active:
                await set_active(ctx, team_id=None)
            return None
        # Left out (or ""): the active team is checked again, if there is one.
        team_id = ctx.body.team_id or active
        if not team_id:
            return None
        organization_id = session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        team = await find_team(ctx, team_id, organization_id)
        if team is None:
            raise APIError(400, OC.TEAM_NOT_FOUND)
        if await find_team_member(ctx.context.store.db, team_id, user["id"]) is None:
            raise APIError(403, OC.USER_IS_NOT_A_MEMBER_OF_THE_TEAM)
        await set_active(ctx, team_id=team["id"])
        return team_out(ctx, team)

    guard = [session_required]
    tags = ("organization", "team")
    return [
        Endpoint(
            "/organization/create-team",
            ("POST",),
            create_team,
            "create_team",
            body=CreateTeamBody,
            tags=tags,
        ),
        Endpoint(
            "/organization/update-team",
            ("POST",),
            update_team,
            "update_team",
            body=UpdateTeamBody,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/remove-team",
            ("POST",),
            remove_team,
            "remove_team",
            body=RemoveTeamBody,
            tags=tags,
        ),
        Endpoint(
            "/organization/list-teams",
            ("GET",),
            list_teams,
            "list_organization_teams",
            query=OrganizationQuery,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/list-user-teams",
            ("GET",),
            list_user_teams,
            "list_user_teams",
            query=UserTeamsQuery,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/list-team-members",
            ("GET",),
            list_team_members,
            "list_team_members",
            query=TeamQuery,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/add-team-member",
            ("POST",),
            add_team_member,
            "add_team_member",
            body=TeamMemberBody,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/remove-team-member",
            ("POST",),
            remove_team_member,
            "remove_team_member",
            body=TeamMemberBody,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/set-active-team",
            ("POST",),
            set_active_team,
            "set_active_team",
            body=SetActiveTeamBody,
            use=guard,
            tags=tags,
        ),
    ]


async def _forget_team_in_invitations(
    ctx: Ctx[Any], db: Any, organization_id: str, team_id: str
) -> None:
    """Take a removed team out of the organization's pending, unexpired invitations (their
    `teamId` is a comma-separated list); NULL when none is left."""
    now = ctx.context.now()
    pending = await db.find_many(
        "invitation", eq("organizationId", organization_id) & eq("status", "pending")
    )
    for invitation in pending:
        listed = invitation.get("teamId")
        if not listed or invitation["expiresAt"] <= now:
            continue
        ids = listed.split(",")
        if team_id not in ids:
            continue
        rest = [i for i in ids if i != team_id]
        await db.update(
            "invitation", eq("id", invitation["id"]), {"teamId": ",".join(rest) or None}
        )
