"""`Bastion(memory_scope=...)`: threads owned by the caller's organization, or by the caller
within its organization. A member of one organization never lists, reads, writes or
deletes another's threads, whatever thread ids or resourceIds it sends.

The provider here is a stand-in that knows each user's membership (IdentityAuth with the
organization plugin is tested in test_organization_rbac.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bastion.auth import Membership, RequestContext, SimpleAuth
from bastion.server import Agent, Bastion, tool
from tests.auth.doubles import ScriptedModel, bearer, client, text
from tests.server.memory_kit import open_memory


class OrgAuth(SimpleAuth):
    """SimpleAuth whose users carry their active membership (None: no organization)."""

    def organization_of(self, user: Any) -> Membership | None:
        found: Membership | None = user.get("membership")
        return found


USERS: dict[str, Any] = {
    "ana": {"id": "ana", "membership": Membership("org-a", ("owner",))},
    "bob": {"id": "bob", "membership": Membership("org-a", ("member",), team_id="t1")},
    "eve": {"id": "eve", "membership": Membership("org-b", ("owner",))},
    "solo": {"id": "solo", "membership": None},
}


@tool
async def context_of(context: RequestContext) -> dict[str, Any]:
    """What the pipeline put in the context."""
    return {
        "resourceId": context.resource_id,
        "organizationId": context.organization_id,
        "organizationRoles": list(context.organization_roles),
        "teamId": context.team_id,
    }


@asynccontextmanager
async def serving(scope: str) -> AsyncIterator[httpx.AsyncClient]:
    agent = Agent(id="helper", name="Helper", instructions="", model=ScriptedModel(text("hi")))
    async with open_memory("sqlite://") as memory:
        app = Bastion(
            agents=[agent],
            tools=[context_of],
            auth=OrgAuth(USERS),
            memory=memory,
            memory_scope=scope,  # type: ignore[arg-type]
        )
        async with client(app) as http:
            yield http


async def create(http: httpx.AsyncClient, who: str, thread_id: str) -> httpx.Response:
    return await http.post("/api/memory/threads", json={"threadId": thread_id}, headers=bearer(who))


async def listed(http: httpx.AsyncClient, who: str) -> list[str]:
    found = await http.get("/api/memory/threads", headers=bearer(who))
    assert found.status_code == 200, found.text
    return sorted(thread["id"] for thread in found.json())


async def test_the_context_carries_the_membership_and_a_client_cannot_set_it() -> None:
    async with serving("organization") as http:
        answer = await http.post(
            "/api/tools/context_of/execute",
            json={
                "requestContext": {
                    "organizationId": "org-b",
                    "organization_id": "org-b",
                    "teamId": "t9",
                    "resourceId": "org:org-b",
                }
            },
            headers=bearer("bob"),
        )
        assert answer.json() == {
            "result": {
                "resourceId": "org:org-a",
                "organizationId": "org-a",
                "organizationRoles": ["member"],
                "teamId": "t1",
            }
        }


async def test_organization_scope_shares_threads_within_and_never_across() -> None:
    async with serving("organization") as http:
        assert (await create(http, "ana", "a-plan")).json()["resourceId"] == "org:org-a"
        assert (await create(http, "eve", "b-plan")).status_code == 201
        assert await listed(http, "bob") == ["a-plan"]  # the organization's, shared
        assert await listed(http, "eve") == ["b-plan"]

        # Organization B's thread, by id: as missing as a thread that does not exist.
        for method, path in [
            ("GET", "/api/memory/threads/b-plan"),
            ("GET", "/api/memory/threads/b-plan/messages"),
            ("PATCH", "/api/memory/threads/b-plan"),
            ("DELETE", "/api/memory/threads/b-plan"),
        ]:
            kw: dict[str, Any] = {"json": {"title": "x"}} if method == "PATCH" else {}
            answer = await http.request(method, path, headers=bearer("ana"), **kw)
            assert answer.status_code == 404, (method, path)
            assert answer.json() == {"error": "Thread not found"}
        # Naming B's resource id is refused, in the query and in the body.
        spoofed = await http.get(
            "/api/memory/threads", params={"resourceId": "org:org-b"}, headers=bearer("ana")
        )
        assert spoofed.status_code == 403
        spoofed = await http.post(
            "/api/memory/threads",
            json={"threadId": "x1", "resourceId": "org:org-b"},
            headers=bearer("ana"),
        )
        assert spoofed.status_code == 403
        # A taken id of B cannot be created over it either.
        assert (await create(http, "ana", "b-plan")).status_code == 409
        # A run on B's thread: 404 before the model runs, nothing written.
        run = await http.post(
            "/api/agents/helper/generate",
            json={"messages": "hi", "threadId": "b-plan"},
            headers=bearer("ana"),
        )
        assert run.status_code == 404
        run = await http.post(
            "/api/agents/helper/generate",
            json={"messages": "hi", "threadId": "a-new", "resourceId": "org:org-b"},
            headers=bearer("ana"),
        )
        assert run.status_code == 403
        assert await listed(http, "eve") == ["b-plan"]
        messages = await http.get("/api/memory/threads/b-plan/messages", headers=bearer("eve"))
        assert messages.json() == {"messages": []}


async def test_user_in_organization_scope_keeps_members_apart() -> None:
    async with serving("user_in_organization") as http:
        made = await create(http, "ana", "ana-notes")
        assert made.json()["resourceId"] == "org:org-a:user:ana"
        assert await listed(http, "bob") == []
        answer = await http.get("/api/memory/threads/ana-notes", headers=bearer("bob"))
        assert answer.status_code == 404
        spoofed = await http.get(
            "/api/memory/threads",
            params={"resourceId": "org:org-a:user:ana"},
            headers=bearer("bob"),
        )
        assert spoofed.status_code == 403


async def test_without_an_active_organization_memory_is_refused() -> None:
    async with serving("organization") as http:
        answer = await http.get("/api/memory/threads", headers=bearer("solo"))
        assert answer.status_code == 403
        run = await http.post(
            "/api/agents/helper/generate",
            json={"messages": "hi", "threadId": "t"},
            headers=bearer("solo"),
        )
        assert run.status_code == 403
        # A run without a thread needs no memory owner.
        run = await http.post(
            "/api/agents/helper/generate", json={"messages": "hi"}, headers=bearer("solo")
        )
        assert run.status_code == 200


async def test_user_scope_is_the_default_and_ignores_the_organization() -> None:
    async with serving("user") as http:
        assert (await create(http, "ana", "mine")).json()["resourceId"] == "ana"
        assert await listed(http, "bob") == []


def test_an_organization_scope_needs_a_provider_that_knows_organizations() -> None:
    with pytest.raises(ValueError, match="organization plugin"):
        Bastion(auth=SimpleAuth({"t": {"id": "u"}}), memory_scope="organization")
    with pytest.raises(ValueError, match="memory_scope"):
        Bastion(auth=OrgAuth(USERS), memory_scope="tenant")  # type: ignore[arg-type]
