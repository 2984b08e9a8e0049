"""Organizations: create, check-slug, update, delete, get-organization,
get-full-organization, list, set-active, and has-permission (better-auth 1.7.25's
`crud-org` routes and `organization.ts`)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field as PydanticField
from pydantic import model_validator
from pydantic_core import PydanticCustomError

from ...._callbacks import call_user
from ...db import eq, in_
from ...endpoint import Ctx, Endpoint
from ...errors import APIError, ErrorCode
from ...sessions import resolve_session, session_required
from ...validation import Body
from ._common import (
    Logo,
    Metadata,
    Name,
    Runtime,
    create_member,
    find_member,
    find_organization,
    forget_membership,
    has_permission,
    invitation_out,
    member_out,
    organization_or_refuse,
    organization_out,
    parse_role_list,
    run_hook,
    set_active,
    team_out,
    user_summary,
)
from ._errors import OrganizationCode as OC
from ._team_members import add_team_member_row

__all__ = ["endpoints"]


class CreateBody(Body):
    name: Name
    slug: Name
    user_id: Any = PydanticField(None, alias="userId")  # server only; zod coerces it
    logo: Logo | None = None
    metadata: Metadata | None = None
    keep_current_active_organization: bool | None = PydanticField(
        None, alias="keepCurrentActiveOrganization"
    )


class SlugBody(Body):
    slug: str


class UpdateData(Body):
    name: Name | None = None
    slug: Name | None = None
    logo: Logo | None = None
    metadata: Metadata | None = None


class UpdateBody(Body):
    data: UpdateData
    organization_id: str | None = PydanticField(None, alias="organizationId")


class DeleteBody(Body):
    organization_id: str = PydanticField(alias="organizationId")


class OrganizationQuery(Body):
    organization_id: str | None = PydanticField(None, alias="organizationId")
    organization_slug: str | None = PydanticField(None, alias="organizationSlug")


class FullOrganizationQuery(OrganizationQuery):
    # zod: a number, or a string through parseInt
    members_limit: int | str | None = PydanticField(None, alias="membersLimit")


class SetActiveBody(Body):
    organization_id: str | None = PydanticField(None, alias="organizationId")
    organization_slug: str | None = PydanticField(None, alias="organizationSlug")


def _is_statements(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(actions, list) and all(isinstance(a, str) for a in actions)
        for actions in value.values()
    )


class HasPermissionBody(Body):
    organization_id: str | None = PydanticField(None, alias="organizationId")
    permissions: dict[str, list[str]] | None = None
    permission: dict[str, list[str]] | None = None  # deprecated spelling

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, raw: Any) -> Any:
        """zod's xor of `{permission}` and `{permissions}`: the body as a whole is
        refused, in zod's words, unless exactly one of them is a `{resource: [action]}`;
        the other, if sent, is dropped as zod strips it."""
        if not isinstance(raw, dict):
            return raw
        matched = [key for key in ("permissions", "permission") if _is_statements(raw.get(key))]
        if len(matched) == 2:
            raise PydanticCustomError(
                "invalid_input", "Invalid input: more than one option matched"
            )
        if not matched:
            raise PydanticCustomError("invalid_input", "Invalid input")
        dropped = "permission" if matched[0] == "permissions" else "permissions"
        return {key: value for key, value in raw.items() if key != dropped}


_MAX_LIMIT = 2**31 - 1  # what every database takes as a LIMIT


def _parse_int(value: int | str | None) -> int | None:
    """JavaScript's parseInt of a query value: leading digits, else nothing."""
    if value is None or isinstance(value, int):
        return value
    digits = ""
    for char in value.strip():
        if char.isdigit() or (not digits and char in "+-"):
            digits += char
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return None


