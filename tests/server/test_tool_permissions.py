"""`requires_permission` on a tool: refused with 403 before the tool runs over HTTP, and as a
refusal result inside an agent run, the tool's body never running in either case."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from bastion.auth import RequestContext, SimpleAuth, StaticRBAC
from bastion.server import Agent, Bastion, Tool, ToolPermissionDenied, tool
from tests.auth.doubles import ScriptedModel, bearer, calls, client, text

RAN: list[str] = []


@tool(requires_permission="refunds:create")
async def refund(order: str) -> dict[str, Any]:
    """Refund an order."""
    RAN.append(order)
    return {"refunded": order}


class Lookup(Tool):
    """Look an order up (a class tool that accepts either of two permissions)."""

    id = "lookup"
    requires_permission = ("orders:read", "orders:*")

    class Input(BaseModel):
        order: str

    async def run(self, input: Input, context: RequestContext) -> str:
        RAN.append("lookup " + input.order)
        return input.order


ROLES = {
    "admin": ["*"],
    "clerk": ["tools:execute", "agents:*", "orders:read"],
    "member": ["tools:execute", "agents:*"],
}
USERS = {
    "admin": {"id": "u-admin", "roles": ["admin"]},
    "clerk": {"id": "u-clerk", "roles": ["clerk"]},
    "member": {"id": "u-member", "roles": ["member"]},
}


def make_app(model: ScriptedModel | None = None) -> Bastion:
    agent = Agent(
        name="Support",
        instructions="",
        model=model or ScriptedModel(text("ok")),
        tools=[refund, Lookup()],
    )
    return Bastion(
        agents=[agent],
        tools=[refund, Lookup()],
        auth=SimpleAuth(USERS),
        rbac=StaticRBAC(roles=ROLES),
    )


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


async def test_direct_call_without_the_permission_is_403_and_the_tool_does_not_run() -> None:
    async with client(make_app()) as http:
        refused = await http.post(
            "/api/tools/refund/execute", json={"data": {"order": "o1"}}, headers=bearer("member")
        )
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "Forbidden",
            "message": "Missing required permission: refunds:create",
        }
        # Refused before the input is looked at: no 400 tells the schema to a refused caller.
        bad_input = await http.post(
            "/api/tools/refund/execute", json={"data": {}}, headers=bearer("member")
        )
        assert bad_input.status_code == 403
        allowed = await http.post(
            "/api/tools/refund/execute", json={"data": {"order": "o2"}}, headers=bearer("admin")
        )
        assert allowed.json() == {"result": {"refunded": "o2"}}
    assert RAN == ["o2"]


async def test_any_of_several_permissions_and_a_client_cannot_claim_permissions() -> None:
    async with client(make_app()) as http:
        by_clerk = await http.post(
            "/api/tools/lookup/execute", json={"data": {"order": "o3"}}, headers=bearer("clerk")
        )
        assert by_clerk.json() == {"result": "o3"}
        spoofed = await http.post(
            "/api/tools/lookup/execute",
            json={
                "data": {"order": "o4"},
                "requestContext": {"permissions": ["*"], "roles": ["admin"]},
            },
            headers=bearer("member"),
        )
        assert spoofed.status_code == 403
        assert "orders:read or orders:*" in spoofed.json()["message"]
    assert RAN == ["lookup o3"]


async def test_inside_an_agent_run_the_model_gets_a_refusal_and_the_tool_does_not_run() -> None:
    model = ScriptedModel(calls(("c1", "refund", {"order": "o5"})), text("sorry"))
    async with client(make_app(model)) as http:
        run = await http.post(
            "/api/agents/support/generate", json={"messages": "refund o5"}, headers=bearer("member")
        )
        assert run.status_code == 200, run.text
        assert run.json()["toolResults"] == [
            {
                "toolCallId": "c1",
                "toolName": "refund",
                "result": {
                    "error": "Permission denied: Missing required permission: refunds:create"
                },
                "isError": True,
            }
        ]
        assert RAN == []
        model.calls.clear()
        run = await http.post(
            "/api/agents/support/generate", json={"messages": "refund o6"}, headers=bearer("admin")
        )
        assert run.json()["toolResults"][0]["result"] == {"refunded": "o5"}
    assert RAN == ["o5"]


async def test_streamed_runs_refuse_the_same_way() -> None:
    model = ScriptedModel(calls(("c1", "refund", {"order": "o7"})), text("sorry"))
    async with client(make_app(model)) as http:
        run = await http.post(
            "/api/agents/support/stream", json={"messages": "refund"}, headers=bearer("member")
        )
        assert run.status_code == 200
        assert "Missing required permission: refunds:create" in run.text
    assert RAN == []


async def test_in_process_execute_checks_the_context_it_gets() -> None:
    with pytest.raises(ToolPermissionDenied) as refused:
        await refund.execute({"order": "o8"}, RequestContext(user={"id": "x"}))
    assert refused.value.required == ("refunds:create",)
    granted = RequestContext(user={"id": "x"}, permissions=("refunds:*",))
    assert await refund.execute({"order": "o9"}, granted) == {"refunded": "o9"}
    assert RAN == ["o9"]


def test_a_permission_without_rbac_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="tool 'refund' requires a permission"):
        Bastion(tools=[refund], auth=SimpleAuth(USERS))
    agent = Agent(name="A", instructions="", model=ScriptedModel(), tools=[refund])
    with pytest.raises(ValueError, match="rbac"):
        Bastion(agents=[agent], auth=SimpleAuth(USERS))
    with pytest.raises(ValueError, match="requires_permission"):
        tool(id="empty", requires_permission="")(lambda: None)
    with pytest.raises(ValueError, match="requires_permission"):
        Tool(id="t", fn=lambda i: i, input_schema={"type": "object"}, requires_permission=[])
