"""The agent loop: model, tools with the request context, step limit, streaming."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.auth import RequestContext, bind_context
from bastion.server import (
    Agent,
    FinishEvent,
    Message,
    ModelError,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    tool,
)
from bastion.server.models import Usage
from tests.auth.doubles import ScriptedModel, calls, text


@tool
async def whoami(context: RequestContext) -> dict[str, Any]:
    """The caller."""
    return {"user": context.user, "resourceId": context.resource_id}


@tool
def add(a: int, b: int) -> int:
    """Add two integers (sync: runs in a thread)."""
    return a + b


@tool
async def refuse() -> None:
    """Always refuses."""
    raise PermissionError("admins only")


@tool
async def crash() -> None:
    """Always fails."""
    raise RuntimeError("database password is hunter2")


CTX = RequestContext(user={"id": "ana"}, resource_id="res-ana")


def agent(model: ScriptedModel, **kw: Any) -> Agent:
    kw.setdefault("tools", [whoami, add, refuse, crash])
    return Agent(name="Helper Bot", instructions="Be brief.", model=model, **kw)


async def test_text_only() -> None:
    model = ScriptedModel(text("Hello!", tokens=3))
    result = await agent(model).generate("Hi", context=CTX)
    assert result.text == "Hello!"
    assert result.tool_calls == () and result.tool_results == ()
    assert result.finish_reason == "stop"
    assert result.usage == Usage(3, 3)
    assert result.steps == 1
    (messages, specs) = model.calls[0]
    assert messages == [Message("system", "Be brief."), Message("user", "Hi")]
    assert [s.name for s in specs] == ["whoami", "add", "refuse", "crash"]
    assert specs[1].parameters["properties"].keys() == {"a", "b"}


async def test_tool_calls_then_text_with_the_context() -> None:
    model = ScriptedModel(
        calls(("c1", "whoami", {}), ("c2", "add", {"a": 2, "b": 3}), tokens=2),
        text("done", tokens=5),
    )
    result = await agent(model).generate([Message("user", "who?")], context=CTX)
    assert result.text == "done"
    assert [c.name for c in result.tool_calls] == ["whoami", "add"]
    assert [(r.tool_call_id, r.result) for r in result.tool_results] == [
        ("c1", {"user": {"id": "ana"}, "resourceId": "res-ana"}),
        ("c2", 5),
    ]
    assert result.usage == Usage(7, 7), "usage is summed over steps"
    assert result.steps == 2
    # The second call saw the assistant's calls and one tool message per result.
    second = model.calls[1][0]
    assert second[2].role == "assistant" and len(second[2].tool_calls) == 2
    assert [(m.role, m.tool_call_id, m.content) for m in second[3:]] == [
        ("tool", "c1", '{"user": {"id": "ana"}, "resourceId": "res-ana"}'),
        ("tool", "c2", "5"),
    ]
    assert [m.role for m in result.messages] == ["assistant", "tool", "tool", "assistant"]
    assert result.to_json()["toolResults"][1] == {
        "toolCallId": "c2",
        "toolName": "add",
        "result": 5,
    }


async def test_context_defaults_to_the_bound_one() -> None:
    model = ScriptedModel(calls(("c1", "whoami", {})), text("ok"))
    with bind_context(CTX):
        result = await agent(model).generate("who?")
    assert result.tool_results[0].result["user"] == {"id": "ana"}


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (
            ("c1", "add", {"a": "x", "b": 1}),
            "Invalid arguments: a: Input should be a valid integer",
        ),
        (("c1", "nope", {}), "Unknown tool: nope"),
        (("c1", "refuse", {}), "Permission denied: admins only"),
        (("c1", "crash", {}), "Tool crash failed"),
    ],
)
async def test_tool_failures_go_back_to_the_model(
    call: tuple[str, str, dict[str, Any]], error: str
) -> None:
    model = ScriptedModel(calls(call), text("sorry"))
    result = await agent(model).generate("go", context=CTX)
    assert result.text == "sorry"
    (failure,) = result.tool_results
    assert failure.is_error
    assert failure.result["error"].startswith(error)
    assert "hunter2" not in failure.result["error"]
    assert failure.to_json()["isError"] is True
    assert model.calls[1][0][-1].role == "tool"


async def test_step_limit() -> None:
    model = ScriptedModel(calls(("c", "add", {"a": 1, "b": 1})))  # asks for tools forever
    result = await agent(model, max_steps=3).generate("loop", context=CTX)
    assert result.steps == 3 and len(model.calls) == 3
    assert len(result.tool_results) == 3, "the last step's tools still run"
    assert result.finish_reason == "tool_calls"
    model = ScriptedModel(calls(("c", "add", {"a": 1, "b": 1})))
    assert (await agent(model).generate("x", context=CTX, max_steps=1)).steps == 1
    with pytest.raises(ValueError):
        await agent(model).generate("x", context=CTX, max_steps=0)


async def test_model_error_propagates() -> None:
    with pytest.raises(ModelError):
        await agent(ScriptedModel(ModelError("upstream 500"))).generate("x", context=CTX)


async def test_stream_events() -> None:
    model = ScriptedModel(
        calls(("c1", "add", {"a": 1, "b": 2}), tokens=2), text("it is 3", tokens=4)
    )
    events = [e async for e in agent(model).stream("sum?", context=CTX)]
    assert [e.event for e in events] == [
        "tool-call",
        "tool-result",
        "text-delta",
        "text-delta",
        "text-delta",
        "finish",
    ]
    call, result = events[0], events[1]
    assert isinstance(call, ToolCallEvent) and call.data() == {
        "toolCallId": "c1",
        "toolName": "add",
        "args": {"a": 1, "b": 2},
    }
    assert isinstance(result, ToolResultEvent) and result.data()["result"] == 3
    assert "".join(e.text for e in events if isinstance(e, TextDeltaEvent)) == "it is 3 "
    finish = events[-1]
    assert isinstance(finish, FinishEvent)
    assert finish.data() == {
        "finishReason": "stop",
        "usage": {"inputTokens": 6, "outputTokens": 6, "totalTokens": 12},
    }
    assert [m.role for m in finish.messages] == ["assistant", "tool", "assistant"]


async def test_stream_step_limit_and_errors() -> None:
    model = ScriptedModel(calls(("c", "add", {"a": 1, "b": 1})))
    events = [e async for e in agent(model).stream("x", context=CTX, max_steps=2)]
    assert [e.event for e in events] == [
        "tool-call",
        "tool-result",
        "tool-call",
        "tool-result",
        "finish",
    ]
    with pytest.raises(ModelError):
        async for _ in agent(ScriptedModel(ModelError("down"))).stream("x", context=CTX):
            pass


def test_ids_and_validation() -> None:
    model = ScriptedModel()
    assert Agent(name="Weather Agent!", instructions="", model=model).id == "weather-agent"
    assert Agent(name="x", id="custom_id", instructions="", model=model).id == "custom_id"
    with pytest.raises(ValueError):
        Agent(name="!!!", instructions="", model=model)
    with pytest.raises(ValueError):
        Agent(name="a", instructions="", model=model, tools=[add, add])
    with pytest.raises(ValueError):
        Agent(name="a", instructions="", model=model, max_steps=0)
