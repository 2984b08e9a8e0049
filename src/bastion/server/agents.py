"""Agents: instructions, a model and tools, run in a loop until the model answers.

    agent = Agent(name="Weather", instructions="...", model=model, tools=[get_weather])
    result = await agent.generate("Weather in Paris?")       # Generation
    async for event in agent.stream("Weather in Paris?"):    # TextDeltaEvent, ToolCallEvent, ...
        ...

One step is one model call. When the model asks for tools, each call runs (in order, with
the request context) and its result goes back to the model as a `tool` message; the loop
ends when the model answers without tool calls, or after `max_steps` model calls: the
tools the last step asked for still run, but the model is not called again (the finish
reason is then the model's last, usually "tool_calls").

A tool that fails does not fail the generation: bad arguments (`ToolInputError`), a
refusal (`PermissionError`, a caller without the tool's `requires_permission` included: the
tool then does not run), an unknown tool name or any other exception become an error
result, `{"error": "..."}`, that the model sees and can answer about; so does a result that
no answer could carry and no thread read back (a lone surrogate, nesting deeper than
`MAX_JSON_DEPTH`). Only the model's own failure (`ModelError`) ends a generation with an
error, and such an answer of the model is one: text or tool arguments with a lone surrogate,
arguments nested too deep. (A NUL is valid in an answer; a memory refuses it before
writing, when the answer is to be stored.)
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from ..auth.context import RequestContext, current_context
from ..identity._untrusted import InvalidInput, check_value, describe_path, string_problem
from .models import (
    Finish,
    Message,
    Model,
    ModelError,
    TextDelta,
    ToolCall,
    ToolCallChunk,
    ToolSpec,
    Usage,
)
from .tools import ToolInputError, authorize_tool

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentTool",
    "FinishEvent",
    "Generation",
    "TextDeltaEvent",
    "ToolCallEvent",
    "ToolResult",
    "ToolResultEvent",
    "slugify",
    "to_messages",
]

logger = logging.getLogger("bastion.server")

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")

T = TypeVar("T")


@runtime_checkable
class AgentTool(Protocol):
    """What an agent needs of a tool (`bastion.server.tools.Tool` is one)."""

    @property
    def id(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def input_schema(self) -> dict[str, Any]: ...

    async def execute(self, args: Mapping[str, Any], context: RequestContext) -> Any: ...


@dataclass(frozen=True, slots=True)
class ToolResult:
    tool_call_id: str
    tool_name: str
    result: Any
    # The tool did not run or failed; `result` is then {"error": "..."}.
    is_error: bool = False

    def to_json(self) -> dict[str, Any]:
        data = {"toolCallId": self.tool_call_id, "toolName": self.tool_name, "result": self.result}
        if self.is_error:
            data["isError"] = True
        return data


def call_json(call: ToolCall) -> dict[str, Any]:
    return {"toolCallId": call.id, "toolName": call.name, "args": call.arguments}


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.input_tokens + usage.output_tokens,
    }


@dataclass(frozen=True, slots=True)
class Generation:
    """The outcome of `Agent.generate`."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    tool_results: tuple[ToolResult, ...]
    finish_reason: str
    usage: Usage
    steps: int
    # What this generation added to the conversation (assistant and tool messages), in
    # order: what a memory stores after the caller's messages.
    messages: tuple[Message, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "toolCalls": [call_json(call) for call in self.tool_calls],
            "toolResults": [result.to_json() for result in self.tool_results],
            "finishReason": self.finish_reason,
            "usage": usage_json(self.usage),
        }


# Stream events: `event` is the SSE event name, `data()` its JSON payload.


