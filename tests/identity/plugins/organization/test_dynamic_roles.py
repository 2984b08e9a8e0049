"""Roles an organization stores itself (`dynamic_access_control`), through HTTP: create-role,
update-role, delete-role, get-role and list-roles, with better-auth 1.7.25's answers.

Every status, code and shape below was observed on better-auth 1.7.25 with the same requests
(see /work/helpers/errata-roles.md for the table); where Bastion differs on purpose (a stored
permission that is not JSON) the test says so.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bastion.identity import create_access_control, organization
from bastion.identity.plugins.organization import DEFAULT_STATEMENTS, Memberships
from tests.identity.plugins.organization.kit import Org, create_org, error, org_identity

AC = create_access_control({**DEFAULT_STATEMENTS, "project": ["create", "read", "delete"]})
DYNAMIC: dict[str, Any] = {"ac": AC, "dynamic_access_control": {"enabled": True}}
PATHS = [
    ("POST", "/organization/create-role"),
    ("POST", "/organization/update-role"),
    ("POST", "/organization/delete-role"),
    ("GET", "/organization/get-role"),
    ("GET", "/organization/list-roles"),
]


@asynccontextmanager
async def dynamic(database_url: str = "sqlite://", **extra: Any) -> AsyncIterator[Org]:
    async with org_identity(database_url, plugin_options={**DYNAMIC, **extra}) as org:
        yield org


async def join(org: Org, organization_id: str, email: str, role: str) -> httpx.AsyncClient:
    """A new user, made a member with `role` (as add-member would, server side)."""
    client = await org.user(email)
    await org.identity.store.db.create(
        "member",
        {
            "organizationId": organization_id,
            "userId": user_id(client),
            "role": role,
            "createdAt": org.identity.context.now(),
        },
    )
    return client


def user_id(client: httpx.AsyncClient) -> str:
    return str(client.user["id"])  # type: ignore[attr-defined]  # set by Org.user


async def create_role(
    client: httpx.AsyncClient, role: str, permission: dict[str, list[str]], **extra: Any
) -> httpx.Response:
    return await client.post(
        "/organization/create-role", json={"role": role, "permission": permission, **extra}
    )


async def allowed(client: httpx.AsyncClient, permissions: dict[str, list[str]]) -> bool:
    response = await client.post("/organization/has-permission", json={"permissions": permissions})
    assert response.status_code == 200, response.text
    return bool(response.json()["success"])


async def stored_roles(org: Org, organization_id: str) -> list[dict[str, Any]]:
    return await org.identity.store.db.find_many(
        "organizationRole", {"organizationId": organization_id}
    )


async def test_the_endpoints_exist_only_with_dynamic_access_control() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        for method, path in PATHS:
            assert (await ada.request(method, path)).status_code == 404
    # better-auth answers 501 MISSING_AC_INSTANCE per request; Bastion refuses the options.
    with pytest.raises(ValueError, match="ac"):
        organization(dynamic_access_control={"enabled": True})


async def test_a_role_is_created_read_listed_updated_and_deleted(database_url: str) -> None:
    async with dynamic(database_url) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        created = await create_role(ada, "Editor", {"member": ["create"], "team": ["update"]})
        assert created.status_code == 200, created.text
        body = created.json()
        role = body["roleData"]
        assert list(body) == ["success", "roleData", "statements"] and body["success"] is True
        assert body["statements"] == {"member": ["create"], "team": ["update"]}
        assert set(role) == {"id", "organizationId", "role", "permission", "createdAt", "updatedAt"}
        # The name is lower-cased; the permission answered as an object, stored as JSON text.
        assert (role["role"], role["organizationId"], role["updatedAt"]) == (
            "editor",
            acme["id"],
            None,
        )
        assert role["permission"] == {"member": ["create"], "team": ["update"]}
        [row] = await stored_roles(org, acme["id"])
        assert row["permission"] == '{"member":["create"],"team":["update"]}'

        by_name = await ada.get("/organization/get-role", params={"roleName": "editor"})
        by_id = await ada.get(
            "/organization/get-role", params={"roleId": role["id"], "organizationId": acme["id"]}
        )
        assert by_name.status_code == by_id.status_code == 200
        assert by_name.json() == by_id.json() == role
        listed = await ada.get("/organization/list-roles")
        assert listed.status_code == 200 and listed.json() == [role]

        updated = await ada.post(
            "/organization/update-role",
            json={"roleName": "editor", "data": {"permission": {"member": ["update"]}}},
        )
        assert updated.status_code == 200, updated.text
        assert updated.json() == {
            "success": True,
            "roleData": {**role, "permission": {"member": ["update"]}},
        }
        renamed = await ada.post(
            "/organization/update-role",
            json={"roleId": role["id"], "data": {"roleName": "Writer", "ignored": 1}},
        )
        assert renamed.status_code == 200, renamed.text
        renamed_data = renamed.json()["roleData"]
        assert (renamed_data["role"], renamed_data["permission"]) == (
            "writer",
            {"member": ["update"]},
        )
        assert "ignored" not in renamed_data
        # The answer is the row as read before the update: its updatedAt is the previous
        # update's, while the stored one has moved on.
        assert renamed_data["updatedAt"] is not None
        stored = (await ada.get("/organization/get-role", params={"roleName": "writer"})).json()
        assert stored["updatedAt"] >= renamed_data["updatedAt"]
        # An empty change still answers (and touches updatedAt).
        nothing = await ada.post(
            "/organization/update-role", json={"roleName": "writer", "data": {}}
        )
        assert nothing.status_code == 200 and nothing.json()["roleData"]["role"] == "writer"
        emptied = await ada.post(
            "/organization/update-role", json={"roleName": "writer", "data": {"permission": {}}}
        )
        assert emptied.json()["roleData"]["permission"] == {}

        deleted = await ada.post("/organization/delete-role", json={"roleName": "writer"})
        assert deleted.status_code == 200 and deleted.json() == {"success": True}
        gone = await ada.get("/organization/get-role", params={"roleId": role["id"]})
        assert error(gone) == (400, "ROLE_NOT_FOUND")
        assert (await ada.get("/organization/list-roles")).json() == []
        # An empty permission is a role too; delete by id.
        empty = (await create_role(ada, "viewer", {})).json()["roleData"]
        assert empty["permission"] == {}
        by_id_deleted = await ada.post("/organization/delete-role", json={"roleId": empty["id"]})
        assert by_id_deleted.json() == {"success": True}


async def test_create_role_refusals_in_better_auths_order() -> None:
    async with dynamic(
        dynamic_access_control={"enabled": True, "maximum_roles_per_organization": 2}
    ) as org:
        ada = await org.user("ada@example.com")
        stranger = await org.user("sam@example.com")
        # No organization: neither given nor active.
        assert error(await create_role(stranger, "x", {})) == (
            400,
            "YOU_MUST_BE_IN_AN_ORGANIZATION_TO_CREATE_A_ROLE",
        )
        acme = await create_org(ada, "acme")
        other = {"organizationId": acme["id"]}
        # A static role's name is refused first, even to someone who is not a member.
        for name in ("admin", "OWNER", "Member"):
            assert error(await create_role(ada, name, {})) == (400, "ROLE_NAME_IS_ALREADY_TAKEN")
        assert error(await create_role(stranger, "owner", {}, **other)) == (
            400,
            "ROLE_NAME_IS_ALREADY_TAKEN",
        )
        # Someone else's organization and an unknown one answer alike.
        for organization_id in (acme["id"], "no-such-organization"):
            refused = await create_role(stranger, "x", {}, organizationId=organization_id)
            assert error(refused) == (403, "YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION")
        # A plain member lacks ac:create.
        bob = await join(org, acme["id"], "bob@example.com", "member")
        refused = await create_role(bob, "x", {}, **other)
        assert refused.json() == {
            "message": "You are not allowed to create a role",
            "code": "YOU_ARE_NOT_ALLOWED_TO_CREATE_A_ROLE",
        }
        assert refused.status_code == 403
        # A resource the statements do not name.
        assert error(await create_role(ada, "x", {"nope": ["read"]})) == (400, "INVALID_RESOURCE")
        # What the caller does not hold itself: the owner has no `project` actions, and an
        # action no statement names is held by no one.
        missing = await create_role(ada, "x", {"project": ["read"], "member": ["fly", "create"]})
        assert missing.status_code == 403
        assert missing.json() == {
            "message": "You are not allowed to create a role",
            "code": "YOU_ARE_NOT_ALLOWED_TO_CREATE_A_ROLE",
            "missingPermissions": ["project:read", "member:fly"],
        }
        assert (await create_role(ada, "editor", {"member": ["create"]})).status_code == 200
        assert error(await create_role(ada, "EDITOR", {})) == (400, "ROLE_NAME_IS_ALREADY_TAKEN")
        assert (await create_role(ada, "second", {})).status_code == 200
        # The limit is checked before the resources and the name.
        for name, permission in (("third", {}), ("editor", {}), ("x", {"nope": ["a"]})):
            assert error(await create_role(ada, name, permission)) == (400, "TOO_MANY_ROLES")
        assert len(await stored_roles(org, acme["id"])) == 2
        signed_out = await org.anonymous.post(
            "/organization/create-role",
            json={"role": "x", "permission": {}},
            headers={"origin": "http://localhost:3000"},
        )
        assert signed_out.status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"role": 5, "permission": {}},
            "[body.role] Invalid input: expected string, received number",
        ),
        (
            {"role": "x", "permission": {"project": "read"}},
            "[body.permission.project] Invalid input: expected array, received string",
        ),
    ],
)
async def test_create_role_validation(body: dict[str, Any], message: str) -> None:
    async with dynamic() as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        refused = await ada.post("/organization/create-role", json=body)
        assert refused.status_code == 400
        assert refused.json() == {"message": message, "code": "VALIDATION_ERROR"}
        missing = await ada.post("/organization/create-role", json={"role": "x"})
        assert error(missing) == (400, "VALIDATION_ERROR")


async def test_a_limit_may_be_a_function_of_the_organization() -> None:
    seen: list[str] = []

    async def limit(organization_id: str) -> int:
        seen.append(organization_id)
        return 1

    options = {"enabled": True, "maximum_roles_per_organization": limit}
    async with dynamic(dynamic_access_control=options) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        assert (await create_role(ada, "one", {})).status_code == 200
        assert error(await create_role(ada, "two", {})) == (400, "TOO_MANY_ROLES")
        assert seen == [acme["id"], acme["id"]]


async def test_update_role_refusals() -> None:
    async with dynamic() as org:
        ada = await org.user("ada@example.com")
        stranger = await org.user("sam@example.com")
        no_org = await stranger.post(
            "/organization/update-role", json={"roleName": "x", "data": {}}
        )
        assert error(no_org) == (400, "NO_ACTIVE_ORGANIZATION")
        acme = await create_org(ada, "acme")
        editor = (await create_role(ada, "editor", {"member": ["create"]})).json()["roleData"]
        await create_role(ada, "viewer", {})

        async def update(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
            return await client.post(
                "/organization/update-role", json={"organizationId": acme["id"], **body}
            )

        outsider = await update(stranger, roleName="editor", data={})
        assert error(outsider) == (403, "YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION")
        bob = await join(org, acme["id"], "bob@example.com", "member")
        assert error(await update(bob, roleName="editor", data={})) == (
            403,
            "YOU_ARE_NOT_ALLOWED_TO_UPDATE_A_ROLE",
        )
        # Looked up by the exact name or the id; static roles are not stored.
        for selector in ({"roleName": "Editor"}, {"roleName": "admin"}, {"roleId": "nope"}):
            assert error(await update(ada, data={}, **selector)) == (400, "ROLE_NOT_FOUND")
        # roleName wins over roleId
        both = await update(ada, roleName="nope", roleId=editor["id"], data={})
        assert error(both) == (400, "ROLE_NOT_FOUND")
        bad = await update(ada, roleName="editor", data={"permission": {"nope": ["x"]}})
        assert error(bad) == (400, "INVALID_RESOURCE")
        missing = await update(ada, roleName="editor", data={"permission": {"project": ["read"]}})
        assert missing.status_code == 403
        assert missing.json()["code"] == "YOU_ARE_NOT_ALLOWED_TO_UPDATE_A_ROLE"
        assert missing.json()["missingPermissions"] == ["project:read"]
        # A new name may be neither a static role's, another stored role's, nor its own.
        for name in ("Admin", "viewer", "EDITOR"):
            taken = await update(ada, roleName="editor", data={"roleName": name})
            assert error(taken) == (400, "ROLE_NAME_IS_ALREADY_TAKEN")
        # Nothing was changed by the refusals.
        [row] = [r for r in await stored_roles(org, acme["id"]) if r["id"] == editor["id"]]
        assert (row["role"], json.loads(row["permission"])) == ("editor", {"member": ["create"]})
        # zod's union of roleName | roleId, in its words
        for body, message in (
            ({"data": {}}, "[body] Invalid input"),
            (
                {"roleName": "", "data": {}},
                "[body.roleName] Too small: expected string to have >=1 characters",
            ),
        ):
            refused = await update(ada, **body)
            assert refused.json() == {"message": message, "code": "VALIDATION_ERROR"}
        # better-auth: "[body.data] Invalid input: expected object, received undefined"
        no_data = await update(ada, roleName="editor")
        assert error(no_data) == (400, "VALIDATION_ERROR")
        assert no_data.json()["message"].startswith("[body.data] Invalid input: expected")
        # An empty roleName beside a usable roleId is fine: the id selects.
        by_id = await update(ada, roleName="", roleId=editor["id"], data={})
        assert by_id.status_code == 200


async def test_delete_role_refusals(database_url: str) -> None:
    async with dynamic(database_url) as org:
        ada = await org.user("ada@example.com")
        stranger = await org.user("sam@example.com")
        no_org = await stranger.post("/organization/delete-role", json={"roleName": "x"})
        assert error(no_org) == (400, "NO_ACTIVE_ORGANIZATION")
        acme = await create_org(ada, "acme")
        await create_role(ada, "editor", {"member": ["create"]})
        target = {"organizationId": acme["id"], "roleName": "editor"}
        outsider = await stranger.post("/organization/delete-role", json=target)
        assert error(outsider) == (403, "YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION")
        # A member holding the role among others: the role stays.
        bob = await join(org, acme["id"], "bob@example.com", "member, editor")
        refused = await bob.post("/organization/delete-role", json=target)
        assert error(refused) == (403, "YOU_ARE_NOT_ALLOWED_TO_DELETE_A_ROLE")
        assigned = await ada.post("/organization/delete-role", json={"roleName": "editor"})
        assert error(assigned) == (400, "ROLE_IS_ASSIGNED_TO_MEMBERS")
        # Static roles by their exact name; another casing is simply not stored.
        static = await ada.post("/organization/delete-role", json={"roleName": "admin"})
        assert error(static) == (400, "CANNOT_DELETE_A_PRE_DEFINED_ROLE")
        cased = await ada.post("/organization/delete-role", json={"roleName": "Admin"})
        assert error(cased) == (400, "ROLE_NOT_FOUND")
        unknown = await ada.post("/organization/delete-role", json={"roleId": "nope"})
        assert error(unknown) == (400, "ROLE_NOT_FOUND")
        neither = await ada.post("/organization/delete-role", json={})
        assert neither.json() == {"message": "[body] Invalid input", "code": "VALIDATION_ERROR"}
        # A role whose name only contains the deleted one does not hold it.
        await create_role(ada, "edit", {})
        assert (await ada.post("/organization/delete-role", json={"roleName": "edit"})).json() == {
            "success": True
        }
        assert len(await stored_roles(org, acme["id"])) == 1


async def test_reading_roles_needs_ac_read() -> None:
    async with dynamic() as org:
        ada = await org.user("ada@example.com")
        stranger = await org.user("sam@example.com")
        for path, params in (
            ("/organization/list-roles", {}),
            ("/organization/get-role", {"roleName": "x"}),
        ):
            no_org = await stranger.get(path, params=params)
            assert error(no_org) == (400, "NO_ACTIVE_ORGANIZATION")
        acme = await create_org(ada, "acme")
        role = (await create_role(ada, "blind", {"member": ["create"]})).json()["roleData"]
        scope = {"organizationId": acme["id"]}
        # `member` holds ac:read by default.
        bob = await join(org, acme["id"], "bob@example.com", "member")
        assert (await bob.get("/organization/list-roles", params=scope)).json() == [role]
        got = await bob.get("/organization/get-role", params={**scope, "roleName": "blind"})
        assert got.json() == role
        # A stored role without it reads nothing.
        cy = await join(org, acme["id"], "cy@example.com", "blind")
        listed = await cy.get("/organization/list-roles", params=scope)
        assert error(listed) == (403, "YOU_ARE_NOT_ALLOWED_TO_LIST_A_ROLE")
        read = await cy.get("/organization/get-role", params={**scope, "roleName": "blind"})
        assert error(read) == (403, "YOU_ARE_NOT_ALLOWED_TO_READ_A_ROLE")
        for organization_id in (acme["id"], "no-such-organization"):
            outsider = await stranger.get(
                "/organization/list-roles", params={"organizationId": organization_id}
            )
            assert error(outsider) == (403, "YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION")
        for params, message in (
            (scope, "[query] Invalid input"),
            (
                {**scope, "roleName": ""},
                "[query.roleName] Too small: expected string to have >=1 characters",
            ),
        ):
            refused = await ada.get("/organization/get-role", params=params)
            assert refused.json() == {"message": message, "code": "VALIDATION_ERROR"}
        static = await ada.get("/organization/get-role", params={"roleName": "admin"})
        assert error(static) == (400, "ROLE_NOT_FOUND")


async def test_a_created_role_grants_what_it_names(database_url: str) -> None:
    async with dynamic(database_url) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        inviter = {"invitation": ["create"], "ac": ["create", "read"]}
        assert (await create_role(ada, "inviter", inviter)).status_code == 200
        bob = await join(org, acme["id"], "bob@example.com", "member")
        await bob.post("/organization/set-active", json={"organizationId": acme["id"]})
        assert not await allowed(bob, {"invitation": ["create"]})
        invite = {"email": "zoe@example.com", "role": "member"}
        refused = await bob.post("/organization/invite-member", json=invite)
        assert refused.status_code == 403
        # Given the role (a stored role's name is a valid member role)...
        member = await org.identity.store.db.find_one("member", {"userId": user_id(bob)})
        assert member is not None
        member_id = member["id"]
        given = await ada.post(
            "/organization/update-member-role", json={"memberId": member_id, "role": "inviter"}
        )
        if given.status_code == 404:  # the members endpoints are not merged in yet
            await org.identity.store.db.update("member", {"id": member_id}, {"role": "inviter"})
        else:
            assert given.status_code == 200, given.text
        # ...Bob may invite, and create roles, but only with what he holds.
        assert await allowed(bob, {"invitation": ["create"]})
        assert await allowed(bob, {"ac": ["create", "read"]})
        assert not await allowed(bob, {"invitation": ["cancel"]})
        invited = await bob.post("/organization/invite-member", json=invite)
        assert invited.status_code == 200, invited.text
        assert (await create_role(bob, "sub", {"invitation": ["create"]})).status_code == 200
        more = await create_role(bob, "sub2", {"invitation": ["cancel"]})
        assert (more.status_code, more.json()["missingPermissions"]) == (403, ["invitation:cancel"])
        # An update changes what the role grants at once.
        await ada.post(
            "/organization/update-role",
            json={"roleName": "inviter", "data": {"permission": {"ac": ["read"]}}},
        )
        assert not await allowed(bob, {"invitation": ["create"]})
        # A rename leaves members with the old name, which then grants nothing; a new role
        # of that name grants again.
        await ada.post(
            "/organization/update-role", json={"roleName": "inviter", "data": {"roleName": "x"}}
        )
        assert not await allowed(bob, {"ac": ["read"]})
        await create_role(ada, "inviter", {"ac": ["read"]})
        assert await allowed(bob, {"ac": ["read"]})


async def test_a_stored_role_adds_to_a_static_role_of_its_name() -> None:
    """A row named like a static role (from a shared database, or a `roles` option that
    changed) merges its actions into it, as better-auth's hasPermission does."""
    async with dynamic() as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        bob = await join(org, acme["id"], "bob@example.com", "member")
        await bob.post("/organization/set-active", json={"organizationId": acme["id"]})
        assert not await allowed(bob, {"invitation": ["cancel"]})
        await org.identity.store.db.create(
            "organizationRole",
            {
                "organizationId": acme["id"],
                "role": "member",
                "permission": '{"invitation":["cancel"]}',
                "createdAt": org.identity.context.now(),
            },
        )
        assert await allowed(bob, {"invitation": ["cancel"], "ac": ["read"]})
        assert not await allowed(bob, {"invitation": ["create"]})


