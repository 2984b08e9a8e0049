"""`POST /api/agents/{agentId}/stream` in-process (httpx.ASGITransport): the events and
their JSON, errors before and after the first byte, auth and RBAC, cookie-only sessions.
Timing, disconnects and a real SSE client over a socket are in test_stream_uvicorn.py."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from starlette.requests import HTTPConnection

from bastion.auth import RequestContext, SimpleAuth, StaticRBAC
from bastion.auth.providers.identity import IdentityAuth
from bastion.client.sse import iter_sse
from bastion.identity import Identity, bearer
from bastion.server import Agent, Bastion, LocalModel, ModelError, tool
from bastion.server.models import (
    Message,
    ModelResponse,
    StreamChunk,
    TextDelta,
    ToolSpec,
    Usage,
)
from tests.auth.doubles import Recording, ScriptedModel, calls, client, text
from tests.hashing import cheap_password

USER = {"id": "ana", "role": "member"}
AUTH = {"Authorization": "Bearer good"}
URL = "/api/agents/helper/stream"


@tool
async def whoami(context: RequestContext) -> dict[str, Any]:
    """Who is calling."""
    return {"user": context.user, "resourceId": context.resource_id, "values": context.values}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class BreaksMidway:
    """Streams a few words, then fails the way `fault` says (a model stand-in)."""

    id = "test/breaks"

    def __init__(self, fault: Exception) -> None:
        self.fault = fault

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        raise self.fault

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        yield TextDelta("partial ")
        yield TextDelta("answer ")
        raise self.fault


class NoFinish:
    """A broken adapter: its stream ends without the Finish every stream must end with."""

    id = "test/no-finish"

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        return ModelResponse()

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        yield TextDelta("hi")


def make_app(model: Any = None, **kw: Any) -> Bastion:
    helper = Agent(
        name="Helper",
        instructions="Be brief.",
        model=model or ScriptedModel(text("hello there")),
        tools=[whoami, add],
        max_steps=3,
    )
    kw.setdefault("auth", Recording({"good": USER}))
    return Bastion(agents=[helper], **kw)


def events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of an SSE body, read by the client's WHATWG parser."""
    return [(e.event, json.loads(e.data)) for e in iter_sse([response.content])]


async def test_stream_events_with_a_tool_call() -> None:
    model = ScriptedModel(calls(("c1", "whoami", {}), tokens=2), text("You are ana.", tokens=3))
    body = {"messages": [{"role": "user", "content": "who am I?"}], "requestContext": {"x": 1}}
    async with client(make_app(model)) as http:
        response = await http.post(URL, json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert "content-length" not in response.headers
    received = events(response)
    assert received == [
        ("tool-call", {"toolCallId": "c1", "toolName": "whoami", "args": {}}),
        (
            "tool-result",
            {
                "toolCallId": "c1",
                "toolName": "whoami",
                "result": {"user": USER, "resourceId": "ana", "values": {"x": 1}},
            },
        ),
        ("text-delta", {"text": "You "}),
        ("text-delta", {"text": "are "}),
        ("text-delta", {"text": "ana. "}),
        (
            "finish",
            {
                "finishReason": "stop",
                "usage": {"inputTokens": 5, "outputTokens": 5, "totalTokens": 10},
            },
        ),
    ]
    # The wire format itself: one `event:` and one compact `data:` line per event.
    assert response.text.startswith('event: tool-call\ndata: {"toolCallId":"c1",')
    assert response.text.endswith("\n\n")


async def test_text_with_line_breaks_stays_one_data_line() -> None:
    model = ScriptedModel(text("line one\nline two\r\n\u2028end"))
    async with client(make_app(model)) as http:
        response = await http.post(URL, json={"messages": "hi"}, headers=AUTH)
    deltas = [d["text"] for e, d in events(response) if e == "text-delta"]
    assert "".join(deltas) == "line one\nline two\r\n\u2028end "
    assert response.text.count("data: ") == len(deltas) + 1  # + finish


async def test_tool_errors_are_results_not_stream_errors() -> None:
    model = ScriptedModel(calls(("c1", "add", {"a": "x"})), text("sorry"))
    async with client(make_app(model)) as http:
        response = await http.post(URL, json={"messages": "add"}, headers=AUTH)
    kinds = [e for e, _ in events(response)]
    assert kinds == ["tool-call", "tool-result", "text-delta", "finish"]
    result = events(response)[1][1]
    assert result["isError"] is True
    assert result["result"]["error"].startswith("Invalid arguments: a: Input should be")


async def test_max_steps_and_step_limit_finish_reason() -> None:
    model = ScriptedModel(calls(("c", "add", {"a": 1, "b": 1})))
    async with client(make_app(model)) as http:
        response = await http.post(URL, json={"messages": "go", "maxSteps": 2}, headers=AUTH)
        too_many = await http.post(URL, json={"messages": "go", "maxSteps": 4}, headers=AUTH)
    kinds = [e for e, _ in events(response)]
    assert kinds == ["tool-call", "tool-result", "tool-call", "tool-result", "finish"]
    assert events(response)[-1][1]["finishReason"] == "tool_calls"
    assert len(model.calls) == 2
    assert too_many.status_code == 400
    assert too_many.json() == {"error": "maxSteps must be an integer from 1 to 3"}


async def test_model_error_before_the_first_byte_is_a_502() -> None:
    async with client(make_app(ScriptedModel(ModelError("model m: HTTP 503")))) as http:
        response = await http.post(URL, json={"messages": "hi"}, headers=AUTH)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "model m: HTTP 503"}


