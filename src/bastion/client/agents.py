"""`BastionClient` / `AsyncBastionClient`: the agent server's HTTP API (docs/http-api.md).

    client = BastionClient("http://127.0.0.1:4111", token=token)
    client.agents.generate("weather", "Is it raining in Paris?")["text"]
    for event in client.agents.stream("weather", "And in Oslo?"):
        ...  # TextDeltaEvent, ToolCallEvent, ToolResultEvent, FinishEvent, ErrorEvent

Paths are under `{base_url}/api`. Answers are the server's JSON as plain dicts, except
where the route wraps one value: `tools.execute` returns the `result`, `threads.messages`
the list and `threads.delete` None. Refusals raise `BastionError(status, message)` from the
server's `{"error": ...}` body. The credential is a bearer token (`token=`, e.g. an
`AuthClient`'s `client.token`), or the cookies of a signed-in session (`cookies=`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Concatenate, ParamSpec, TypeAlias

import httpx

from .errors import BastionError
from .operations import AsyncHandle, RootSection, Section, SyncHandle, operation, segment, streaming
from .transport import Async, Driver, M, Sync
from .wire import JSON, Call, Wire, compact, json_object, text_or_none

__all__ = ["Agents", "AsyncBastionClient", "BastionAPI", "BastionClient", "Threads", "Tools"]

P = ParamSpec("P")

Records: TypeAlias = list[JSON]
"""A JSON array of objects (named so: the sections' `list` methods shadow `list`)."""

Messages: TypeAlias = str | Sequence[Mapping[str, Any]]
"""One user message as a string, or `[{"role": "user"|"assistant"|"system", "content"}]`."""


def _run_body(
    messages: Messages,
    thread_id: str | None,
    resource_id: str | None,
    max_steps: int | None,
    request_context: Mapping[str, Any] | None,
    extra: Mapping[str, Any],
) -> JSON:
    named = compact(
        threadId=thread_id,
        resourceId=resource_id,
        maxSteps=max_steps,
        requestContext=request_context,
    )
    return {"messages": messages if isinstance(messages, str) else list(messages), **named, **extra}


def _generate(
    section: Any,
    /,
    agent_id: str,
    messages: Messages,
    *,
    thread_id: str | None = None,
    resource_id: str | None = None,
    max_steps: int | None = None,
    request_context: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Call[JSON]:
    """`POST /api/agents/{agentId}/generate` → `{"text", "toolCalls", "toolResults",
    "finishReason", "usage", "threadId"?}`. `extra` goes into the body as named."""
    body = _run_body(messages, thread_id, resource_id, max_steps, request_context, extra)
    return Call("POST", f"/agents/{segment(agent_id)}/generate", body=body)


def _streamed(
    build: Callable[Concatenate[Any, P], Call[JSON]],
) -> Callable[Concatenate[Any, P], Call[Any]]:
    """The same request (same parameters, same body) to the agent's `/stream` route."""

    def stream(section: Any, /, *args: P.args, **kwargs: P.kwargs) -> Call[Any]:
        call = build(section, *args, **kwargs)
        return replace(call, path=call.path.removesuffix("/generate") + "/stream")

    stream.__doc__ = """`POST /api/agents/{agentId}/stream`, with the parameters of
    `generate` → an (async) iterator of typed events, ending after `FinishEvent` or
    `ErrorEvent`; also a context manager that closes the stream."""
    return stream


class Agents(Section[M]):
    @operation
    def list(self) -> Call[JSON]:
        """`GET /api/agents` → `{agentId: Agent}`."""
        return Call("GET", "/agents")

    @operation
    def get(self, agent_id: str) -> Call[JSON]:
        """`GET /api/agents/{agentId}` → `{"id", "name", "instructions", "modelId", "tools"}`."""
        return Call("GET", f"/agents/{segment(agent_id)}")

    generate = operation(_generate)
    stream = streaming(_streamed(_generate))


def _query(**given: str | int | None) -> dict[str, str] | None:
    return {key: str(value) for key, value in given.items() if value is not None} or None


def _result(data: Any) -> Any:
    return data.get("result") if isinstance(data, dict) else None


def _messages(data: Any) -> Any:
    return data.get("messages", []) if isinstance(data, dict) else []


def _nothing(data: Any) -> None:
    return None


class Tools(Section[M]):
    @operation
    def list(self) -> Call[JSON]:
        """`GET /api/tools` → `{toolId: Tool}`."""
        return Call("GET", "/tools")

    @operation
    def get(self, tool_id: str) -> Call[JSON]:
        """`GET /api/tools/{toolId}` → `{"id", "description", "inputSchema"}`."""
        return Call("GET", f"/tools/{segment(tool_id)}")

    @operation
    def execute(
        self, /, tool_id: str, args: Mapping[str, Any] | None = None, **extra: Any
    ) -> Call[Any]:
        """`POST /api/tools/{toolId}/execute` with `{"data": args}` → the tool's result."""
        body = {"data": dict(args or {}), **extra}
        return Call("POST", f"/tools/{segment(tool_id)}/execute", body=body, read=_result)


class Threads(Section[M]):
    @operation
    def list(
        self,
        *,
        resource_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Call[Records]:
        """`GET /api/memory/threads` → the caller's threads, most recently updated first."""
        params = _query(resourceId=resource_id, limit=limit, offset=offset)
        return Call("GET", "/memory/threads", params=params)

    @operation
    def create(
        self,
        /,
        *,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> Call[JSON]:
        """`POST /api/memory/threads` → the new Thread."""
        return Call(
            "POST", "/memory/threads", body={**compact(title=title, metadata=metadata), **extra}
        )

    @operation
    def get(self, thread_id: str) -> Call[JSON]:
        """`GET /api/memory/threads/{threadId}` → `{"id", "resourceId", "title", "metadata",
        "createdAt", "updatedAt"}`."""
        return Call("GET", f"/memory/threads/{segment(thread_id)}")

    @operation
    def update(
        self,
        /,
        thread_id: str,
        *,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> Call[JSON]:
        """`PATCH /api/memory/threads/{threadId}` with the fields given → the Thread."""
        body = {**compact(title=title, metadata=metadata), **extra}
        return Call("PATCH", f"/memory/threads/{segment(thread_id)}", body=body)

    @operation
    def delete(self, thread_id: str) -> Call[None]:
        """`DELETE /api/memory/threads/{threadId}`."""
        return Call("DELETE", f"/memory/threads/{segment(thread_id)}", read=_nothing)

    @operation
    def messages(self, thread_id: str, *, limit: int | None = None) -> Call[Records]:
        """`GET /api/memory/threads/{threadId}/messages` → the stored messages, oldest first
        (with `limit`, the last `limit` of them)."""
        path = f"/memory/threads/{segment(thread_id)}/messages"
        return Call("GET", path, params=_query(limit=limit), read=_messages)


def _bastion_error(response: httpx.Response) -> BastionError:
    body = json_object(response)
    message = text_or_none(body.get("error")) or response.reason_phrase or "error"
    detail = text_or_none(body.get("message"))
    return BastionError(response.status_code, message, detail=detail, response=response)


def _bastion_wire(base_url: str, token: str | None, origin: str | None) -> Wire:
    return Wire.at(
        base_url,
        path=lambda path: path + "/api",
        token=token,
        origin=origin,
        error=_bastion_error,
        capture_token=False,
    )


class BastionAPI(RootSection[M]):
    """The operations of `BastionClient` and `AsyncBastionClient` (one definition for both)."""

    agents: Agents[M]
    tools: Tools[M]
    threads: Threads[M]
    _make_wire = staticmethod(_bastion_wire)

    def _attach(self, driver: Driver[M]) -> None:
        super()._attach(driver)
        self.agents = Agents(driver)
        self.tools = Tools(driver)
        self.threads = Threads(driver)


class BastionClient(SyncHandle, BastionAPI[Sync]):
    """A client of the agent server: `BastionClient(base_url, *, token=None, cookies=None,
    origin=None, http_client=None, timeout=...)`.

    `base_url`: the server's root (paths go under `{base_url}/api`); `token`: a bearer token;
    `cookies`: session cookies; `origin`: the Origin header (default: `base_url`'s origin);
    `http_client`: an `httpx.Client` to use (then `close()` leaves it open); `timeout`: for
    the client it makes (default: 60 s a read, so a slow model does not cut a stream).
    """


class AsyncBastionClient(AsyncHandle, BastionAPI[Async]):
    """`BastionClient` for asyncio: the same operations, awaited (`stream` is not awaited:
    it returns an async iterator); `http_client` is an `httpx.AsyncClient`."""