async def test_with_a_roles_option_only_those_names_are_taken() -> None:
    roles = {
        "owner": AC.new_role({"project": ["create", "read"], "ac": ["create", "read", "delete"]}),
        "viewer": AC.new_role({"project": ["read"]}),
    }
    async with dynamic(roles=roles) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        assert error(await create_role(ada, "Viewer", {})) == (400, "ROLE_NAME_IS_ALREADY_TAKEN")
        # `member` is no static role here: it may be stored, and grants what it names to
        # members already holding it.
        bob = await join(org, acme["id"], "bob@example.com", "member")
        await bob.post("/organization/set-active", json={"organizationId": acme["id"]})
        assert not await allowed(bob, {"project": ["read"]})
        assert (await create_role(ada, "member", {"project": ["read"]})).status_code == 200
        assert await allowed(bob, {"project": ["read"]})
        static = await ada.post("/organization/delete-role", json={"roleName": "viewer"})
        assert error(static) == (400, "CANNOT_DELETE_A_PRE_DEFINED_ROLE")
        # The owner's own role holds no ac:update: 403 before anything is looked up.
        refused = await ada.post(
            "/organization/update-role", json={"roleName": "member", "data": {}}
        )
        assert error(refused) == (403, "YOU_ARE_NOT_ALLOWED_TO_UPDATE_A_ROLE")


