"""A stand-in for the agent server, written from docs/http-api.md alone (routes, JSON shapes,
`{"error": ...}` bodies, stream events), for `BastionClient` tests while the real server is
being written. It knows three agents:

- `echo` answers "echo: <last user message>"; its stream calls the `upper` tool first;
- `failing` streams a little text, then an `error` event;
- `not-a-stream` (not listed) answers its stream call with JSON;
- `slow` streams "first", then waits (sending keep-alive comments) until the test sets
  `standin.release`, then "second"; `standin.stream_closed` is set when its stream ends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

TOKEN = "agent-api-token"
SESSION_COOKIE = ("better-auth.session_token", "cookie-session.c2lnbmF0dXJl")

TOOLS = {
    "upper": {
        "id": "upper",
        "description": "Upper-cases a text.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
    "admin-only": {"id": "admin-only", "description": "Needs a permission.", "inputSchema": {}},
}
AGENTS = {
    name: {
        "id": name,
        "name": name.title(),
        "instructions": f"You are {name}.",
        "modelId": "local/test",
        "tools": {"upper": TOOLS["upper"]} if name == "echo" else {},
    }
    for name in ("echo", "failing", "slow")
}
USAGE = {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}


def _error(status: int, error: str, **extra: str) -> JSONResponse:
    return JSONResponse({"error": error, **extra}, status_code=status)


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class StandIn:
    def __init__(self) -> None:
        self.threads: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.bodies: list[Any] = []  # the JSON bodies of the POST/PATCH requests, in order
        self.release = threading.Event()
        self.stream_closed = threading.Event()
        self._ids = itertools.count(1)

    @asynccontextmanager
    async def setup(self, origin: str) -> AsyncIterator[ASGIApp]:
        yield self.app()

    def app(self) -> Starlette:
        routes = [
            Route("/api", lambda r: JSONResponse({"name": "bastion", "version": "test"})),
            Route("/api/plain", lambda r: PlainTextResponse("not json")),
            Route("/api/agents", self.guarded(self.list_agents)),
            Route("/api/agents/{agent_id}", self.guarded(self.get_agent)),
            Route("/api/agents/{agent_id}/generate", self.guarded(self.generate), methods=["POST"]),
            Route("/api/agents/{agent_id}/stream", self.guarded(self.stream), methods=["POST"]),
            Route("/api/tools", self.guarded(self.list_tools)),
            Route("/api/tools/{tool_id}", self.guarded(self.get_tool)),
            Route("/api/tools/{tool_id}/execute", self.guarded(self.execute), methods=["POST"]),
            Route("/api/memory/threads", self.guarded(self.threads_root), methods=["GET", "POST"]),
            Route(
                "/api/memory/threads/{thread_id}",
                self.guarded(self.thread),
                methods=["GET", "PATCH", "DELETE"],
            ),
            Route("/api/memory/threads/{thread_id}/messages", self.guarded(self.thread_messages)),
        ]
        return Starlette(routes=routes)

    # -- auth, as the pipeline answers (docs/http-api.md "Auth")

    def guarded(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            bearer = request.headers.get("authorization", "")
            cookie = request.cookies.get(SESSION_COOKIE[0])
            if bearer != f"Bearer {TOKEN}" and cookie != SESSION_COOKIE[1]:
                response = _error(401, "Invalid or expired token")
                response.headers["www-authenticate"] = 'Bearer error="invalid_token"'
                return response
            if request.method in ("POST", "PATCH"):
                self.bodies.append(await request.json())
            result: Response = await handler(request)
            return result

        return endpoint

    # -- agents

    async def list_agents(self, request: Request) -> Response:
        return JSONResponse(AGENTS)

    async def get_agent(self, request: Request) -> Response:
        agent_id = request.path_params["agent_id"]
        agent = AGENTS.get(agent_id)
        return JSONResponse(agent) if agent else _error(404, f"Agent {agent_id} not found")

    def _prompt(self, body: dict[str, Any]) -> str:
        messages = body["messages"]
        if isinstance(messages, str):
            return messages
        return str([m for m in messages if m["role"] == "user"][-1]["content"])

    def _remember(self, body: dict[str, Any], prompt: str, answer: str) -> None:
        thread_id = body.get("threadId")
        if thread_id in self.messages:
            for role, content in (("user", prompt), ("assistant", answer)):
                self.messages[thread_id].append(
                    {
                        "id": f"m{next(self._ids)}",
                        "threadId": thread_id,
                        "role": role,
                        "content": content,
                        "createdAt": _now(),
                    }
                )

    async def generate(self, request: Request) -> Response:
        agent_id = request.path_params["agent_id"]
        if agent_id not in AGENTS:
            return _error(404, f"Agent {agent_id} not found")
        body = await request.json()
        prompt = self._prompt(body)
        answer = f"echo: {prompt}"
        self._remember(body, prompt, answer)
        generation = {
            "text": answer,
            "toolCalls": [],
            "toolResults": [],
            "finishReason": "stop",
            "usage": USAGE,
        }
        if "threadId" in body:
            generation["threadId"] = body["threadId"]
        return JSONResponse(generation)

    async def stream(self, request: Request) -> Response:
        agent_id = request.path_params["agent_id"]
        if agent_id == "not-a-stream":
            return JSONResponse({"text": "a generation, not a stream"})
        if agent_id not in AGENTS:
            return _error(404, f"Agent {agent_id} not found")
        body = await request.json()
        events = {"echo": self._echo, "failing": self._failing, "slow": self._slow}[agent_id]
        return StreamingResponse(events(body), media_type="text/event-stream")

    async def _echo(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        prompt = self._prompt(body)
        call = {"toolCallId": "call-1", "toolName": "upper", "args": {"text": prompt}}
        yield _sse("tool-call", call)
        yield _sse(
            "tool-result", {"toolCallId": "call-1", "toolName": "upper", "result": prompt.upper()}
        )
        answer = f"echo: {prompt}"
        for word in answer.split(" "):
            # One event per write, cut in two, so the client reassembles across chunks.
            raw = _sse("text-delta", {"text": word + " "})
            yield raw[:7]
            yield raw[7:]
        self._remember(body, prompt, answer)
        finish: dict[str, Any] = {"finishReason": "stop", "usage": USAGE}
        if "threadId" in body:
            finish["threadId"] = body["threadId"]
        yield _sse("finish", finish)

    async def _failing(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        yield _sse("text-delta", {"text": "partial"})
        yield _sse("error", {"error": "model exploded"})

    async def _slow(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        try:
            yield _sse("text-delta", {"text": "first"})
            deadline = time.monotonic() + 5
            while not self.release.is_set():
                if time.monotonic() > deadline:
                    yield _sse("error", {"error": "never released"})
                    return
                yield b": waiting\n\n"  # a write that fails once the client has gone
                await asyncio.sleep(0.02)
            yield _sse("text-delta", {"text": "second"})
            yield _sse("finish", {"finishReason": "stop", "usage": USAGE})
        finally:
            self.stream_closed.set()

    # -- tools

    async def list_tools(self, request: Request) -> Response:
        return JSONResponse(TOOLS)

    async def get_tool(self, request: Request) -> Response:
        tool_id = request.path_params["tool_id"]
        tool = TOOLS.get(tool_id)
        return JSONResponse(tool) if tool else _error(404, f"Tool {tool_id} not found")

    async def execute(self, request: Request) -> Response:
        tool_id = request.path_params["tool_id"]
        if tool_id == "admin-only":
            return _error(403, "Forbidden", message="Missing required permission: tools:execute")
        if tool_id != "upper":
            return _error(404, f"Tool {tool_id} not found")
        data = self.bodies[-1]["data"]
        return JSONResponse({"result": {"text": str(data["text"]).upper()}})

    # -- memory

    async def threads_root(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(list(self.threads.values()))
        body = self.bodies[-1]
        thread = {
            "id": body.get("threadId") or f"t{next(self._ids)}",
            "resourceId": "user-1",
            "title": body.get("title"),
            "metadata": body.get("metadata", {}),
            "createdAt": _now(),
            "updatedAt": _now(),
        }
        self.threads[thread["id"]] = thread
        self.messages[thread["id"]] = []
        return JSONResponse(thread)

    async def thread(self, request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        thread = self.threads.get(thread_id)
        if thread is None:
            return _error(404, "Thread not found")
        if request.method == "PATCH":
            thread.update(
                {k: v for k, v in self.bodies[-1].items() if k in ("title", "metadata")},
                updatedAt=_now(),
            )
        elif request.method == "DELETE":
            del self.threads[thread_id], self.messages[thread_id]
            return JSONResponse({"ok": True})
        return JSONResponse(thread)

    async def thread_messages(self, request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        if thread_id not in self.threads:
            return _error(404, "Thread not found")
        return JSONResponse({"messages": self.messages[thread_id]})
