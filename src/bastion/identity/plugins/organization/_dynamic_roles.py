"""Roles an organization stores for itself (`dynamic_access_control={"enabled": True}`):
create-role, update-role, delete-role, get-role and list-roles, as better-auth 1.7.25's
`crud-access-control` routes answer them.

A stored role is an `organizationRole` row whose `permission` is `{resource: [action]}` as
JSON text; it grants through `organization_roles` (merged into a static role of the same
name). A member may only hand out actions it holds itself, and every change empties the
agent server's role cache for that organization.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, model_validator
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from ...._callbacks import call_user
from ...db import Row, Where, contains, eq
from ...endpoint import Ctx, Endpoint
from ...errors import APIError
from ...sessions import session_required
from ...validation import Body, NonEmpty
from ..access import AccessControl, Role
from ._common import (
    Runtime,
    find_member,
    forget_membership,
    organization_roles,
    parse_role_list,
    role_allows,
)
from ._errors import OrganizationCode as OC

__all__ = ["endpoints"]

MODEL = "organizationRole"

# What a stored role may hold. better-auth sets no limits, and its MySQL columns then fail with
# a 500: `role` is an indexed varchar(255) there, `permission` a TEXT of 65,535 bytes (16,000
# characters are at most 64,000 bytes of UTF-8).
MAX_ROLE_NAME_LENGTH = 255
MAX_PERMISSION_LENGTH = 16_000


def _fits(permission: dict[str, list[str]]) -> dict[str, list[str]]:
    if len(_dump(permission)) > MAX_PERMISSION_LENGTH:
        raise PydanticCustomError(
            "too_big", f"Too big: expected at most {MAX_PERMISSION_LENGTH} characters of JSON"
        )
    return permission


Permission = Annotated[dict[str, list[str]], AfterValidator(_fits)]
RoleName = Annotated[str, PydanticField(max_length=MAX_ROLE_NAME_LENGTH)]


def _one_role_selector(data: Any) -> Any:
    """zod's `{roleName: nonempty} | {roleId: nonempty}`, with zod's errors: a branch that
    matches wins and the other key is dropped; with none, a lone empty string is "too
    small" at its key, anything else a bare `Invalid input`."""
    if not isinstance(data, Mapping):
        return data
    state = {key: _selector_state(data.get(key)) for key in ("roleName", "roleId")}
    if "ok" in state.values():
        return {k: v for k, v in data.items() if state.get(k, "ok") == "ok"}
    short = [key for key, s in state.items() if s == "empty"]
    if len(short) == 1:
        return {k: v for k, v in data.items() if k not in state or k in short}
    raise PydanticCustomError("invalid_union", "Invalid input")


def _selector_state(value: Any) -> str:
    if isinstance(value, str):
        return "ok" if value else "empty"
    return "invalid"


class RoleSelector(Body):
    organization_id: str | None = PydanticField(None, alias="organizationId")
    role_name: NonEmpty | None = PydanticField(None, alias="roleName")
    role_id: NonEmpty | None = PydanticField(None, alias="roleId")

    _selector = model_validator(mode="before")(_one_role_selector)


class CreateRoleBody(Body):
    organization_id: str | None = PydanticField(None, alias="organizationId")
    role: RoleName
    permission: Permission
    # better-auth's additional fields of organizationRole; none are declared here, so zod's
    # empty object keeps nothing of it.
    additional_fields: dict[str, Any] | None = PydanticField(None, alias="additionalFields")


class UpdateRoleData(Body):
    permission: Permission | None = None
    role_name: RoleName | None = PydanticField(None, alias="roleName")


class UpdateRoleBody(RoleSelector):
    data: UpdateRoleData


class ListRolesQuery(Body):
    organization_id: str | None = PydanticField(None, alias="organizationId")


class MissingPermissions(APIError):
    """403 with the `missingPermissions` better-auth lists (`["member:delete", ...]`)."""

    def __init__(self, code: OC, missing: list[str]) -> None:
        super().__init__(403, code)
        self.missing = missing

    def body(self) -> dict[str, Any] | None:
        return {**(super().body() or {}), "missingPermissions": self.missing}


def _stored_json(value: Any) -> Any:
    """A stored `permission` as the object it encodes; None when it is not JSON (better-auth
    answers 500 there; such a row grants nothing and is shown without permissions)."""
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _dump(permission: dict[str, list[str]]) -> str:
    return json.dumps(permission, separators=(",", ":"), ensure_ascii=False)  # JSON.stringify


def _predefined(rt: Runtime) -> set[str]:
    # The static role names (owner/admin/member, or the `roles` option's): a stored role may
    # neither take nor delete one, though a stored row of such a name (from a shared
    # database) adds to it.
    return set(rt.static_roles)