async def test_a_stored_permission_that_is_not_json_is_no_server_error(database_url: str) -> None:
    """better-auth 1.7.25 answers 500 to every permission check of the organization (and to
    get-role and list-roles) once one stored role is not `{resource: [action]}` JSON. Here
    that role grants nothing, is shown with `permission: null`, and can be fixed or deleted."""
    async with dynamic(database_url) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        await create_role(ada, "broken", {"member": ["create"]})
        await create_role(ada, "odd", {"member": ["create"]})
        db = org.identity.store.db
        await db.update_many("organizationRole", {"role": "broken"}, {"permission": "not json"})
        await db.update_many("organizationRole", {"role": "odd"}, {"permission": '{"member":1}'})
        bob = await join(org, acme["id"], "bob@example.com", "broken,odd")
        await bob.post("/organization/set-active", json={"organizationId": acme["id"]})
        assert await allowed(ada, {"member": ["create"]})
        assert not await allowed(bob, {"member": ["create"]})
        listed = await ada.get("/organization/list-roles")
        assert listed.status_code == 200
        assert {r["role"]: r["permission"] for r in listed.json()} == {
            "broken": None,
            "odd": {"member": 1},
        }
        got = await ada.get("/organization/get-role", params={"roleName": "broken"})
        assert got.status_code == 200 and got.json()["permission"] is None
        kept = await ada.post("/organization/update-role", json={"roleName": "broken", "data": {}})
        assert kept.status_code == 200 and kept.json()["roleData"]["permission"] is None
        fixed = await ada.post(
            "/organization/update-role",
            json={"roleName": "broken", "data": {"permission": {"member": ["create"]}}},
        )
        assert fixed.status_code == 200
        assert await allowed(bob, {"member": ["create"]})
        await db.update_many("member", {"userId": user_id(bob)}, {"role": "member"})
        deleted = await ada.post("/organization/delete-role", json={"roleName": "odd"})
        assert deleted.json() == {"success": True}