@dataclass(frozen=True, slots=True)
class TextDeltaEvent:
    event: ClassVar[str] = "text-delta"
    text: str

    def data(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    event: ClassVar[str] = "tool-call"
    call: ToolCall

    def data(self) -> dict[str, Any]:
        return call_json(self.call)


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    event: ClassVar[str] = "tool-result"
    result: ToolResult

    def data(self) -> dict[str, Any]:
        return self.result.to_json()


@dataclass(frozen=True, slots=True)
class FinishEvent:
    event: ClassVar[str] = "finish"
    finish_reason: str
    usage: Usage
    # The full text of the last step and the messages added, as in a Generation.
    text: str = ""
    messages: tuple[Message, ...] = ()

    def data(self) -> dict[str, Any]:
        return {"finishReason": self.finish_reason, "usage": usage_json(self.usage)}


AgentEvent = TextDeltaEvent | ToolCallEvent | ToolResultEvent | FinishEvent


def slugify(name: str) -> str:
    """`"Weather Agent"` → `"weather-agent"`."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def to_messages(messages: str | Message | Sequence[Message]) -> list[Message]:
    if isinstance(messages, str):
        return [Message(role="user", content=messages)]
    if isinstance(messages, Message):
        return [messages]
    return list(messages)


class Agent:
    def __init__(
        self,
        *,
        name: str,
        instructions: str,
        model: Model,
        tools: Sequence[AgentTool] = (),
        id: str | None = None,
        max_steps: int = 5,
    ) -> None:
        self.name = name
        self.id = id if id is not None else slugify(name)
        if not ID_PATTERN.fullmatch(self.id):
            raise ValueError(f"agent id {self.id!r}: 1-128 letters, digits, '_' or '-' (id=...)")
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.instructions = instructions
        self.model = model
        self.max_steps = max_steps
        self.tools: dict[str, AgentTool] = {}
        for tool in tools:
            if tool.id in self.tools:
                raise ValueError(f"agent {self.id!r}: two tools have the id {tool.id!r}")
            self.tools[tool.id] = tool
        # Built once: every step offers the model the same specs.
        self._specs = tuple(ToolSpec(t.id, t.description, t.input_schema) for t in tools)

    def __repr__(self) -> str:
        return f"<Agent {self.id!r}>"

    def _start(
        self, messages: str | Message | Sequence[Message], max_steps: int | None
    ) -> tuple[list[Message], int]:
        limit = self.max_steps if max_steps is None else max_steps
        if limit < 1:
            raise ValueError("max_steps must be at least 1")
        transcript = (
            [Message(role="system", content=self.instructions)] if self.instructions else []
        )
        transcript.extend(to_messages(messages))
        return transcript, limit

    async def generate(
        self,
        messages: str | Message | Sequence[Message],
        *,
        context: RequestContext | None = None,
        max_steps: int | None = None,
    ) -> Generation:
        """Run the loop; raises ModelError when the model fails."""
        context = context if context is not None else current_context()
        transcript, limit = self._start(messages, max_steps)
        first_new = len(transcript)
        usage = Usage()
        calls: list[ToolCall] = []
        results: list[ToolResult] = []
        steps = 0
        while True:
            response = await self.model.generate(transcript, self._specs)
            _check_text(response.text)
            for call in response.tool_calls:
                _check_call(call)
            steps += 1
            usage = usage + response.usage
            transcript.append(
                Message(role="assistant", content=response.text, tool_calls=response.tool_calls)
            )
            calls.extend(response.tool_calls)
            for call in response.tool_calls:
                result = await self._run_tool(call, context)
                results.append(result)
                transcript.append(_tool_message(result))
            if not response.tool_calls or steps >= limit:
                break
        return Generation(
            text=response.text,
            tool_calls=tuple(calls),
            tool_results=tuple(results),
            finish_reason=response.finish_reason,
            usage=usage,
            steps=steps,
            messages=tuple(transcript[first_new:]),
        )

    async def stream(
        self,
        messages: str | Message | Sequence[Message],
        *,
        context: RequestContext | None = None,
        max_steps: int | None = None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """The loop as events: text deltas and tool calls as the model streams them, tool
        results as the tools return, then one FinishEvent. ModelError propagates."""
        context = context if context is not None else current_context()
        transcript, limit = self._start(messages, max_steps)
        first_new = len(transcript)
        usage = Usage()
        steps = 0
        while True:
            parts: list[str] = []
            calls: list[ToolCall] = []
            finish: Finish | None = None
            # Closed on the way out, whatever ends this generator: a consumer that stops
            # early (a client that hung up) also stops the model's stream at once, rather
            # than when the garbage collector gets to it (an HTTP stream stays open till then).
            async with _closing(self.model.stream(transcript, self._specs)) as chunks:
                async for chunk in chunks:
                    if isinstance(chunk, TextDelta):
                        _check_text(chunk.text)
                        parts.append(chunk.text)
                        yield TextDeltaEvent(chunk.text)
                    elif isinstance(chunk, ToolCallChunk):
                        _check_call(chunk.call)
                        calls.append(chunk.call)
                        yield ToolCallEvent(chunk.call)
                    elif isinstance(chunk, Finish):
                        finish = chunk
            if finish is None:
                raise ModelError("the model's stream ended without a finish")
            steps += 1
            usage = usage + finish.usage
            text = "".join(parts)
            transcript.append(Message(role="assistant", content=text, tool_calls=tuple(calls)))
            for call in calls:
                result = await self._run_tool(call, context)
                transcript.append(_tool_message(result))
                yield ToolResultEvent(result)
            if not calls or steps >= limit:
                yield FinishEvent(finish.finish_reason, usage, text, tuple(transcript[first_new:]))
                return

    async def _run_tool(self, call: ToolCall, context: RequestContext) -> ToolResult:
        tool = self.tools.get(call.name)
        if tool is None:
            return _error(call, f"Unknown tool: {call.name}")
        try:
            # Here too, not only in Tool.execute: any AgentTool may declare a permission.
            authorize_tool(tool, context)
            value = await tool.execute(call.arguments, context)
        except ToolInputError as exc:
            return _error(call, f"Invalid arguments: {exc}")
        except PermissionError as exc:
            return _error(call, f"Permission denied: {exc}" if str(exc) else "Permission denied")
        except Exception as exc:  # the model hears that it failed; the details go to the log
            logger.exception(
                "tool %s of agent %s raised %s", call.name, self.id, type(exc).__name__
            )
            return _error(call, f"Tool {call.name} failed")
        try:
            check_value(value, refuse_nul=False)
        except InvalidInput as exc:  # no answer could carry it, no thread read it back
            logger.error("tool %s of agent %s returned a value that %s", call.name, self.id, exc)
            return _error(call, f"Tool {call.name} returned a value that cannot be sent or stored")
        return ToolResult(call.id, call.name, value)


@asynccontextmanager
async def _closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """`contextlib.aclosing` for any async iterator: a model's `stream` need not be an
    async generator, and only those have `aclose`."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def _check_text(text: str) -> None:
    problem = string_problem(text, refuse_nul=False)
    if problem is not None:
        raise ModelError(f"the model answered text that {problem}")


def _check_call(call: ToolCall) -> None:
    """The model's tool call, before it runs or is stored."""
    try:
        check_value(call.arguments, refuse_nul=False)
    except InvalidInput as exc:
        where = describe_path(exc.path, "arguments")
        raise ModelError(f"unusable call of {call.name}: {where} {exc.reason}") from None
    for value in (call.id, call.name):
        _check_text(value)


def _error(call: ToolCall, message: str) -> ToolResult:
    return ToolResult(call.id, call.name, {"error": message}, is_error=True)


def _tool_message(result: ToolResult) -> Message:
    return Message(
        role="tool",
        content=json.dumps(result.result, default=str, ensure_ascii=False),
        tool_call_id=result.tool_call_id,
        name=result.tool_name,
    )
