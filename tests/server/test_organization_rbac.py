"""Organization roles decide what a member may do on the agent server, through HTTP: two
organizations (acme: ana owner, bob member, carl admin; globex: eve owner), the worked
example of docs/organizations.md, the cookie cache on.

S17: removing a member, changing a role or deleting an organization ends what it granted
with the next request. S16: after sign-out the old cookie gets 401."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bastion.identity.db import eq
from bastion.identity.db.types import utc_now
from tests.server.org_kit import REFUNDS, World, org_world


async def run(http: httpx.AsyncClient, agent: str, **body: Any) -> httpx.Response:
    return await http.post(f"/api/agents/{agent}/generate", json={"messages": "hi", **body})


async def whoami(http: httpx.AsyncClient) -> dict[str, Any]:
    answer = await http.post("/api/tools/whoami/execute", json={})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["result"]
    return result


async def test_the_context_carries_the_checked_membership() -> None:
    async with org_world() as world:
        acme, globex = world.orgs["acme"], world.orgs["globex"]
        bob = await whoami(world.users["bob"])
        assert bob["organizationId"] == acme
        assert bob["organizationRoles"] == ["member"]
        assert bob["resourceId"] == f"org:{acme}"
        assert "agents:execute:support" in bob["permissions"]
        assert "refunds:create" not in bob["permissions"]
        carl = await whoami(world.users["carl"])
        assert carl["organizationRoles"] == ["admin"] and "refunds:create" in carl["permissions"]
        assert bob["teamId"] is None  # in no team
        # ana, the creator, is in acme's default team, which her session makes active.
        ana = world.users["ana"]
        teams = (await ana.get("/api/auth/organization/list-teams")).json()
        assert (await whoami(ana))["teamId"] == teams[0]["id"]
        cleared = await ana.post("/api/auth/organization/set-active-team", json={"teamId": None})
        assert cleared.status_code == 200
        assert (await whoami(ana))["teamId"] is None
        eve = await whoami(world.users["eve"])
        assert (eve["organizationId"], eve["organizationRoles"]) == (globex, ["owner"])
        # What a client puts in requestContext is never taken for the membership.
        spoofed = await world.users["bob"].post(
            "/api/tools/whoami/execute",
            json={
                "requestContext": {
                    "organizationId": globex,
                    "organization_roles": ["owner"],
                    "permissions": ["*"],
                }
            },
        )
        assert spoofed.json()["result"]["organizationId"] == acme
        assert "*" not in spoofed.json()["result"]["permissions"]


async def test_members_run_support_but_only_admins_refund() -> None:
    async with org_world() as world:
        bob, carl = world.users["bob"], world.users["carl"]
        # The member runs support; the refund it asks for is refused, and never runs.
        answer = await run(bob, "support")
        assert answer.status_code == 200, answer.text
        assert answer.json()["toolResults"] == [
            {
                "toolCallId": "c1",
                "toolName": "refund",
                "result": {
                    "error": "Permission denied: Missing required permission: refunds:create"
                },
                "isError": True,
            }
        ]
        assert REFUNDS == []
        # Another agent: agents:execute:billing is not the member's.
        refused = await run(bob, "billing")
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "Forbidden",
            "message": "Missing required permission: agents:execute:billing",
        }
        # Calling the tool directly: the route's tools:execute passes, the tool's own
        # permission refuses, before the tool runs.
        direct = await bob.post("/api/tools/refund/execute", json={"data": {"order": "o-2"}})
        assert direct.status_code == 403
        assert direct.json()["message"] == "Missing required permission: refunds:create"
        assert (await bob.get("/api/refunds")).status_code == 403
        assert REFUNDS == []

        # The admin may do all of it.
        world.model.calls.clear()
        answer = await run(carl, "support")
        assert answer.json()["toolResults"][0]["result"] == "refunded o-1"
        assert (await run(carl, "billing")).status_code == 200
        direct = await carl.post("/api/tools/refund/execute", json={"data": {"order": "o-3"}})
        assert direct.json() == {"result": "refunded o-3"}
        assert (await carl.get("/api/refunds")).json() == {"refunds": ["o-1", "o-3"]}
        # Listing and reading agents follow agents:read.
        assert (await bob.get("/api/agents")).status_code == 200
        assert (await bob.get("/api/agents/billing")).status_code == 200


async def test_without_an_active_organization_nothing_is_granted() -> None:
    async with org_world() as world:
        bob = world.users["bob"]
        assert (await world.set_active("bob", None)).status_code == 200
        # No tools:execute either: not even whoami.
        assert (await bob.post("/api/tools/whoami/execute", json={})).status_code == 403
        refused = await run(bob, "support")
        assert refused.status_code == 403
        assert (await bob.get("/api/agents")).status_code == 403
        assert (await bob.get("/api/memory/threads")).status_code == 403


async def test_grants_and_outside_organization_options() -> None:
    rbac = {"grants": {"member": ["agents:execute"]}, "outside_organization": ["agents:read"]}
    async with org_world(rbac=rbac) as world:
        bob = world.users["bob"]
        assert (await run(bob, "billing")).status_code == 200
        assert (await world.set_active("bob", None)).status_code == 200
        assert (await bob.get("/api/agents")).status_code == 200
        assert (await run(bob, "support")).status_code == 403


async def test_threads_belong_to_the_organization_and_never_cross() -> None:
    async with org_world() as world:
        ana, bob, eve = world.users["ana"], world.users["bob"], world.users["eve"]
        acme, globex = world.orgs["acme"], world.orgs["globex"]
        made = await ana.post("/api/memory/threads", json={"threadId": "acme-plan"})
        assert made.status_code == 201 and made.json()["resourceId"] == f"org:{acme}"
        assert (
            await eve.post("/api/memory/threads", json={"threadId": "globex-plan"})
        ).status_code == 201
        listed = await bob.get("/api/memory/threads")
        assert [t["id"] for t in listed.json()] == ["acme-plan"]  # shared within acme

        # eve (globex) against acme's thread: every operation answers "not found".
        for method, path in [
            ("GET", "/api/memory/threads/acme-plan"),
            ("GET", "/api/memory/threads/acme-plan/messages"),
            ("PATCH", "/api/memory/threads/acme-plan"),
            ("DELETE", "/api/memory/threads/acme-plan"),
        ]:
            kw: dict[str, Any] = {"json": {"title": "mine"}} if method == "PATCH" else {}
            answer = await eve.request(method, path, **kw)
            assert answer.status_code == 404, (method, path, answer.text)
        # ... and naming acme's resource id, in the query or the body, is refused.
        for request in [
            eve.get("/api/memory/threads", params={"resourceId": f"org:{acme}"}),
            eve.get("/api/memory/threads/acme-plan", params={"resourceId": f"org:{acme}"}),
            eve.post("/api/memory/threads", json={"threadId": "x", "resourceId": f"org:{acme}"}),
            eve.delete("/api/memory/threads/acme-plan", params={"resourceId": f"org:{acme}"}),
        ]:
            assert (await request).status_code == 403
        assert (await run(eve, "support", threadId="acme-plan")).status_code == 404
        spoof = await run(eve, "support", threadId="new", resourceId=f"org:{acme}")
        assert spoof.status_code == 403
        # eve cannot make acme her active organization: she is not a member (and, as in
        # better-auth, the refused attempt leaves her session with none in storage, which a
        # POST reads; a GET may still read globex from the cookie cache, and she is still a
        # member there, so it is hers either way).
        assert (await world.set_active("eve", "acme")).status_code == 403
        assert (await eve.post("/api/tools/whoami/execute", json={})).status_code == 403
        assert (await world.set_active("eve", "globex")).status_code == 200
        assert (await whoami(eve))["organizationId"] == globex
        listed = await eve.get("/api/memory/threads")
        assert [t["id"] for t in listed.json()] == ["globex-plan"]
        # acme's thread is untouched, and has no message from globex.
        thread = await ana.get("/api/memory/threads/acme-plan")
        assert thread.status_code == 200 and thread.json()["title"] is None
        messages = await ana.get("/api/memory/threads/acme-plan/messages")
        assert messages.json() == {"messages": []}


async def test_user_in_organization_scope() -> None:
    async with org_world(memory_scope="user_in_organization") as world:
        ana, bob = world.users["ana"], world.users["bob"]
        made = await ana.post("/api/memory/threads", json={"threadId": "ana-notes"})
        acme = world.orgs["acme"]
        assert made.json()["resourceId"] == f"org:{acme}:user:{world.ids['ana']}"
        assert (await bob.get("/api/memory/threads")).json() == []
        assert (await bob.get("/api/memory/threads/ana-notes")).status_code == 404


async def test_s17_deleting_the_organization_ends_its_grants_at_once() -> None:
    async with org_world() as world:
        bob = world.users["bob"]
        assert (await run(bob, "support")).status_code == 200
        made = await bob.post("/api/memory/threads", json={"threadId": "bob-acme"})
        assert made.status_code == 201
        deleted = await world.users["ana"].post(
            "/api/auth/organization/delete", json={"organizationId": world.orgs["acme"]}
        )
        assert deleted.status_code == 200, deleted.text
        # bob's cookie cache still names acme; the membership is gone, and so are the grants.
        assert (await bob.post("/api/tools/whoami/execute", json={})).status_code == 403
        assert (await run(bob, "support")).status_code == 403
        assert (await bob.get("/api/agents")).status_code == 403
        assert (await bob.get("/api/memory/threads")).status_code == 403
        assert (await bob.get("/api/memory/threads/bob-acme")).status_code == 403


async def test_s17_removing_a_member_or_changing_its_role_applies_at_once() -> None:
    async with org_world() as world:
        ana, bob, carl = world.users["ana"], world.users["bob"], world.users["carl"]
        acme = world.orgs["acme"]
        assert (await run(bob, "billing")).status_code == 403
        promoted = await ana.post(
            "/api/auth/organization/update-member-role",
            json={"memberId": await _member_id(world, "bob"), "role": "admin"},
        )
        assert promoted.status_code == 200, promoted.text
        assert (await run(bob, "billing")).status_code == 200
        removed = await ana.post(
            "/api/auth/organization/remove-member",
            json={"memberIdOrEmail": "carl@example.com", "organizationId": acme},
        )
        assert removed.status_code == 200, removed.text
        assert (await run(carl, "support")).status_code == 403
        direct = await carl.post("/api/tools/refund/execute", json={"data": {"order": "o-9"}})
        assert direct.status_code == 403
        assert (await carl.get("/api/memory/threads")).status_code == 403
        assert "o-9" not in REFUNDS


async def _member_id(world: World, name: str) -> str:
    member = await world.identity.db.find_one("member", eq("userId", world.ids[name]))
    assert member is not None
    return str(member["id"])


async def test_s16_after_sign_out_the_old_cookie_gets_401() -> None:
    async with org_world() as world:
        bob = world.users["bob"]
        old = dict(bob.cookies)
        assert (await run(bob, "support")).status_code == 200
        assert (await bob.post("/api/auth/sign-out", json={})).status_code == 200
        bob.cookies.clear()
        for name, value in old.items():
            bob.cookies.set(name, value)
        assert (await run(bob, "support")).status_code == 401
        assert (await bob.post("/api/tools/whoami/execute", json={})).status_code == 401
        assert (await bob.post("/api/memory/threads", json={})).status_code == 401


async def test_stored_roles_grant_through_the_same_statements() -> None:
    async with org_world(dynamic_roles=True) as world:
        # A role acme stores for itself (the row create-role writes), held beside "member".
        await world.identity.db.create(
            "organizationRole",
            {
                "organizationId": world.orgs["acme"],
                "role": "refunder",
                "permission": json.dumps(
                    {"refunds": ["create"], "agents": ["execute"], "tools": ["execute"]}
                ),
                "createdAt": utc_now(),
            },
        )
        given = await world.users["ana"].post(
            "/api/auth/organization/update-member-role",
            json={"memberId": await _member_id(world, "bob"), "role": ["member", "refunder"]},
        )
        assert given.status_code == 200, given.text
        bob = world.users["bob"]
        granted = await whoami(bob)
        assert granted["organizationRoles"] == ["member", "refunder"]
        assert {"refunds:create", "agents:execute", "agents:execute:support"} <= set(
            granted["permissions"]
        )
        direct = await bob.post("/api/tools/refund/execute", json={"data": {"order": "o-4"}})
        assert direct.json() == {"result": "refunded o-4"}
        assert (await run(bob, "billing")).status_code == 200
        # A stored role is its organization's only: carl, an admin of acme, is given
        # "refunder" in globex, where no such role is stored: it grants nothing there.
        await world.add_member("carl", "globex", "refunder")
        assert (await world.set_active("carl", "globex")).status_code == 200
        carl = world.users["carl"]
        assert (await carl.post("/api/tools/whoami/execute", json={})).status_code == 403
        assert (await run(carl, "support")).status_code == 403


async def test_s17_creating_and_changing_a_stored_role_applies_at_once() -> None:
    async with org_world(dynamic_roles=True) as world:
        ana, bob = world.users["ana"], world.users["bob"]
        # A role not stored yet cannot be given through update-member-role: written directly.
        member_id = await _member_id(world, "bob")
        await world.identity.db.update("member", eq("id", member_id), {"role": "member,refunder"})
        refund = {"data": {"order": "o-5"}}
        # No role "refunder" is stored yet: it grants nothing (and acme's roles are cached).
        assert (await bob.post("/api/tools/refund/execute", json=refund)).status_code == 403
        created = await ana.post(
            "/api/auth/organization/create-role",
            json={"role": "refunder", "permission": {"refunds": ["create"]}},
        )
        assert created.status_code == 200, created.text
        allowed = await bob.post("/api/tools/refund/execute", json=refund)
        assert allowed.json() == {"result": "refunded o-5"}
        changed = await ana.post(
            "/api/auth/organization/update-role",
            json={"roleName": "refunder", "data": {"permission": {"agents": ["read"]}}},
        )
        assert changed.status_code == 200, changed.text
        assert (await bob.post("/api/tools/refund/execute", json=refund)).status_code == 403
        assert REFUNDS == ["o-5"]
