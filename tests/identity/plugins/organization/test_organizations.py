"""Organizations through HTTP: create, check-slug, update, delete, get, get-full, list,
set-active and has-permission, with better-auth 1.7.25's answers and refusals."""

from __future__ import annotations

from bastion.identity import create_access_control, organization
from tests.identity.plugins.organization.kit import create_org, error, org_identity


async def test_create_makes_the_creator_owner_and_the_organization_active() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        created = await create_org(ada, "acme", metadata={"plan": "pro"}, logo="https://l/x.png")
        assert created["slug"] == "acme" and created["metadata"] == {"plan": "pro"}
        assert [(m["userId"], m["role"]) for m in created["members"]] == [(ada.user["id"], "owner")]
        session = (await ada.get("/get-session")).json()["session"]
        assert session["activeOrganizationId"] == created["id"]
        # The stored metadata is a JSON string; get and list send it as stored.
        listed = (await ada.get("/organization/list")).json()
        assert [o["id"] for o in listed] == [created["id"]]
        assert listed[0]["metadata"] == '{"plan":"pro"}'
        full = (await ada.get("/organization/get-full-organization")).json()
        assert full["id"] == created["id"] and full["invitations"] == []
        assert full["members"][0]["user"] == {
            "id": ada.user["id"],
            "name": "Ada",
            "email": "ada@example.com",
            "image": None,
        }
        # keepCurrentActiveOrganization leaves the session alone
        other = await create_org(ada, "beta", keepCurrentActiveOrganization=True)
        session = (await ada.get("/get-session")).json()["session"]
        assert session["activeOrganizationId"] == created["id"] != other["id"]


async def test_slugs_are_unique() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        again = await ada.post("/organization/create", json={"name": "A", "slug": "acme"})
        assert error(again) == (400, "ORGANIZATION_ALREADY_EXISTS")
        taken = await ada.post("/organization/check-slug", json={"slug": "acme"})
        assert error(taken) == (400, "ORGANIZATION_SLUG_ALREADY_TAKEN")
        free = await ada.post("/organization/check-slug", json={"slug": "free"})
        assert free.json() == {"status": True}
        beta = await create_org(ada, "beta")
        clash = await ada.post(
            "/organization/update", json={"organizationId": beta["id"], "data": {"slug": "acme"}}
        )
        assert error(clash) == (400, "ORGANIZATION_SLUG_ALREADY_TAKEN")


async def test_update_and_delete_need_the_roles_permissions() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        acme = await create_org(ada, "acme")
        updated = await ada.post(
            "/organization/update",
            json={"organizationId": acme["id"], "data": {"name": "Acme Inc", "metadata": {"a": 1}}},
        )
        assert updated.status_code == 200
        assert (updated.json()["name"], updated.json()["metadata"]) == ("Acme Inc", {"a": 1})
        # Bob is not a member: the same answer whatever the id
        for organization_id in (acme["id"], "no-such-organization"):
            refused = await bob.post(
                "/organization/update",
                json={"organizationId": organization_id, "data": {"name": "x"}},
            )
            assert error(refused) == (400, "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION")
            gone = await bob.post("/organization/delete", json={"organizationId": organization_id})
            assert error(gone) == (400, "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION")
        signed_out = await org.anonymous.post(
            "/organization/update",
            json={"data": {"name": "x"}},
            headers={"origin": "http://localhost:3000"},
        )
        assert signed_out.status_code == 401
        deleted = await ada.post("/organization/delete", json={"organizationId": acme["id"]})
        assert deleted.status_code == 200 and deleted.json()["id"] == acme["id"]
        assert (await ada.get("/organization/list")).json() == []
        session = (await ada.get("/get-session")).json()["session"]
        assert session["activeOrganizationId"] is None