async def test_model_error_after_the_first_byte_is_an_error_event() -> None:
    async with client(make_app(BreaksMidway(ModelError("model m: stream cut")))) as http:
        response = await http.post(URL, json={"messages": "hi"}, headers=AUTH)
    assert response.status_code == 200
    assert events(response) == [
        ("text-delta", {"text": "partial "}),
        ("text-delta", {"text": "answer "}),
        ("error", {"error": "model m: stream cut"}),
    ]


async def test_model_error_after_a_tool_step_is_an_error_event() -> None:
    model = ScriptedModel(calls(("c1", "add", {"a": 1, "b": 2})), ModelError("gone"))
    async with client(make_app(model)) as http:
        response = await http.post(URL, json={"messages": "hi"}, headers=AUTH)
    assert [e for e, _ in events(response)] == ["tool-call", "tool-result", "error"]
    assert events(response)[-1][1] == {"error": "gone"}


async def test_a_stream_without_finish_is_a_model_error() -> None:
    async with client(make_app(NoFinish())) as http:
        response = await http.post(URL, json={"messages": "hi"}, headers=AUTH)
    assert events(response) == [
        ("text-delta", {"text": "hi"}),
        ("error", {"error": "the model's stream ended without a finish"}),
    ]


async def test_unexpected_failures_say_nothing_of_the_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="bastion.server"):
        async with client(make_app(BreaksMidway(KeyError("adapter secret")))) as http:
            midway = await http.post(URL, json={"messages": "hi"}, headers=AUTH)
        async with client(make_app(ScriptedModel(KeyError("adapter secret")))) as http:
            first = await http.post(URL, json={"messages": "hi"}, headers=AUTH)
    assert events(midway)[-1] == ("error", {"error": "Internal server error"})
    assert (first.status_code, first.json()) == (500, {"error": "Internal server error"})
    for response in (midway, first):
        assert "secret" not in response.text and "Traceback" not in response.text
    assert caplog.text.count("KeyError") >= 2


async def test_requests_are_checked_before_the_stream_starts() -> None:
    async with client(make_app()) as http:
        anonymous = await http.post(URL, json={"messages": "hi"})
        unknown = await http.post("/api/agents/nope/stream", json={"messages": "hi"}, headers=AUTH)
        empty = await http.post(URL, json={"messages": []}, headers=AUTH)
        form = await http.post(URL, data={"messages": "hi"}, headers=AUTH)
        no_memory = await http.post(URL, json={"messages": "hi", "threadId": "t1"}, headers=AUTH)
    assert (anonymous.status_code, anonymous.json()) == (
        401,
        {"error": "Invalid or expired token"},
    )
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Agent nope not found"})
    assert (empty.status_code, empty.json()) == (400, {"error": "messages must not be empty"})
    assert form.status_code == 415
    assert (no_memory.status_code, no_memory.json()) == (
        400,
        {"error": "Memory is not configured: threadId cannot be used"},
    )