def endpoints(rt: Runtime) -> list[Endpoint]:
    options = rt.options

    async def member_or_refuse(ctx: Ctx[Any], organization_id: str, user_id: str) -> dict[str, Any]:
        member = await find_member(ctx, organization_id, user_id)
        if member is None:
            raise APIError(400, OC.USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION)
        return member

    async def list_user_organizations(ctx: Ctx[Any], user_id: str) -> list[dict[str, Any]]:
        db = ctx.context.store.db
        ids = [m["organizationId"] for m in await db.find_many("member", eq("userId", user_id))]
        if not ids:
            return []
        rows = {row["id"]: row for row in await db.find_many("organization", in_("id", ids))}
        return [rows[i] for i in ids if i in rows]

    # -- create -----------------------------------------------------------------------------

    async def create(ctx: Ctx[CreateBody]) -> Any:
        body = ctx.body
        found = await resolve_session(ctx)
        if found is None and (ctx.request is not None or ctx.headers):
            raise APIError(401)
        user: dict[str, Any] | None = found[1] if found else None
        if user is None:
            if body.user_id is None:
                raise APIError(401)
            user = await ctx.context.store.find_user_by_id(str(body.user_id))
        if user is None:
            raise APIError(401)
        allowed = options.allow_user_to_create_organization
        if callable(allowed):
            allowed = await call_user(allowed, user)
        system_action = found is None and body.user_id is not None
        if not allowed and not system_action:
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_CREATE_A_NEW_ORGANIZATION)
        limit = options.organization_limit
        if isinstance(limit, int) and not isinstance(limit, bool):
            reached = len(await list_user_organizations(ctx, user["id"])) >= limit
        elif callable(limit):
            reached = bool(await call_user(limit, user))
        else:
            reached = False
        if reached:
            raise APIError(403, OC.YOU_HAVE_REACHED_THE_MAXIMUM_NUMBER_OF_ORGANIZATIONS)
        if await find_organization(ctx, slug=body.slug) is not None:
            raise APIError(400, OC.ORGANIZATION_ALREADY_EXISTS)

        data: dict[str, Any] = {"name": body.name, "slug": body.slug}
        if body.logo is not None:
            data["logo"] = body.logo
        if body.metadata is not None:
            data["metadata"] = body.metadata
        changed = await run_hook(
            rt, "before_create_organization", {"organization": dict(data), "user": user}
        )
        if changed:
            data = {**data, **changed}
        metadata = data.get("metadata")
        row_data = {
            "name": data["name"],
            "slug": data["slug"],
            "logo": data.get("logo"),
            "metadata": json.dumps(metadata, separators=(",", ":")) if metadata else None,
            "createdAt": ctx.context.now(),
        }
        # One unit: an organization without its owner could be taken by no one.
        async with ctx.context.store.atomic() as store:
            try:
                organization = await store.db.create("organization", row_data)
            except Exception as exc:  # a concurrent create took the slug
                if await find_organization(ctx, slug=body.slug) is not None:
                    raise APIError(400, OC.ORGANIZATION_ALREADY_EXISTS) from exc
                raise
            member = await create_member(
                ctx,
                rt,
                {
                    "userId": user["id"],
                    "organizationId": organization["id"],
                    "role": rt.creator_role,
                },
                user=user,
                organization=organization,
                db=store.db,
            )
        team_member = None
        if options.teams.enabled and options.teams.default_team.enabled:
            team_member = await _default_team(ctx, organization, user)
        await run_hook(
            rt,
            "after_create_organization",
            {"organization": organization, "user": user, "member": member},
        )
        if ctx.session is None and found is not None:
            ctx.session = found
        if found is not None and not body.keep_current_active_organization:
            await set_active(
                ctx,
                organization_id=organization["id"],
                **({"team_id": team_member["teamId"]} if team_member else {}),
                cookie=False,
            )
        return {
            **organization_out(ctx, organization, metadata=True),
            "members": [member_out(ctx, member)],
        }

    async def _default_team(
        ctx: Ctx[Any], organization: dict[str, Any], user: dict[str, Any]
    ) -> dict[str, Any]:
        db = ctx.context.store.db
        team_data: dict[str, Any] = {
            "organizationId": organization["id"],
            "name": organization["name"],
            "createdAt": ctx.context.now(),
            "updatedAt": None,  # 1.7.25 leaves a new default team's updatedAt empty
        }
        changed = await run_hook(
            rt,
            "before_create_team",
            {
                "team": {"organizationId": organization["id"], "name": organization["name"]},
                "user": user,
                "organization": organization,
            },
        )
        if changed:
            team_data = {**team_data, **changed}
        custom = options.teams.default_team.custom_create_default_team
        team = await call_user(custom, organization, ctx) if custom else None
        if not team:
            team = await db.create("team", team_data)
        team_member = await add_team_member_row(ctx, team["id"], user["id"])
        await run_hook(
            rt, "after_create_team", {"team": team, "user": user, "organization": organization}
        )
        return team_member

    # -- check-slug, update, delete ----------------------------------------------------------

    async def check_slug(ctx: Ctx[SlugBody]) -> Any:
        if await find_organization(ctx, slug=ctx.body.slug) is None:
            return {"status": True}
        raise APIError(400, OC.ORGANIZATION_SLUG_ALREADY_TAKEN)

    async def update(ctx: Ctx[UpdateBody]) -> Any:
        ctx.session = await resolve_session(ctx, verify_cache=True)
        if ctx.session is None:
            raise APIError(401, None, "User not found")
        session, user = ctx.session
        organization_id = ctx.body.organization_id or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.ORGANIZATION_NOT_FOUND)
        member = await member_or_refuse(ctx, organization_id, user["id"])
        if not await has_permission(
            ctx,
            rt,
            role=member["role"],
            permissions={"organization": ["update"]},
            organization_id=organization_id,
        ):
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_ORGANIZATION)
        given = ctx.raw_body.get("data") or {}
        data = {
            key: getattr(ctx.body.data, key)
            for key in ("name", "slug", "logo", "metadata")
            if key in given
        }
        if isinstance(data.get("slug"), str):
            taken = await find_organization(ctx, slug=data["slug"])
            if taken is not None and taken["id"] != organization_id:
                raise APIError(400, OC.ORGANIZATION_SLUG_ALREADY_TAKEN)
        changed = await run_hook(
            rt,
            "before_update_organization",
            {"organization": dict(data), "user": user, "member": member},
        )
        if changed:
            data = {**data, **changed}
        values = {k: v for k, v in data.items() if k in ("name", "slug", "logo", "metadata")}
        if isinstance(values.get("metadata"), dict):
            values["metadata"] = json.dumps(values["metadata"], separators=(",", ":"))
        db = ctx.context.store.db
        if values:
            try:
                updated = await db.update("organization", eq("id", organization_id), values)
            except Exception as exc:  # a concurrent update took the slug
                if "slug" in values and await find_organization(ctx, slug=values["slug"]):
                    raise APIError(400, OC.ORGANIZATION_SLUG_ALREADY_TAKEN) from exc
                raise
        else:
            updated = await find_organization(ctx, organization_id=organization_id)
        if updated is None:
            return None
        out = organization_out(ctx, updated, metadata=True)
        await run_hook(
            rt, "after_update_organization", {"organization": out, "user": user, "member": member}
        )
        return out

    async def delete(ctx: Ctx[DeleteBody]) -> Any:
        if options.disable_organization_deletion:
            raise APIError(404, _DeletionCode.ORGANIZATION_DELETION_DISABLED)
        ctx.session = await resolve_session(ctx, verify_cache=True)
        if ctx.session is None:
            raise APIError(401)
        session, user = ctx.session
        organization_id = ctx.body.organization_id
        if not organization_id:
            raise APIError(400, OC.ORGANIZATION_NOT_FOUND)
        member = await member_or_refuse(ctx, organization_id, user["id"])
        if not await has_permission(
            ctx,
            rt,
            role=member["role"],
            permissions={"organization": ["delete"]},
            organization_id=organization_id,
        ):
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_ORGANIZATION)
        organization = await find_organization(ctx, organization_id=organization_id)
        if organization is None:
            raise APIError(400)
        await run_hook(
            rt, "before_delete_organization", {"organization": organization, "user": user}, ctx
        )
        async with ctx.context.store.atomic() as store:
            if options.teams.enabled:
                teams = await store.db.find_many(
                    "team", eq("organizationId", organization_id), select=["id"]
                )
                if teams:
                    await store.db.delete_many(
                        "teamMember", in_("teamId", [t["id"] for t in teams])
                    )
            for model in _owned_by_organization(rt):
                await store.db.delete_many(model, eq("organizationId", organization_id))
            await store.db.delete("organization", eq("id", organization_id))
        forget_membership(rt, organization_id)
        if organization_id == session.get("activeOrganizationId"):
            await set_active(ctx, organization_id=None, cookie=False)
        await run_hook(
            rt, "after_delete_organization", {"organization": organization, "user": user}, ctx
        )
        return organization_out(ctx, organization)

    # -- reads -------------------------------------------------------------------------------

    async def _checked_membership(ctx: Ctx[Any], organization: dict[str, Any]) -> dict[str, Any]:
        _, user = ctx.session  # type: ignore[misc]
        member = await find_member(ctx, organization["id"], user["id"])
        if member is None:
            # better-auth clears the session's active organization before refusing. It
            # answers 403 "not a member" here, which tells an outsider the id exists:
            # another organization's id answers as an unknown one.
            await set_active(ctx, organization_id=None, cookie=False)
            raise APIError(400, OC.ORGANIZATION_NOT_FOUND)
        return member

    async def _requested(ctx: Ctx[Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The organization a read names (slug, else id, else the active one) and the
        caller's member row in it; None when it names none."""
        session, _ = ctx.session  # type: ignore[misc]
        slug = ctx.query.get("organizationSlug")
        key = slug or ctx.query.get("organizationId") or session.get("activeOrganizationId")
        if not key:
            return None
        organization = await (
            organization_or_refuse(ctx, slug=key)
            if slug
            else organization_or_refuse(ctx, organization_id=key)
        )
        return organization, await _checked_membership(ctx, organization)

    async def get_organization(ctx: Ctx[Any]) -> Any:
        found = await _requested(ctx)
        return None if found is None else organization_out(ctx, found[0])

    async def get_full_organization(ctx: Ctx[Any]) -> Any:
        found = await _requested(ctx)
        if found is None:
            return None
        organization, member = found
        query = ctx.query
        db = ctx.context.store.db
        organization_id = organization["id"]
        members_limit = _parse_int(query.get("membersLimit"))
        if members_limit is not None and not 0 < members_limit < _MAX_LIMIT:
            members_limit = None if members_limit <= 0 else _MAX_LIMIT
        members = await db.find_many(
            "member", eq("organizationId", organization_id), limit=members_limit or None
        )
        user_ids = [m["userId"] for m in members]
        users = (
            {u["id"]: u for u in await db.find_many("user", in_("id", user_ids))}
            if user_ids
            else {}
        )
        invitations = await db.find_many("invitation", eq("organizationId", organization_id))
        out: dict[str, Any] = organization_out(ctx, organization)
        out["invitations"] = await _visible_invitations(ctx, member, invitations, organization_id)
        out["members"] = [
            {**member_out(ctx, m), "user": user_summary(users[m["userId"]])}
            for m in members
            if m["userId"] in users
        ]
        if options.teams.enabled:
            teams = await db.find_many("team", eq("organizationId", organization_id))
            # The join sends each team's stored seat count, which other answers leave out.
            out["teams"] = [{**team_out(ctx, t), "memberCount": t["memberCount"]} for t in teams]
        return out

    async def _visible_invitations(
        ctx: Ctx[Any],
        member: dict[str, Any],
        invitations: list[dict[str, Any]],
        organization_id: str,
    ) -> list[dict[str, Any]]:
        """Invitation ids work as invitation links: only a member who may invite sees them,
        and those granting the creator role only a member holding it (has-permission.ts)."""
        if not invitations or not await has_permission(
            ctx,
            rt,
            role=member["role"],
            permissions={"invitation": ["create"]},
            organization_id=organization_id,
        ):
            return []
        if rt.creator_role not in parse_role_list(member["role"]):
            invitations = [
                i
                for i in invitations
                if rt.creator_role not in parse_role_list(i.get("role") or "")
            ]
        return [invitation_out(ctx, i) for i in invitations]

    async def list_organizations(ctx: Ctx[Any]) -> Any:
        _, user = ctx.session  # type: ignore[misc]
        return [organization_out(ctx, o) for o in await list_user_organizations(ctx, user["id"])]

    # -- set-active, has-permission ------------------------------------------------------------

    async def set_active_organization(ctx: Ctx[SetActiveBody]) -> Any:
        session, user = ctx.session  # type: ignore[misc]
        raw = ctx.raw_body if isinstance(ctx.raw_body, dict) else {}
        organization_id = ctx.body.organization_id
        slug = ctx.body.organization_slug
        if "organizationId" in raw and raw["organizationId"] is None:
            if not session.get("activeOrganizationId"):
                return None
            await set_active(ctx, organization_id=None)
            return None
        if not organization_id and not slug:
            organization_id = session.get("activeOrganizationId")
            if not organization_id:
                return None
        if slug and not organization_id:
            organization_id = (await organization_or_refuse(ctx, slug=slug))["id"]
        if not organization_id:
            raise APIError(400, OC.ORGANIZATION_NOT_FOUND)
        if await find_member(ctx, organization_id, user["id"]) is None:
            await set_active(ctx, organization_id=None, cookie=False)
            raise APIError(403, OC.USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION)
        organization = await organization_or_refuse(ctx, organization_id=organization_id)
        await set_active(ctx, organization_id=organization["id"])
        return organization_out(ctx, organization)

    async def has_permission_endpoint(ctx: Ctx[HasPermissionBody]) -> Any:
        session, user = ctx.session  # type: ignore[misc]
        organization_id = ctx.body.organization_id or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.NO_ACTIVE_ORGANIZATION)
        member = await find_member(ctx, organization_id, user["id"])
        if member is None:
            raise APIError(401, OC.USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION)
        # better-auth 1.7.25 reads only `permissions`: the deprecated `permission` alone
        # is accepted by the schema and then grants nothing.
        result = await has_permission(
            ctx,
            rt,
            role=member["role"],
            permissions=ctx.body.permissions,
            organization_id=organization_id,
        )
        return {"error": None, "success": result}

    guard = [session_required]
    return [
        Endpoint(
            "/organization/create",
            ("POST",),
            create,
            "create_organization",
            body=CreateBody,
            tags=("organization",),
        ),
        Endpoint(
            "/organization/check-slug",
            ("POST",),
            check_slug,
            "check_organization_slug",
            body=SlugBody,
            use=guard,
            tags=("organization",),
        ),
        Endpoint(
            "/organization/update",
            ("POST",),
            update,
            "update_organization",
            body=UpdateBody,
            tags=("organization",),
        ),
        Endpoint(
            "/organization/delete",
            ("POST",),
            delete,
            "delete_organization",
            body=DeleteBody,
            tags=("organization",),
        ),
        Endpoint(
            "/organization/get-organization",
            ("GET",),
            get_organization,
            "get_organization",
            query=OrganizationQuery,
            use=guard,
            tags=("organization",),
            operation_id="getOrganization",
        ),
        Endpoint(
            "/organization/get-full-organization",
            ("GET",),
            get_full_organization,
            "get_full_organization",
            query=FullOrganizationQuery,
            use=guard,
            tags=("organization",),
            operation_id="getFullOrganization",
        ),
        Endpoint(
            "/organization/list",
            ("GET",),
            list_organizations,
            "list_organizations",
            use=guard,
            tags=("organization",),
        ),
        Endpoint(
            "/organization/set-active",
            ("POST",),
            set_active_organization,
            "set_active_organization",
            body=SetActiveBody,
            use=guard,
            tags=("organization",),
            operation_id="setActiveOrganization",
        ),
        Endpoint(
            "/organization/has-permission",
            ("POST",),
            has_permission_endpoint,
            "has_permission",
            body=HasPermissionBody,
            use=guard,
            tags=("organization",),
        ),
    ]


def _owned_by_organization(rt: Runtime) -> tuple[str, ...]:
    """What goes with an organization (better-auth deletes members and invitations; teams
    and stored roles would be left pointing at nothing, so they go too)."""
    models = ["member", "invitation"]
    if rt.options.teams.enabled:
        models.append("team")
    if rt.options.dynamic_roles_enabled:
        models.append("organizationRole")
    return tuple(models)


class _DeletionCode(ErrorCode):
    ORGANIZATION_DELETION_DISABLED = "Organization deletion is disabled"