async def test_every_change_empties_the_agent_servers_role_cache() -> None:
    plugin = organization(**DYNAMIC)
    async with org_identity(plugins=[plugin]) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        cache: Memberships = plugin.runtime.memberships

        def remember() -> None:
            cache.put_roles(acme["id"], {"stale": True}, cache.version())
            assert cache.roles(acme["id"]) == {"stale": True}

        remember()
        assert (await create_role(ada, "editor", {})).status_code == 200
        assert cache.roles(acme["id"]) is Memberships.MISSING
        remember()
        await ada.post("/organization/update-role", json={"roleName": "editor", "data": {}})
        assert cache.roles(acme["id"]) is Memberships.MISSING
        remember()
        # Reading changes nothing.
        await ada.get("/organization/list-roles")
        await ada.get("/organization/get-role", params={"roleName": "editor"})
        assert cache.roles(acme["id"]) == {"stale": True}
        await ada.post("/organization/delete-role", json={"roleName": "editor"})
        assert cache.roles(acme["id"]) is Memberships.MISSING


async def test_what_the_columns_cannot_hold_is_refused_not_a_server_error(
    database_url: str,
) -> None:
    """better-auth sets no limits and answers 500 on MySQL (an indexed varchar(255) role, a
    TEXT permission); here a name over 255 characters or a permission over 16,000 characters
    of JSON is a validation error on every database."""
    async with dynamic(database_url) as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        long_name = await create_role(ada, "r" * 256, {})
        assert long_name.json() == {
            "message": "[body.role] Too big: expected string to have <=255 characters",
            "code": "VALIDATION_ERROR",
        }
        big = {"member": ["create"] * 2000}
        too_big = await create_role(ada, "big", big)
        assert error(too_big) == (400, "VALIDATION_ERROR")
        assert too_big.json()["message"].startswith("[body.permission] Too big")
        fits = await create_role(ada, "r" * 255, {"member": ["create"] * 1000})
        assert fits.status_code == 200, fits.text
        got = await ada.get("/organization/get-role", params={"roleName": "r" * 255})
        assert got.json()["permission"] == {"member": ["create"] * 1000}
        for data in ({"roleName": "x" * 256}, {"permission": big}):
            refused = await ada.post(
                "/organization/update-role", json={"roleName": "r" * 255, "data": data}
            )
            assert error(refused) == (400, "VALIDATION_ERROR")