def _selected(role_name: str | None, role_id: str | None) -> Where:
    # roleName wins when both are given, as in better-auth
    return eq("role", role_name) if role_name else eq("id", role_id)


def endpoints(rt: Runtime) -> list[Endpoint]:
    async def organization_id_of(ctx: Ctx[Any], given: str | None, missing: OC) -> str:
        session, _ = ctx.session  # type: ignore[misc]
        organization_id = given or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, missing)
        return str(organization_id)

    async def caller(ctx: Ctx[Any], organization_id: str) -> Row:
        """The caller's member row; an unknown organization answers as someone else's."""
        _, user = ctx.session  # type: ignore[misc]
        member = await find_member(ctx, organization_id, user["id"])
        if member is None:
            raise APIError(403, OC.YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION)
        return member

    async def roles_allowing(
        ctx: Ctx[Any], organization_id: str, member: Row, action: str, refusal: OC
    ) -> dict[str, Role]:
        """Refuse unless the member holds `ac:<action>`; the organization's roles, read once
        per request (better-auth caches them per request too)."""
        roles = await organization_roles(ctx.context.store.db, rt, organization_id)
        if not role_allows(roles, member["role"], {"ac": [action]}, rt.creator_role):
            raise APIError(403, refusal)
        return roles

    def check_grant(
        ac: AccessControl, roles: dict[str, Role], member: Row, permission: Permission, refusal: OC
    ) -> None:
        """Every resource must be a statement; every action one the member holds itself
        (an action no statement names is held by no one)."""
        if any(resource not in ac.statements for resource in permission):
            raise APIError(400, OC.INVALID_RESOURCE)
        missing = [
            f"{resource}:{action}"
            for resource, actions in permission.items()
            for action in actions
            if not role_allows(roles, member["role"], {resource: [action]}, rt.creator_role)
        ]
        if missing:
            raise MissingPermissions(refusal, missing)

    async def name_free(ctx: Ctx[Any], organization_id: str, name: str) -> None:
        if name in _predefined(rt):
            raise APIError(400, OC.ROLE_NAME_IS_ALREADY_TAKEN)
        taken = await ctx.context.store.db.find_one(
            MODEL, eq("organizationId", organization_id) & eq("role", name)
        )
        if taken is not None:
            raise APIError(400, OC.ROLE_NAME_IS_ALREADY_TAKEN)

    def role_out(ctx: Ctx[Any], row: Row) -> dict[str, Any]:
        out = ctx.context.public_row(MODEL, row)
        out["permission"] = _stored_json(row.get("permission"))
        return out

    def access_control() -> AccessControl:
        ac = rt.options.ac
        if ac is None:  # organization() refuses this already; kept for the type
            raise APIError(501, OC.MISSING_AC_INSTANCE)
        return ac

    async def role_limit(organization_id: str) -> float:
        limit = rt.options.dynamic_access_control.maximum_roles_per_organization
        if callable(limit):
            limit = await call_user(limit, organization_id)
        return float("inf") if limit is None else float(limit)

    async def create_role(ctx: Ctx[CreateRoleBody]) -> dict[str, Any]:
        ac = access_control()
        body = ctx.body
        organization_id = await organization_id_of(
            ctx, body.organization_id, OC.YOU_MUST_BE_IN_AN_ORGANIZATION_TO_CREATE_A_ROLE
        )
        name = body.role.lower()
        # better-auth refuses a static role's name before it looks at the membership
        if name in _predefined(rt):
            raise APIError(400, OC.ROLE_NAME_IS_ALREADY_TAKEN)
        member = await caller(ctx, organization_id)
        refusal = OC.YOU_ARE_NOT_ALLOWED_TO_CREATE_A_ROLE
        roles = await roles_allowing(ctx, organization_id, member, "create", refusal)
        db = ctx.context.store.db
        stored = await db.count(MODEL, eq("organizationId", organization_id))
        if stored >= await role_limit(organization_id):
            raise APIError(400, OC.TOO_MANY_ROLES)
        check_grant(ac, roles, member, body.permission, refusal)
        await name_free(ctx, organization_id, name)
        row = await db.create(
            MODEL,
            {
                "organizationId": organization_id,
                "role": name,
                "permission": _dump(body.permission),
                "createdAt": ctx.context.now(),
                # better-auth leaves it empty until the first update (the adapter would
                # fill an on-update date on insert otherwise)
                "updatedAt": None,
            },
        )
        # Members may already hold this name (a role renamed away, or written by another
        # server): what they may do changes now.
        forget_membership(rt, organization_id)
        role_data = {**ctx.context.public_row(MODEL, row), "permission": body.permission}
        return {"success": True, "roleData": role_data, "statements": body.permission}

    async def update_role(ctx: Ctx[UpdateRoleBody]) -> dict[str, Any]:
        ac = access_control()
        body = ctx.body
        organization_id = await organization_id_of(
            ctx, body.organization_id, OC.NO_ACTIVE_ORGANIZATION
        )
        member = await caller(ctx, organization_id)
        refusal = OC.YOU_ARE_NOT_ALLOWED_TO_UPDATE_A_ROLE
        roles = await roles_allowing(ctx, organization_id, member, "update", refusal)
        db = ctx.context.store.db
        where = eq("organizationId", organization_id) & _selected(body.role_name, body.role_id)
        row = await db.find_one(MODEL, where)
        if row is None:
            raise APIError(400, OC.ROLE_NOT_FOUND)
        update: dict[str, Any] = {}
        new_permission = body.data.permission
        if new_permission is not None:  # an empty {} is a change too
            check_grant(ac, roles, member, new_permission, refusal)
            update["permission"] = _dump(new_permission)
        if body.data.role_name:
            new_name = body.data.role_name.lower()
            # The role's own name counts as taken too: renaming to it is refused.
            await name_free(ctx, organization_id, new_name)
            update["role"] = new_name
        await db.update_many(MODEL, where, update)  # also when empty: updatedAt moves
        forget_membership(rt, organization_id)
        # better-auth answers the row as read before the update (its old updatedAt) with
        # the changes laid over it; members keep a renamed role's old name.
        before = role_out(ctx, row)
        permission = new_permission if new_permission is not None else before["permission"]
        return {"success": True, "roleData": {**before, **update, "permission": permission}}

    async def delete_role(ctx: Ctx[RoleSelector]) -> dict[str, Any]:
        body = ctx.body
        organization_id = await organization_id_of(
            ctx, body.organization_id, OC.NO_ACTIVE_ORGANIZATION
        )
        member = await caller(ctx, organization_id)
        await roles_allowing(
            ctx, organization_id, member, "delete", OC.YOU_ARE_NOT_ALLOWED_TO_DELETE_A_ROLE
        )
        if body.role_name and body.role_name in _predefined(rt):
            raise APIError(400, OC.CANNOT_DELETE_A_PRE_DEFINED_ROLE)
        db = ctx.context.store.db
        where = eq("organizationId", organization_id) & _selected(body.role_name, body.role_id)
        row = await db.find_one(MODEL, where)
        if row is None:
            raise APIError(400, OC.ROLE_NOT_FOUND)
        name = row["role"]
        holders = await db.find_many(
            "member", eq("organizationId", organization_id) & contains("role", name)
        )
        if any(name in parse_role_list(holder["role"]) for holder in holders):
            raise APIError(400, OC.ROLE_IS_ASSIGNED_TO_MEMBERS)
        await db.delete_many(MODEL, where)
        forget_membership(rt, organization_id)
        return {"success": True}

    async def get_role(ctx: Ctx[Any]) -> dict[str, Any]:
        query = ctx.query  # validated as a RoleSelector
        organization_id = await organization_id_of(
            ctx, query.get("organizationId"), OC.NO_ACTIVE_ORGANIZATION
        )
        member = await caller(ctx, organization_id)
        await roles_allowing(
            ctx, organization_id, member, "read", OC.YOU_ARE_NOT_ALLOWED_TO_READ_A_ROLE
        )
        where = eq("organizationId", organization_id) & _selected(
            query.get("roleName"), query.get("roleId")
        )
        row = await ctx.context.store.db.find_one(MODEL, where)
        if row is None:
            raise APIError(400, OC.ROLE_NOT_FOUND)
        return role_out(ctx, row)

    async def list_roles(ctx: Ctx[Any]) -> list[dict[str, Any]]:
        organization_id = await organization_id_of(
            ctx, ctx.query.get("organizationId"), OC.NO_ACTIVE_ORGANIZATION
        )
        member = await caller(ctx, organization_id)
        await roles_allowing(
            ctx, organization_id, member, "read", OC.YOU_ARE_NOT_ALLOWED_TO_LIST_A_ROLE
        )
        rows = await ctx.context.store.db.find_many(MODEL, eq("organizationId", organization_id))
        return [role_out(ctx, row) for row in rows]

    guard = [session_required]
    tags = ("organization",)
    return [
        Endpoint(
            "/organization/create-role",
            ("POST",),
            create_role,
            "create_org_role",
            body=CreateRoleBody,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/update-role",
            ("POST",),
            update_role,
            "update_org_role",
            body=UpdateRoleBody,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/delete-role",
            ("POST",),
            delete_role,
            "delete_org_role",
            body=RoleSelector,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/get-role",
            ("GET",),
            get_role,
            "get_org_role",
            query=RoleSelector,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/list-roles",
            ("GET",),
            list_roles,
            "list_org_roles",
            query=ListRolesQuery,
            use=guard,
            tags=tags,
        ),
    ]