async def test_s19_no_get_stream_a_get_never_runs_the_model() -> None:
    """S19: GET never changes state. A stream runs the model (and writes memory), so it is
    POST only; `EventSource` (GET only) is not served, a cross-site `<img>` cannot start a
    run with the user's cookie."""
    model = ScriptedModel(text("should not run"))
    async with client(make_app(model)) as http:
        response = await http.get(URL, params={"messages": "hi"}, headers=AUTH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert model.calls == []


async def test_rbac_stream_needs_agents_execute() -> None:
    users = {"viewer": {"id": "v", "role": "viewer"}, "member": {"id": "m", "role": "member"}}
    app = make_app(auth=SimpleAuth(users), rbac=StaticRBAC())
    async with client(app) as http:
        viewer = await http.post(
            URL, json={"messages": "hi"}, headers={"Authorization": "Bearer viewer"}
        )
        member = await http.post(
            URL, json={"messages": "hi"}, headers={"Authorization": "Bearer member"}
        )
    assert viewer.status_code == 403
    assert viewer.json() == {
        "error": "Forbidden",
        "message": "Missing required permission: agents:execute:helper",
    }
    assert member.status_code == 200


class RefreshingAuth(Recording):
    """Leaves a refreshed session cookie for the response, as IdentityAuth does."""

    async def authenticate_token(self, token: str, request: HTTPConnection) -> Any | None:
        state = request.scope.setdefault("state", {})
        state.setdefault("response_headers", []).append(("set-cookie", "session=refreshed"))
        return await super().authenticate_token(token, request)


async def test_provider_headers_go_on_streams_and_on_their_errors() -> None:
    auth = RefreshingAuth({"good": USER})
    async with client(make_app(auth=auth)) as http:
        ok = await http.post(URL, json={"messages": "hi"}, headers=AUTH)
    async with client(make_app(ScriptedModel(ModelError("down")), auth=auth)) as http:
        failed = await http.post(URL, json={"messages": "hi"}, headers=AUTH)
    assert ok.headers.get_list("set-cookie") == ["session=refreshed"]
    assert failed.status_code == 502
    assert failed.headers.get_list("set-cookie") == ["session=refreshed"]
    assert failed.headers["content-type"] == "application/json"


async def test_no_auth_streams_anonymously() -> None:
    model = LocalModel()
    agent = Agent(name="Echo", instructions="", model=model, tools=[whoami])
    async with client(Bastion(agents=[agent])) as http:
        response = await http.post("/api/agents/echo/stream", json={"messages": "use whoami"})
    result = events(response)[1][1]["result"]
    assert result == {"user": None, "resourceId": None, "values": {}}


async def test_stream_with_only_the_session_cookie() -> None:
    """What a browser's fetch-based SSE reader sends: no Authorization header, just the
    session cookie (EventSource cannot send headers either)."""
    base = "http://localhost:4111"
    identity = Identity(
        secret="test-secret-0123456789abcdef0123456789abcdef",
        base_url=base,
        database="sqlite://",
        email_and_password=cheap_password(),
        plugins=[bearer()],
        env={},
    )
    await identity.migrate()
    agent = Agent(name="Helper", instructions="", model=LocalModel(), tools=[whoami])
    app = Bastion(agents=[agent], auth=IdentityAuth(identity))
    try:
        async with client(app, base) as http:
            signed_up = await http.post(
                "/api/auth/sign-up/email",
                json={"name": "Ada", "email": "ada@example.com", "password": "horse battery"},
                headers={"origin": base},
            )
            assert signed_up.status_code == 200, signed_up.text
            user_id = signed_up.json()["user"]["id"]
            cookie = http.cookies.get("better-auth.session_token")
            assert cookie
            http.cookies.clear()
            headers = {"cookie": f"better-auth.session_token={cookie}"}
            response = await http.post(
                "/api/agents/helper/stream", json={"messages": "use whoami"}, headers=headers
            )
            refused = await http.post(
                "/api/agents/helper/stream",
                json={"messages": "use whoami"},
                headers={"cookie": "better-auth.session_token=forged.value"},
            )
    finally:
        await identity.close()
    assert response.status_code == 200
    received = events(response)
    assert received[1][0] == "tool-result"
    assert received[1][1]["result"]["resourceId"] == user_id
    assert received[1][1]["result"]["user"]["user"]["email"] == "ada@example.com"
    assert received[-1][0] == "finish"
    assert refused.status_code == 401


async def test_usage_adds_up_over_steps() -> None:
    model = ScriptedModel(
        ModelResponse(
            tool_calls=calls(("c1", "add", {"a": 1, "b": 2})).tool_calls,
            usage=Usage(10, 1),
            finish_reason="tool_calls",
        ),
        ModelResponse(text="3", usage=Usage(20, 2)),
    )
    async with client(make_app(model)) as http:
        response = await http.post(URL, json={"messages": "hi"}, headers=AUTH)
    assert events(response)[-1][1]["usage"] == {
        "inputTokens": 30,
        "outputTokens": 3,
        "totalTokens": 33,
    }