async def test_set_active_and_reading_another_organization() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        eve = await org.user("eve@example.com", "Eve")
        acme = await create_org(ada, "acme")
        other = await create_org(eve, "evil")
        by_slug = await ada.post("/organization/set-active", json={"organizationSlug": "acme"})
        assert by_slug.json()["id"] == acme["id"]
        for body in ({"organizationId": other["id"]}, {"organizationSlug": "evil"}):
            refused = await ada.post("/organization/set-active", json=body)
            assert error(refused) == (403, "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION")
        # better-auth clears the active organization on such a refusal
        session = (await ada.get("/get-session", params={"disableCookieCache": "true"})).json()
        assert session["session"]["activeOrganizationId"] is None
        unknown = await ada.post("/organization/set-active", json={"organizationSlug": "nope"})
        assert error(unknown) == (400, "ORGANIZATION_NOT_FOUND")
        cleared = await ada.post("/organization/set-active", json={"organizationId": None})
        assert cleared.status_code == 200 and cleared.json() is None
        full = await ada.get("/organization/get-full-organization")
        assert full.status_code == 200 and full.json() is None
        foreign = await ada.get(
            "/organization/get-full-organization", params={"organizationId": other["id"]}
        )
        # better-auth answers 403 "not a member" here; Bastion, as for an unknown id
        assert error(foreign) == (400, "ORGANIZATION_NOT_FOUND")
        one = await ada.get("/organization/get-organization", params={"organizationSlug": "acme"})
        assert one.json()["id"] == acme["id"]


async def test_has_permission_follows_the_role() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        check = lambda permissions: ada.post(  # noqa: E731
            "/organization/has-permission",
            json={"organizationId": acme["id"], "permissions": permissions},
        )
        assert (await check({"organization": ["delete"]})).json() == {
            "error": None,
            "success": True,
        }
        assert (await check({"billing": ["read"]})).json()["success"] is False
        both = await ada.post(
            "/organization/has-permission",
            json={"permissions": {"member": ["create"]}, "permission": {"member": ["create"]}},
        )
        assert error(both) == (400, "VALIDATION_ERROR")
        eve = await org.user("eve@example.com", "Eve")
        stranger = await eve.post(
            "/organization/has-permission",
            json={"organizationId": acme["id"], "permissions": {"member": ["create"]}},
        )
        assert error(stranger) == (401, "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION")
        none_active = await eve.post(
            "/organization/has-permission", json={"permissions": {"member": ["create"]}}
        )
        assert error(none_active) == (400, "NO_ACTIVE_ORGANIZATION")


async def test_custom_roles_replace_the_defaults() -> None:
    ac = create_access_control({"report": ["create", "read"], "organization": ["update", "delete"]})
    roles = {"owner": ac.new_role({"report": ["create", "read"], "organization": ["update"]})}
    async with org_identity(plugin_options={"ac": ac, "roles": roles}) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        allowed = await ada.post(
            "/organization/has-permission", json={"permissions": {"report": ["create"]}}
        )
        assert allowed.json()["success"] is True
        refused = await ada.post("/organization/delete", json={"organizationId": acme["id"]})
        assert error(refused) == (403, "YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_ORGANIZATION")


async def test_organization_creation_limits() -> None:
    async with org_identity(plugin_options={"organization_limit": 1}) as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        second = await ada.post("/organization/create", json={"name": "B", "slug": "b"})
        assert error(second) == (403, "YOU_HAVE_REACHED_THE_MAXIMUM_NUMBER_OF_ORGANIZATIONS")
    async with org_identity(plugin_options={"allow_user_to_create_organization": False}) as org:
        ada = await org.user("ada@example.com")
        refused = await ada.post("/organization/create", json={"name": "A", "slug": "a"})
        assert error(refused) == (403, "YOU_ARE_NOT_ALLOWED_TO_CREATE_A_NEW_ORGANIZATION")
        # the server may still create one for a user
        made = await org.identity.api.create_organization(
            body={"name": "A", "slug": "a", "userId": ada.user["id"]}
        )
        assert made["members"][0]["userId"] == ada.user["id"]


def test_dynamic_roles_need_an_access_control() -> None:
    import pytest

    with pytest.raises(ValueError, match="needs an `ac`"):
        organization(dynamic_access_control={"enabled": True})


async def test_the_openapi_document_lists_every_organization_endpoint() -> None:
    """open_api() documents the plugin's endpoints, their bodies' schemas included, without
    a default it cannot write (a warning is an error here)."""
    import warnings

    from bastion.identity import open_api

    ac = create_access_control({"report": ["read"]})
    plugin = organization(teams={"enabled": True}, dynamic_access_control={"enabled": True}, ac=ac)
    async with org_identity(plugins=[plugin, open_api()]) as org:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            document = await org.anonymous.get("/open-api/generate-schema")
        assert document.status_code == 200
        paths = document.json()["paths"]
        expected = {e.path for e in plugin.endpoints if not e.server_only}
        assert expected <= set(paths), sorted(expected - set(paths))
        assert len(expected) == 36
