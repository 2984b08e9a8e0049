"""Streams over a real socket: Bastion under uvicorn on 127.0.0.1, read by httpx as it
arrives and parsed by the client's SSE parser. Events leave as they are produced; a client
that hangs up stops the model and leaves its thread untouched; an OpenAI-compatible model
(the local stand-in) drives a streamed tool call through the server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from bastion.auth import RequestContext, SimpleAuth
from bastion.client.sse import aiter_sse
from bastion.server import Agent, Bastion, LocalModel, Memory, tool
from bastion.server.models import (
    Finish,
    Message,
    ModelResponse,
    StreamChunk,
    TextDelta,
    ToolSpec,
    Usage,
)
from tests.server.memory_kit import open_memory
from tests.server.openai_standin import OpenAIStandin, Reply, free_port, openai_standin

__all__ = ["openai_standin"]  # the fixture, imported for pytest

USERS = {"token-ana": {"id": "ana"}}
AUTH = {"Authorization": "Bearer token-ana"}


@asynccontextmanager
async def serve(app: Bastion) -> AsyncIterator[str]:
    """The app under uvicorn on a free port, in this event loop; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(250):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    if not server.started:
        server.should_exit = True
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def read_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    async for event in aiter_sse(response.aiter_bytes()):
        yield event.event, json.loads(event.data)


class Watched:
    """Wraps a model's stream to see, from outside, how far it got and whether it was
    closed: `produced` counts chunks handed out, `closed` is set when the stream ends."""

    def __init__(self, model: Any, *, pause_first: float = 0.0) -> None:
        self.model = model
        self.id = model.id
        self.pause_first = pause_first
        self.produced = 0
        self.closed = asyncio.Event()
        self.finished = False

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        response: ModelResponse = await self.model.generate(messages, tools)
        return response

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        try:
            if self.pause_first:
                await asyncio.sleep(self.pause_first)
            async for chunk in self.model.stream(messages, tools):
                self.produced += 1
                yield chunk
            self.finished = True
        finally:
            self.closed.set()


class Gated:
    """Yields "first", then waits for `gate` before "second": a server that buffered events
    would never let the test see "first" and open the gate."""

    id = "test/gated"

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        return ModelResponse(text="first second")

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        yield TextDelta("first ")
        await self.gate.wait()
        yield TextDelta("second")
        yield Finish("stop", Usage(1, 2))


def app_with(model: Any, memory: Memory | None = None, **kw: Any) -> Bastion:
    agent = Agent(id="helper", name="Helper", instructions="", model=model, **kw)
    return Bastion(agents=[agent], auth=SimpleAuth(USERS), memory=memory)


