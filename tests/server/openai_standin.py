"""A stand-in for an OpenAI-compatible chat-completions server, served by uvicorn on
127.0.0.1 in the test's own event loop.

    async with serve_standin() as standin:          # or the `openai_standin` fixture
        async with standin.model() as model:        # an OpenAIModel pointed at it
            await model.generate([Message("user", "hi")], [])
        standin.requests[-1].body["messages"]       # what the client sent

It checks the bearer key (a wrong one gets OpenAI's 401, with the key echoed back in full,
which OpenAI itself does not do: a client must not pass it on). It answers from `replies`
(queued `Reply` items, used first) or else from `script(body)`, by default:

- the last message is a tool result  -> text "Tool said: <results>"
- tools offered, last message is the user's -> a call of the first offered tool whose name
  appears in the message (else the first tool), with the first JSON object in the message
  as arguments ({} if none)
- otherwise -> text "Echo: <last message>"

Streaming follows OpenAI: a role chunk, text word by word, each tool call's id and name and
then its arguments in pieces of a few characters, a finish chunk, a usage chunk when
`stream_options.include_usage` is set, then `data: [DONE]`. Set `fail` to misbehave (see
`Failure`), or `ignore_stream` to answer streaming requests with one JSON body.

Other test packages use it with `from tests.server.openai_standin import openai_standin`
in their conftest.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bastion.server.openai import OpenAIModel

__all__ = [
    "STANDIN_KEY",
    "Failure",
    "OpenAIStandin",
    "RecordedRequest",
    "Reply",
    "default_script",
    "free_port",
    "openai_standin",
    "serve_standin",
]

STANDIN_KEY = "sk-standin-0123456789abcdef"
_WORD_START = re.compile(r"(?<=\s)(?=\S)")
_ARGUMENT_PIECE = 7  # characters per streamed argument fragment (OpenAI's are similar)


@dataclass(frozen=True)
class Reply:
    """One answer. Tool-call arguments are an object, or raw text sent as-is (to send
    invalid JSON). `usage` is (prompt, completion); None counts words."""

    text: str = ""
    tool_calls: Sequence[tuple[str, dict[str, Any] | str]] = ()
    usage: tuple[int, int] | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class Failure:
    """How to misbehave, on every request while `standin.fail` is set.

    status     answer this status with an OpenAI-style error body carrying `message`
    delay      seconds to stall: before the answer, or after the first chunk of a stream
    malformed  a 200 body that is not JSON (streaming: one event that is not JSON)
    truncate   streaming: close the stream before the finish chunk and [DONE]
    """

    status: int | None = None
    message: str = "The server had an error while processing your request."
    delay: float = 0.0
    malformed: bool = False
    truncate: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any


def default_script(body: dict[str, Any]) -> Reply:
    messages: list[dict[str, Any]] = body.get("messages") or []
    last = messages[-1] if messages else {"role": "user", "content": ""}
    if last.get("role") == "tool":
        results: list[str] = []
        for m in reversed(messages):
            if m.get("role") != "tool":
                break
            results.insert(0, str(m.get("content")))
        return Reply(text="Tool said: " + " | ".join(results))
    content = str(last.get("content") or "")
    tools = [t["function"]["name"] for t in body.get("tools") or []]
    if tools and last.get("role") == "user":
        name = next((t for t in tools if t in content), tools[0])
        start, end = content.find("{"), content.rfind("}")
        arguments = json.loads(content[start : end + 1]) if 0 <= start < end else {}
        return Reply(tool_calls=[(name, arguments)])
    return Reply(text=f"Echo: {content}")


class OpenAIStandin:
    def __init__(self, api_key: str = STANDIN_KEY) -> None:
        self.api_key = api_key
        self.base_url = ""  # set once serving: http://127.0.0.1:<port>/v1
        self.requests: list[RecordedRequest] = []
        self.replies: list[Reply] = []
        self.script: Callable[[dict[str, Any]], Reply] = default_script
        self.fail: Failure | None = None
        # Answer `stream: true` with one JSON body, as some compatible servers do.
        self.ignore_stream = False
        self._calls = 0
        self._closing = asyncio.Event()  # releases stalled answers at shutdown
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    def model(self, **options: Any) -> OpenAIModel:
        """An OpenAIModel pointed here with the right key (options override)."""
        options.setdefault("base_url", self.base_url)
        options.setdefault("api_key", self.api_key)
        return OpenAIModel(options.pop("model", "standin-1"), **options)

    async def _chat(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(RecordedRequest(request.url.path, dict(request.headers), body))
        provided = request.headers.get("authorization", "")
        if provided != f"Bearer {self.api_key}":
            key = provided.removeprefix("Bearer ")
            return _error(401, f"Incorrect API key provided: {key}.", "invalid_api_key")
        if not isinstance(body, dict) or "messages" not in body:
            return _error(400, "'messages' is a required property", None)
        fail = self.fail or Failure()
        if fail.status is not None:
            return _error(fail.status, fail.message, None)
        reply = self.replies.pop(0) if self.replies else self.script(body)
        calls = [(self._next_call_id(), name, args) for name, args in reply.tool_calls]
        if body.get("stream") and not self.ignore_stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = self._events(body, reply, calls, fail, include_usage)
            return StreamingResponse(events, media_type="text/event-stream")
        await self._stall(fail.delay)
        if fail.malformed:
            return Response('{"choices": [', media_type="application/json")
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": _text(a)}}
                for i, n, a in calls
            ]
        return JSONResponse(
            {
                **_envelope(body, "chat.completion"),
                "choices": [
                    {"index": 0, "message": message, "finish_reason": _reason(reply, calls)}
                ],
                "usage": _usage(body, reply, calls),
            }
        )

    async def _events(
        self,
        body: dict[str, Any],
        reply: Reply,
        calls: list[tuple[str, str, dict[str, Any] | str]],
        fail: Failure,
        include_usage: bool,
    ) -> AsyncIterator[str]:
        def event(choice: dict[str, Any] | None, **extra: Any) -> str:
            chunk = {**_envelope(body, "chat.completion.chunk"), "choices": [], **extra}
            if choice is not None:
                chunk["choices"] = [{"index": 0, "finish_reason": None, **choice}]
            return f"data: {json.dumps(chunk)}\n\n"

        yield event({"delta": {"role": "assistant", "content": ""}})
        await self._stall(fail.delay)
        if fail.malformed:
            yield 'data: {"choices": [\n\n'
        for piece in (p for p in _WORD_START.split(reply.text) if p):
            yield event({"delta": {"content": piece}})
        for index, (call_id, name, args) in enumerate(calls):
            head = {"index": index, "id": call_id, "type": "function"}
            head["function"] = {"name": name, "arguments": ""}
            yield event({"delta": {"tool_calls": [head]}})
            text = _text(args)
            for at in range(0, len(text), _ARGUMENT_PIECE):
                piece = {"index": index, "function": {"arguments": text[at : at + _ARGUMENT_PIECE]}}
                yield event({"delta": {"tool_calls": [piece]}})
        if fail.truncate:
            return
        yield event({"delta": {}, "finish_reason": _reason(reply, calls)})
        if include_usage:
            yield event(None, usage=_usage(body, reply, calls))
        yield "data: [DONE]\n\n"

    async def _stall(self, seconds: float) -> None:
        if seconds > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    def _next_call_id(self) -> str:
        self._calls += 1
        return f"call_standin_{self._calls}"


def _error(status: int, message: str, code: str | None) -> JSONResponse:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    error = {"message": message, "type": kind, "param": None, "code": code}
    return JSONResponse({"error": error}, status_code=status)


def _envelope(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"id": "chatcmpl-standin", "object": kind, "created": int(time.time()),
            "model": body.get("model")}  # fmt: skip


def _text(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _reason(reply: Reply, calls: Sequence[object]) -> str:
    return reply.finish_reason or ("tool_calls" if calls else "stop")


def _usage(
    body: dict[str, Any], reply: Reply, calls: list[tuple[str, str, dict[str, Any] | str]]
) -> dict[str, int]:
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        prompt = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
        completion = len(reply.text.split()) + sum(len(_text(a).split()) for _, _, a in calls)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve_standin(api_key: str = STANDIN_KEY) -> AsyncIterator[OpenAIStandin]:
    standin = OpenAIStandin(api_key)
    port = free_port()
    config = uvicorn.Config(
        standin.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(250):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    if not server.started:
        server.should_exit = True
        raise RuntimeError(f"the OpenAI stand-in did not start on port {port}")
    standin.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield standin
    finally:
        standin._closing.set()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def openai_standin() -> AsyncIterator[OpenAIStandin]:
    """A running stand-in, fresh for each test."""
    async with serve_standin() as standin:
        yield standin
