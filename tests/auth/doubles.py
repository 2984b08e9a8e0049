"""What the pipeline and server tests share: a scripted model (a stand-in for an LLM), small
providers that record what they are given, and an HTTP client on a Bastion app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.requests import HTTPConnection

from bastion.auth import AuthProvider
from bastion.server.models import (
    Finish,
    Message,
    ModelResponse,
    StreamChunk,
    TextDelta,
    ToolCall,
    ToolCallChunk,
    ToolSpec,
    Usage,
)

BASE = "http://testserver"


@asynccontextmanager
async def client(app: Any, base_url: str = BASE) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


Step = ModelResponse | Exception | Callable[[Sequence[Message]], ModelResponse]


class ScriptedModel:
    """Answers with the scripted steps in turn (then repeats the last); records each call.

    A step is a ModelResponse, an exception to raise, or a function of the messages.
    """

    def __init__(self, *steps: Step, model_id: str = "scripted/test") -> None:
        self.steps = list(steps) or [ModelResponse(text="ok")]
        self.calls: list[tuple[list[Message], list[ToolSpec]]] = []
        self._id = model_id

    @property
    def id(self) -> str:
        return self._id

    def _next(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        step = self.steps[min(len(self.calls), len(self.steps) - 1)]
        self.calls.append((list(messages), list(tools)))
        if isinstance(step, Exception):
            raise step
        if isinstance(step, ModelResponse):
            return step
        return step(messages)

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        return self._next(messages, tools)

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        response = self._next(messages, tools)
        for word in response.text.split(" ") if response.text else []:
            yield TextDelta(word + " ")
        for call in response.tool_calls:
            yield ToolCallChunk(call)
        yield Finish(response.finish_reason, response.usage)


def calls(*calls: tuple[str, str, dict[str, Any]], tokens: int = 1) -> ModelResponse:
    """A step asking for tools: `calls(("c1", "whoami", {}))`."""
    return ModelResponse(
        tool_calls=tuple(ToolCall(i, name, args) for i, name, args in calls),
        usage=Usage(tokens, tokens),
        finish_reason="tool_calls",
    )


def text(value: str, tokens: int = 1) -> ModelResponse:
    return ModelResponse(text=value, usage=Usage(tokens, tokens))


class Recording(AuthProvider):
    """Users by token; records the tokens it was asked about and what it authorized."""

    def __init__(self, users: dict[str, Any] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.users = users if users is not None else {"good": {"id": "u1", "role": "admin"}}
        self.tokens: list[str] = []
        self.requests: list[HTTPConnection] = []

    async def authenticate_token(self, token: str, request: HTTPConnection) -> Any | None:
        self.tokens.append(token)
        self.requests.append(request)
        return self.users.get(token)
