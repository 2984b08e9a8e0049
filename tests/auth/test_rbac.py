"""RBAC (spec §2.10): grants, derived permissions, roles, and the 403 it answers."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from bastion.auth import DEFAULT_ROLES, StaticRBAC
from bastion.auth.rbac import (
    RoutePermission,
    derive_permission,
    has_any_permission,
    permission_grants,
)
from bastion.server import Agent, Bastion, route
from tests.auth.doubles import Recording, ScriptedModel, bearer, client


@pytest.mark.parametrize(
    ("grant", "required", "expected"),
    [
        ("*", "agents:read", True),
        ("*", "agents:delete:x", True),
        ("*:read", "agents:read", True),
        ("*:read", "agents:read:weather", True),
        ("*:read", "agents:write", False),
        ("agents:*", "agents:execute:weather", True),
        ("agents:*", "tools:read", False),
        ("agents:read", "agents:read", True),
        ("agents:read", "agents:read:weather", True),
        ("agents:read:weather", "agents:read:weather", True),
        ("agents:read:weather", "agents:read:other", False),
        # An id grant does not grant the whole resource.
        ("agents:read:weather", "agents:read", False),
        # An id is matched whole, even when it contains ':'.
        ("agents:read:a", "agents:read:a:b", False),
        ("agents:read:a:b", "agents:read:a:b", True),
        ("agents:read", "agents:write", False),
        ("tools:read", "agents:read", False),
    ],
)
def test_grants(grant: str, required: str, expected: bool) -> None:
    assert permission_grants(grant, required) is expected


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        ("/api/agents", "GET", "agents:read"),
        ("/api/agents/x/generate", "POST", "agents:execute"),
        ("/api/agents/x/stream", "POST", "agents:execute"),
        ("/api/tools/x/execute", "POST", "tools:execute"),
        ("/api/memory/threads", "POST", "memory:write"),
        ("/api/memory/threads/t", "PATCH", "memory:write"),
        ("/api/memory/threads/t", "PUT", "memory:write"),
        ("/api/memory/threads/t", "DELETE", "memory:delete"),
        ("/api/memory/search", "POST", "memory:execute"),
        ("/api/stored/agents/x", "GET", "stored-agents:read"),
        ("/api/stored/prompts", "GET", "stored:read"),
        ("/.well-known/x/agent-card.json", "GET", "a2a:read"),
        ("/api", "GET", None),
        ("/api/x", "OPTIONS", None),
    ],
)
def test_derivation(path: str, method: str, expected: str | None) -> None:
    assert derive_permission(path, method) == expected


@pytest.mark.parametrize(
    ("template", "method", "params", "expected"),
    [
        ("/api/agents", "GET", {}, "agents:read"),
        ("/api/agents/{agentId}", "GET", {"agentId": "weather"}, "agents:read:weather"),
        ("/api/agents/{agentId}/generate", "POST", {"agentId": "w"}, "agents:execute:w"),
        ("/api/tools/{toolId}/execute", "POST", {"toolId": "t"}, "tools:execute:t"),
        # The id is the segment right after the resource, nothing deeper.
        ("/api/memory/threads/{threadId}", "GET", {"threadId": "t"}, "memory:read"),
        ("/api/stored/agents/{id}", "GET", {"id": "a"}, "stored-agents:read:a"),
    ],
)
def test_route_permission_from_template(
    template: str, method: str, params: dict[str, str], expected: str
) -> None:
    permission = RoutePermission.of(template, method)
    assert permission is not None
    assert permission.render(params) == expected


def test_default_roles() -> None:
    rbac = StaticRBAC()
    assert rbac.roles["owner"] == ("*",)
    assert "*:delete" not in rbac.roles["admin"]
    assert set(rbac.roles) == set(DEFAULT_ROLES)


async def test_members_keep_and_delete_their_threads_but_viewers_do_not() -> None:
    rbac = StaticRBAC(get_user_roles=lambda user: user["roles"])
    member = await rbac.get_permissions({"id": "m", "roles": ["member"]})
    viewer = await rbac.get_permissions({"id": "v", "roles": ["viewer"]})
    for needed in ("memory:write", "memory:delete"):
        assert has_any_permission(member, [needed])
        assert not has_any_permission(viewer, [needed])
    assert not has_any_permission(member, ["agents:delete"])


def test_each_callers_grants_decide_however_the_calls_interleave() -> None:
    # The same tuple of grants comes on every request of a role set, and its set is made
    # once: a tuple that holds other grants, even an equal-looking list, is its own.
    reader, nobody, writer = ("memory:read",), ("agents:read",), ("memory:*",)
    calls = [
        (reader, "memory:read", True),
        (reader, "memory:write", False),
        (nobody, "memory:read", False),
        (reader, "memory:read", True),
        (writer, "memory:write", True),
        (nobody, "memory:write", False),
        (("memory:read",), "memory:read", True),  # equal to `reader`, another object
        (["memory:write"], "memory:write", True),
        (reader, "memory:write", False),
        ({"memory:write"}, "memory:write", True),
        (frozenset(), "memory:read", False),
    ]
    for grants, needed, allowed in calls * 2:
        assert has_any_permission(grants, [needed]) is allowed, (grants, needed)


async def test_roles_inherit() -> None:
    rbac = StaticRBAC(
        roles={
            "reader": ["agents:read"],
            "runner": {"permissions": ["agents:execute"], "inherits": ["reader"]},
            "lead": {"inherits": ["runner"], "permissions": ["tools:*"]},
        },
        get_user_roles=lambda user: user["roles"],
    )
    assert await rbac.get_permissions({"roles": ["lead"]}) == (
        "tools:*",
        "agents:execute",
        "agents:read",
    )
    assert await rbac.get_roles({"roles": ["reader"]}) == ("reader",)


@pytest.mark.parametrize(
    "roles",
    [
        {"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}},
        {"a": {"inherits": ["missing"]}},
        {"a": {"permissions": "agents:read"}},
        {"a": {"grants": ["x"]}},
    ],
)
def test_bad_roles_fail_at_construction(roles: Any) -> None:
    with pytest.raises(ValueError):
        StaticRBAC(roles=roles)


async def test_role_mapping_and_default() -> None:
    rbac = StaticRBAC(
        roles={"viewer": ["*:read"]},
        role_mapping={"org:admin": ["*"], "_default": ["agents:read"]},
        get_user_roles=lambda user: user["roles"],
    )
    assert await rbac.get_permissions({"roles": ["org:admin"]}) == ("*",)
    assert await rbac.get_permissions({"roles": ["viewer"]}) == ("*:read",)
    assert await rbac.get_permissions({"roles": ["stranger"]}) == ("agents:read",)


async def test_default_user_roles() -> None:
    rbac = StaticRBAC()
    # better-auth's admin plugin: "admin,user" on the user of a session.
    assert await rbac.get_roles({"session": {}, "user": {"role": "admin,viewer"}}) == (
        "admin",
        "viewer",
    )
    assert await rbac.get_roles({"roles": ["owner"]}) == ("owner",)
    assert await rbac.get_roles({"id": "x"}) == ()


async def test_async_get_user_roles() -> None:
    async def roles(user: Any) -> list[str]:
        return ["viewer"]

    assert await StaticRBAC(get_user_roles=roles).get_permissions({}) == ("*:read",)


USERS = {
    "owner": {"id": "o", "roles": ["owner"]},
    "viewer": {"id": "v", "roles": ["viewer"]},
    "weather": {"id": "w", "roles": ["weather-reader"]},
    "other": {"id": "x", "roles": ["other-reader"]},
    "nobody": {"id": "n", "roles": []},
}


def rbac_app(**kw: Any) -> Bastion:
    agents = [
        Agent(name="weather", instructions="", model=ScriptedModel()),
        Agent(name="other", instructions="", model=ScriptedModel()),
    ]
    roles = {
        **DEFAULT_ROLES,
        "weather-reader": ["agents:read:weather"],
        "other-reader": ["agents:read:other"],
    }
    return Bastion(
        agents=agents,
        auth=Recording(USERS),
        rbac=StaticRBAC(roles=roles, get_user_roles=lambda user: user["roles"]),
        **kw,
    )


async def test_viewer_reads_but_cannot_run() -> None:
    async with client(rbac_app()) as http:
        assert (await http.get("/api/agents", headers=bearer("viewer"))).status_code == 200
        response = await http.post(
            "/api/agents/weather/generate", json={"messages": "hi"}, headers=bearer("viewer")
        )
        assert response.status_code == 403
        assert response.json() == {
            "error": "Forbidden",
            "message": "Missing required permission: agents:execute:weather",
        }
        owner = await http.post(
            "/api/agents/weather/generate", json={"messages": "hi"}, headers=bearer("owner")
        )
        assert owner.status_code == 200


async def test_resource_grant_covers_ids_and_an_id_grant_only_its_own() -> None:
    async with client(rbac_app()) as http:
        # agents:read (via *:read) grants agents:read:weather.
        assert (await http.get("/api/agents/weather", headers=bearer("viewer"))).status_code == 200
        # agents:read:weather grants that agent only.
        assert (await http.get("/api/agents/weather", headers=bearer("weather"))).status_code == 200
        denied = await http.get("/api/agents/weather", headers=bearer("other"))
        assert denied.status_code == 403
        assert denied.json()["message"] == "Missing required permission: agents:read:weather"
        # ... and not the listing, which needs agents:read.
        assert (await http.get("/api/agents", headers=bearer("weather"))).status_code == 403


async def test_user_without_roles_is_denied_everything_derived() -> None:
    async with client(rbac_app()) as http:
        response = await http.get("/api/tools", headers=bearer("nobody"))
        assert response.status_code == 403
        assert response.json()["message"] == "Missing required permission: tools:read"


async def test_requires_permission_any_of() -> None:
    async def report(request: Request) -> Any:
        return {"ok": True}

    app = rbac_app(
        routes=[route("/reports", report, requires_permission=["reports:read", "agents:read"])]
    )
    async with client(app) as http:
        assert (await http.get("/api/reports", headers=bearer("viewer"))).status_code == 200
        denied = await http.get("/api/reports", headers=bearer("nobody"))
        assert denied.status_code == 403
        assert denied.json() == {
            "error": "Forbidden",
            "message": "Missing required permission: reports:read or agents:read",
        }


async def test_derivation_reads_the_template_not_the_parameter_value() -> None:
    """A POST to /api/notes/{name} is a write even when the name is "generate"."""

    async def save(request: Request) -> Any:
        return {"saved": request.path_params["name"]}

    roles = {"runner": ["*:execute"], "writer": ["notes:write"]}
    users = {"runner": {"roles": ["runner"]}, "writer": {"roles": ["writer"]}}
    app = Bastion(
        auth=Recording(users),
        rbac=StaticRBAC(roles=roles, get_user_roles=lambda user: user["roles"]),
        routes=[route("/notes/{name}", save, methods=["POST"])],
    )
    async with client(app) as http:
        runner = await http.post("/api/notes/generate", headers=bearer("runner"))
        assert runner.status_code == 403
        assert runner.json()["message"] == "Missing required permission: notes:write:generate"
        writer = await http.post("/api/notes/generate", headers=bearer("writer"))
        assert writer.json() == {"saved": "generate"}


async def test_roles_and_permissions_reach_the_context() -> None:
    seen: dict[str, Any] = {}

    async def me(request: Request) -> Any:
        context = request.state.context
        seen.update(roles=context.roles, permissions=context.permissions)
        return {}

    app = rbac_app(routes=[route("/me", me, requires_permission="agents:read")])
    async with client(app) as http:
        assert (await http.get("/api/me", headers=bearer("viewer"))).status_code == 200
    assert seen == {"roles": ("viewer",), "permissions": ("*:read",)}


async def test_failing_rbac_provider_grants_nothing() -> None:
    class Broken:
        async def get_roles(self, user: Any) -> list[str]:
            raise RuntimeError("directory down")

        async def get_permissions(self, user: Any) -> list[str]:
            raise RuntimeError("directory down")

    app = Bastion(auth=Recording(USERS), rbac=Broken())
    async with client(app) as http:
        response = await http.get("/api/agents", headers=bearer("owner"))
        assert response.status_code == 403
        assert response.json()["message"] == "Missing required permission: agents:read"


async def test_public_routes_need_no_permission() -> None:
    async with client(rbac_app()) as http:
        assert (await http.get("/api")).status_code == 200
        assert (await http.get("/health")).status_code == 200


def test_rbac_needs_auth() -> None:
    with pytest.raises(ValueError):
        Bastion(rbac=StaticRBAC())