async def test_each_event_is_sent_as_it_is_produced() -> None:
    model = Gated()
    received: list[tuple[str, dict[str, Any]]] = []
    body = {"messages": "hi"}
    async with (
        serve(app_with(model)) as base,
        httpx.AsyncClient(base_url=base) as http,
        http.stream("POST", "/api/agents/helper/stream", json=body, headers=AUTH) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(5):
            async for event in read_events(response):
                received.append(event)
                if event == ("text-delta", {"text": "first "}):
                    model.gate.set()
    assert received == [
        ("text-delta", {"text": "first "}),
        ("text-delta", {"text": "second"}),
        ("finish", {"finishReason": "stop", "usage": {
            "inputTokens": 1, "outputTokens": 2, "totalTokens": 3}}),
    ]  # fmt: skip


async def test_disconnect_mid_stream_stops_the_model_and_writes_nothing() -> None:
    words = " ".join(f"w{i}" for i in range(400))  # 400 words, 20 ms apart: 8 s in all
    model = Watched(LocalModel(delay=0.02))
    async with open_memory("sqlite://") as memory:
        app = app_with(model, memory)
        async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
            body = {"messages": words, "threadId": "chat-1"}
            async with http.stream(
                "POST", "/api/agents/helper/stream", json=body, headers=AUTH
            ) as response:
                seen = 0
                async for _ in read_events(response):
                    seen += 1
                    if seen == 3:
                        break  # leaving the block closes the connection mid-stream
            async with asyncio.timeout(3):
                await model.closed.wait()
            # The model's stream is closed (its `finally` ran): it cannot produce more.
            assert not model.finished
            assert model.produced < 50
            # The thread is the caller's and holds nothing of the interrupted run.
            thread = await memory.get_owned_thread("chat-1", "ana")
            assert thread.resource_id == "ana"
            assert await memory.list_messages("chat-1") == []


async def test_disconnect_before_the_first_event_stops_the_model() -> None:
    """The model has produced nothing yet, so no write would notice the closed socket:
    the server watches for the disconnect itself."""
    model = Watched(LocalModel(), pause_first=30)
    async with serve(app_with(model)) as base:
        timeout = httpx.Timeout(5, read=0.3)
        async with httpx.AsyncClient(base_url=base, timeout=timeout) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.post("/api/agents/helper/stream", json={"messages": "hi"}, headers=AUTH)
        async with asyncio.timeout(3):
            await model.closed.wait()
    assert model.produced == 0


async def test_finished_stream_is_saved_before_finish_is_sent() -> None:
    async with open_memory("sqlite://") as memory:
        app = app_with(Watched(LocalModel()), memory)
        async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
            body = {"messages": "hello", "threadId": "chat-2"}
            async with http.stream(
                "POST", "/api/agents/helper/stream", json=body, headers=AUTH
            ) as response:
                async for event, data in read_events(response):
                    if event == "finish":
                        assert data["threadId"] == "chat-2"
                        # Read back at once, before the stream has even closed.
                        stored = await memory.list_messages("chat-2")
                        assert [(m.role, m.content) for m in stored] == [
                            ("user", "hello"),
                            ("assistant", "You said: hello"),
                        ]
                        break
                else:
                    pytest.fail("no finish event")


async def test_sixteen_concurrent_streams() -> None:
    async with serve(app_with(LocalModel())) as base, httpx.AsyncClient(base_url=base) as http:

        async def one(i: int) -> str:
            parts: list[str] = []
            async with http.stream(
                "POST", "/api/agents/helper/stream", json={"messages": f"n{i}"}, headers=AUTH
            ) as response:
                async for event, data in read_events(response):
                    if event == "text-delta":
                        parts.append(data["text"])
            return "".join(parts)

        texts = await asyncio.gather(*(one(i) for i in range(16)))
    assert texts == [f"You said: n{i}" for i in range(16)]


@tool
async def get_weather(city: str, context: RequestContext) -> dict[str, Any]:
    """The weather in a city."""
    return {"city": city, "sky": "clear", "for": context.resource_id}


async def test_openai_model_streams_a_tool_call_through_the_server(
    openai_standin: OpenAIStandin,
) -> None:
    async with openai_standin.model() as model, open_memory("sqlite://") as memory:
        app = app_with(model, memory, tools=[get_weather])
        async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
            body = {"messages": 'get_weather {"city": "Oslo"}', "threadId": "trip"}
            async with http.stream(
                "POST", "/api/agents/helper/stream", json=body, headers=AUTH
            ) as response:
                received = [event async for event in read_events(response)]
            openai_standin.replies.append(Reply(text="You are welcome."))
            follow_up = await http.post(
                "/api/agents/helper/generate",
                json={"messages": "thanks", "threadId": "trip"},
                headers=AUTH,
            )
        stored = await memory.list_messages("trip")
    call, result, *deltas, finish = received
    assert call[0] == "tool-call"
    assert call[1]["toolName"] == "get_weather" and call[1]["args"] == {"city": "Oslo"}
    assert call[1]["toolCallId"].startswith("call_standin_")
    weather = {"city": "Oslo", "sky": "clear", "for": "ana"}
    assert result == (
        "tool-result",
        {"toolCallId": call[1]["toolCallId"], "toolName": "get_weather", "result": weather},
    )
    assert {e for e, _ in deltas} == {"text-delta"}
    assert "".join(d["text"] for _, d in deltas) == "Tool said: " + json.dumps(weather)
    assert finish[0] == "finish" and finish[1]["finishReason"] == "stop"
    assert finish[1]["threadId"] == "trip"
    # Both model calls streamed; the second carried the tool's result.
    first, second = openai_standin.requests[0].body, openai_standin.requests[1].body
    assert first["stream"] is True and second["stream"] is True
    assert second["messages"][-1]["role"] == "tool"
    # The thread kept the whole exchange, and the next run sent it to the model again.
    assert [m.role for m in stored] == ["user", "assistant", "tool", "assistant", "user",
                                        "assistant"]  # fmt: skip
    assert stored[1].tool_calls[0].name == "get_weather"
    assert follow_up.status_code == 200 and follow_up.json()["threadId"] == "trip"
    replayed = openai_standin.requests[-1].body["messages"]
    assert [m["role"] for m in replayed] == ["user", "assistant", "tool", "assistant", "user"]
    assert replayed[1]["tool_calls"][0]["function"]["name"] == "get_weather"
