"""The model protocol: given messages and tools, answer with text and tool calls, or stream.

Everything an agent exchanges with a model is one of the small types here, so a model
adapter (the local one, an OpenAI-compatible endpoint, ...) only translates these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Finish",
    "Message",
    "Model",
    "ModelError",
    "ModelResponse",
    "StreamChunk",
    "TextDelta",
    "ToolCall",
    "ToolCallChunk",
    "ToolSpec",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    # On a role="tool" message: which call this is the result of.
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ToolSpec:
    """What a model is told about a tool: its name, description and JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )


@dataclass(frozen=True)
class ModelResponse:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    # "stop", "tool_calls", "length", ...
    finish_reason: str = "stop"


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallChunk:
    """A complete tool call (adapters assemble streamed argument fragments first)."""

    call: ToolCall


@dataclass(frozen=True)
class Finish:
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)


StreamChunk = TextDelta | ToolCallChunk | Finish


class ModelError(Exception):
    """The model failed, timed out or answered something unusable (the server answers 502)."""


@runtime_checkable
class Model(Protocol):
    @property
    def id(self) -> str: ...

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse: ...

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        """Chunks of one answer: TextDelta and ToolCallChunk items, then exactly one Finish."""
        ...
