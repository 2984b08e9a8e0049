"""Members: add-member (server only), remove-member, update-member-role, list-members,
get-active-member, get-active-member-role and leave — better-auth 1.7.25's `crud-members`
routes, checked in its order with its status codes (the table is in docs/organizations.md's
source notes: /work/helpers/errata-members.md).

One deliberate difference: a member id of another organization answers as an unknown id
(400 MEMBER_NOT_FOUND) at once. better-auth looks the id up in every organization and
refuses it later, with answers that tell the id exists (403 on update-member-role; on
remove-member, 400 "only owner" when it is another organization's owner).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field as PydanticField
from pydantic import field_validator
from pydantic_core import PydanticCustomError

from ...._callbacks import call_user
from ...db import Row, Where, eq, in_
from ...endpoint import Ctx, Endpoint
from ...errors import APIError, Code
from ...sessions import resolve_session, session_required
from ...validation import Body
from ._common import (
    CoercedString,
    Runtime,
    absent,
    find_member,
    forget_membership,
    has_permission,
    member_out,
    member_with_user,
    organization_or_refuse,
    parse_role_list,
    parse_roles,
    run_hook,
    set_active,
    user_summary,
)
from ._defaults import DEFAULT_ROLES
from ._errors import OrganizationCode as OC
from ._member_list import ListMembersQuery, listing_of
from ._team_members import (
    add_team_member_row,
    add_team_member_with_limit,
    members_per_team_limit,
    remove_from_organization_teams,
)

__all__ = ["endpoints"]


def _role_value(value: Any) -> Any:
    """zod's `z.union([z.string(), z.array(z.string())])`: anything else, or nothing, is
    a bare "Invalid input"."""
    if isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return value
    raise PydanticCustomError("union", "Invalid input")


class AddMemberBody(Body):
    # Named as sent: a default's validation error names the field, not its alias.
    userId: CoercedString = PydanticField(default_factory=absent, validate_default=True)
    role: Any = PydanticField(None, validate_default=True)
    organization_id: str | None = PydanticField(None, alias="organizationId")
    team_id: str | None = PydanticField(None, alias="teamId")

    _role = field_validator("role")(_role_value)


class RemoveMemberBody(Body):
    member_id_or_email: str = PydanticField(alias="memberIdOrEmail")
    organization_id: str | None = PydanticField(None, alias="organizationId")


class UpdateMemberRoleBody(Body):
    role: Any = PydanticField(None, validate_default=True)
    member_id: str = PydanticField(alias="memberId")
    organization_id: str | None = PydanticField(None, alias="organizationId")

    _role = field_validator("role")(_role_value)


class LeaveBody(Body):
    organization_id: str = PydanticField(alias="organizationId")


class ActiveMemberRoleQuery(Body):
    user_id: str | None = PydanticField(None, alias="userId")
    organization_id: str | None = PydanticField(None, alias="organizationId")
    organization_slug: str | None = PydanticField(None, alias="organizationSlug")


def endpoints(rt: Runtime) -> list[Endpoint]:
    options = rt.options
    creator = rt.creator_role

    def holds_creator_role(member: Mapping[str, Any]) -> bool:
        return creator in parse_role_list(member["role"])

    async def creator_count(ctx: Ctx[Any], organization_id: str) -> int:
        rows = await ctx.context.store.db.find_many(
            "member", eq("organizationId", organization_id), select=["role"]
        )
        return sum(1 for row in rows if holds_creator_role(row))

    async def member_in(ctx: Ctx[Any], organization_id: str, member_id: str) -> Row | None:
        """A member of this organization by id; another organization's is not found."""
        found = await ctx.context.store.db.find_one("member", eq("id", member_id))
        if found is None or found["organizationId"] != organization_id:
            return None
        return found

    async def delete_member(ctx: Ctx[Any], member: Row) -> None:
        """The member row, and (teams on) its places in the organization's teams, whose
        seats are given back, as better-auth's deleteMember does in one transaction."""
        organization_id, user_id = member["organizationId"], member["userId"]
        async with ctx.context.store.atomic() as store:
            await store.db.delete("member", eq("id", member["id"]))
            if options.teams.enabled:
                await remove_from_organization_teams(store.db, organization_id, user_id)
        forget_membership(rt, organization_id, user_id)

    async def clear_active_if(ctx: Ctx[Any], organization_id: str) -> None:
        """The caller's own session stops pointing at an organization it left. Only the
        row, as better-auth: no Set-Cookie, so a cookie cache names the organization until
        it is refreshed — harmless, as every organization endpoint re-reads the member."""
        session, _ = ctx.session or ({}, {})
        if session.get("activeOrganizationId") == organization_id:
            await set_active(ctx, organization_id=None, cookie=False)

    async def user_or_refuse(ctx: Ctx[Any], user_id: str) -> Row:
        user = await ctx.context.store.find_user_by_id(user_id)
        if user is None:
            raise APIError(400, None, "User not found")  # no code, as better-auth sends it
        return user

    async def organization_of_query(ctx: Ctx[Any], query: Any) -> str:
        """organizationSlug, else organizationId, else the active organization."""
        session, _ = ctx.session  # type: ignore[misc]
        organization_id = query.organization_id or session.get("activeOrganizationId")
        if query.organization_slug:
            organization = await organization_or_refuse(ctx, slug=query.organization_slug)
            organization_id = organization["id"]
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        return str(organization_id)

    # -- add-member (server only) ------------------------------------------------------------

    async def add_to_team(
        ctx: Ctx[Any], found: Any, team_id: str, user_id: str, organization_id: str
    ) -> None:
        if options.teams.maximum_members_per_team is None:
            await add_team_member_row(ctx, team_id, user_id)
            return
        if callable(options.teams.maximum_members_per_team) and found is None:
            raise APIError(401)  # the limit function is given the caller's session
        session, user = found or ({}, {})
        maximum = await members_per_team_limit(
            rt,
            team_id=team_id,
            organization_id=organization_id,
            session={"session": session, "user": user},
        )
        if maximum is None:
            await add_team_member_row(ctx, team_id, user_id)
        elif await add_team_member_with_limit(ctx, team_id, user_id, maximum) is None:
            raise APIError(403, OC.TEAM_MEMBER_LIMIT_REACHED)

    async def add_member(ctx: Ctx[AddMemberBody]) -> dict[str, Any]:
        body = ctx.body
        found = await resolve_session(ctx)  # optional: a server call may pass headers
        session = found[0] if found else {}
        organization_id = body.organization_id or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        team_id = body.team_id
        if team_id and not options.teams.enabled:
            raise APIError(400, None, "Teams are not enabled")
        user = await ctx.context.store.find_user_by_id(body.userId)
        if user is None:
            raise APIError(400, Code.USER_NOT_FOUND)
        if await find_member(ctx, organization_id, user["id"]) is not None:
            raise APIError(400, OC.USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION)
        db = ctx.context.store.db
        if team_id:
            team = await db.find_one(
                "team", eq("id", team_id) & eq("organizationId", organization_id)
            )
            if team is None:
                raise APIError(400, OC.TEAM_NOT_FOUND)
        count = await db.count("member", eq("organizationId", organization_id))
        organization = await organization_or_refuse(ctx, organization_id=organization_id)
        limit = options.membership_limit or 100
        if callable(limit):
            limit = await call_user(limit, user, organization)
        if count >= limit:
            raise APIError(403, OC.ORGANIZATION_MEMBERSHIP_LIMIT_REACHED)

        role = parse_roles(body.role)
        values: dict[str, Any] = {
            "organizationId": organization_id,
            "userId": user["id"],
            "role": role,
        }
        changed = await run_hook(
            rt,
            "before_add_member",
            {"member": dict(values), "user": user, "organization": organization},
        )
        if changed:
            values = {**values, **changed}
        member = await db.create("member", {**values, "createdAt": ctx.context.now()})
        forget_membership(rt, organization_id, user["id"])
        if team_id:
            try:
                await add_to_team(ctx, found, team_id, user["id"], organization_id)
            except BaseException:
                await delete_member(ctx, member)  # no member without the team it was for
                raise
        await run_hook(
            rt, "after_add_member", {"member": member, "user": user, "organization": organization}
        )
        return member_out(ctx, member)

    # -- remove-member ------------------------------------------------------------------------

    async def remove_member(ctx: Ctx[RemoveMemberBody]) -> dict[str, Any]:
        body = ctx.body
        session, user = ctx.session  # type: ignore[misc]
        organization_id = body.organization_id or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        caller = await find_member(ctx, organization_id, user["id"])
        if caller is None:
            raise APIError(400, OC.MEMBER_NOT_FOUND)
        target: Row | None
        wanted = body.member_id_or_email
        if "@" in wanted:
            owner = await ctx.context.store.find_user_by_email(wanted.lower())
            target = None if owner is None else await find_member(ctx, organization_id, owner["id"])
        else:
            target = await member_in(ctx, organization_id, wanted)
        if target is None:
            raise APIError(400, OC.MEMBER_NOT_FOUND)
        if holds_creator_role(target) and (
            not holds_creator_role(caller) or await creator_count(ctx, organization_id) <= 1
        ):
            raise APIError(400, OC.YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER)
        if not await has_permission(
            ctx,
            rt,
            role=caller["role"],
            permissions={"member": ["delete"]},
            organization_id=organization_id,
        ):
            raise APIError(401, OC.YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_MEMBER)
        organization = await organization_or_refuse(ctx, organization_id=organization_id)
        removed_user = await user_or_refuse(ctx, target["userId"])
        hook_data = {"member": target, "user": removed_user, "organization": organization}
        await run_hook(rt, "before_remove_member", hook_data)
        await delete_member(ctx, target)
        if target["userId"] == user["id"]:
            await clear_active_if(ctx, organization_id)
        await run_hook(rt, "after_remove_member", hook_data)
        return {"member": member_out(ctx, target)}

    # -- update-member-role -------------------------------------------------------------------

    async def unknown_roles(ctx: Ctx[Any], organization_id: str, roles: list[str]) -> list[str]:
        # The default roles stay valid even where `roles` replaces them for permissions.
        known = {*DEFAULT_ROLES, *(options.roles or {})}
        unknown = [role for role in roles if role not in known]
        if unknown and options.dynamic_roles_enabled:
            stored = await ctx.context.store.db.find_many(
                "organizationRole",
                eq("organizationId", organization_id) & in_("role", unknown),
                select=["role"],
            )
            names = {row["role"] for row in stored}
            unknown = [role for role in unknown if role not in names]
        return unknown

    async def update_member_role(ctx: Ctx[UpdateMemberRoleBody]) -> dict[str, Any]:
        body = ctx.body
        session, user = ctx.session  # type: ignore[misc]
        if body.role == "":  # JavaScript's falsy role: an empty 400 before anything else
            raise APIError(400)
        organization_id = body.organization_id or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        roles = parse_role_list(body.role)
        if not roles:
            raise APIError(400)
        caller = await find_member(ctx, organization_id, user["id"])
        if caller is None:
            raise APIError(400, OC.MEMBER_NOT_FOUND)
        if caller["id"] == body.member_id:
            target: Row | None = caller
        else:
            target = await member_in(ctx, organization_id, body.member_id)
        if target is None:
            raise APIError(400, OC.MEMBER_NOT_FOUND)
        caller_is_creator = holds_creator_role(caller)
        if not caller_is_creator and (holds_creator_role(target) or creator in roles):
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_MEMBER)
        if (
            caller_is_creator
            and target["id"] == caller["id"]
            and creator not in roles
            and await creator_count(ctx, organization_id) <= 1
        ):
            raise APIError(400, OC.YOU_CANNOT_LEAVE_THE_ORGANIZATION_WITHOUT_AN_OWNER)
        if not await has_permission(
            ctx,
            rt,
            role=caller["role"],
            permissions={"member": ["update"]},
            organization_id=organization_id,
            allow_creator_all=True,
        ):
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_MEMBER)
        unknown = await unknown_roles(ctx, organization_id, roles)
        if unknown:
            code = OC.ROLE_NOT_FOUND
            raise APIError(400, code, f"{code.code}: {', '.join(unknown)}")
        organization = await organization_or_refuse(ctx, organization_id=organization_id)
        updated_user = await user_or_refuse(ctx, target["userId"])
        new_role = parse_roles(roles)
        changed = await run_hook(
            rt,
            "before_update_member_role",
            {
                "member": target,
                "newRole": new_role,
                "user": updated_user,
                "organization": organization,
            },
        )
        if changed and changed.get("role"):
            new_role = changed["role"]
        updated = await ctx.context.store.db.update(
            "member", eq("id", target["id"]), {"role": new_role}
        )
        if updated is None:  # removed meanwhile
            raise APIError(400, OC.MEMBER_NOT_FOUND)
        forget_membership(rt, organization_id, target["userId"])
        await run_hook(
            rt,
            "after_update_member_role",
            {
                "member": updated,
                "previousRole": target["role"],
                "user": updated_user,
                "organization": organization,
            },
        )
        return member_out(ctx, updated)

    # -- reads --------------------------------------------------------------------------------

    async def get_active_member(ctx: Ctx[Any]) -> dict[str, Any]:
        session, user = ctx.session  # type: ignore[misc]
        organization_id = session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        member = await find_member(ctx, organization_id, user["id"])
        out = None if member is None else await member_with_user(ctx, member)
        if out is None:
            raise APIError(400, OC.MEMBER_NOT_FOUND)
        return out

    async def get_active_member_role(ctx: Ctx[Any]) -> dict[str, Any]:
        query = ActiveMemberRoleQuery.model_validate(ctx.query)
        _, user = ctx.session  # type: ignore[misc]
        organization_id = await organization_of_query(ctx, query)
        caller = await find_member(ctx, organization_id, user["id"])
        if caller is None:
            raise APIError(403, OC.YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION)
        if not query.user_id:
            return {"role": caller["role"]}
        other = await find_member(ctx, organization_id, query.user_id)
        if other is None:
            raise APIError(403, OC.YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION)
        return {"role": other["role"]}

    async def list_members(ctx: Ctx[Any]) -> dict[str, Any]:
        query = ListMembersQuery.model_validate(ctx.query)
        _, user = ctx.session  # type: ignore[misc]
        organization_id = await organization_of_query(ctx, query)
        if await find_member(ctx, organization_id, user["id"]) is None:
            raise APIError(403, OC.YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION)
        limit = options.membership_limit
        default_limit = limit if isinstance(limit, int) and limit > 0 else 100
        listing = listing_of(ctx.context.store.db.schema, query, default_limit)
        if listing.nothing:
            return {"members": [], "total": 0}
        db = ctx.context.store.db
        mine = eq("organizationId", organization_id)
        where: Where = mine if listing.filter is None else mine & listing.filter
        rows = await db.find_many(
            "member", where, order_by=listing.order_by, limit=listing.limit, offset=listing.offset
        )
        total = await db.count("member", where)
        users: dict[str, Row] = {}
        if rows:
            found = await db.find_many(
                "user", in_("id", list({row["userId"] for row in rows})), limit=len(rows)
            )
            users = {u["id"]: u for u in found}
        members = [
            {**member_out(ctx, row), "user": user_summary(users[row["userId"]])}
            for row in rows
            if row["userId"] in users  # a member whose user is gone is not listed
        ]
        return {"members": members, "total": total}

    # -- leave --------------------------------------------------------------------------------

    async def leave(ctx: Ctx[LeaveBody]) -> dict[str, Any]:
        organization_id = ctx.body.organization_id
        _, user = ctx.session  # type: ignore[misc]
        member = await find_member(ctx, organization_id, user["id"])
        out = None if member is None else await member_with_user(ctx, member)
        if member is None or out is None:
            raise APIError(400, OC.MEMBER_NOT_FOUND)
        if holds_creator_role(member) and await creator_count(ctx, organization_id) <= 1:
            raise APIError(400, OC.YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER)
        await delete_member(ctx, member)  # better-auth runs no remove-member hooks here
        await clear_active_if(ctx, organization_id)
        return out

    guard = [session_required]
    tags = ("organization",)
    return [
        Endpoint(
            "/organization/add-member",
            ("POST",),
            add_member,
            "add_member",
            body=AddMemberBody,
            server_only=True,  # better-auth gives it no URL
            tags=tags,
        ),
        Endpoint(
            "/organization/remove-member",
            ("POST",),
            remove_member,
            "remove_member",
            body=RemoveMemberBody,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/update-member-role",
            ("POST",),
            update_member_role,
            "update_member_role",
            body=UpdateMemberRoleBody,
            use=guard,
            tags=tags,
            operation_id="updateOrganizationMemberRole",
        ),
        Endpoint(
            "/organization/get-active-member",
            ("GET",),
            get_active_member,
            "get_active_member",
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/get-active-member-role",
            ("GET",),
            get_active_member_role,
            "get_active_member_role",
            query=ActiveMemberRoleQuery,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/list-members",
            ("GET",),
            list_members,
            "list_members",
            query=ListMembersQuery,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/leave",
            ("POST",),
            leave,
            "leave_organization",
            body=LeaveBody,
            use=guard,
            tags=tags,
        ),
    ]
