"""The typed events of an agent stream (`POST /api/agents/{id}/stream`, docs/http-api.md).

Each server-sent event `event: <type>` / `data: <JSON>` becomes one frozen dataclass; its
`type` field is a literal, so `match`/`isinstance` or `event.type == "text-delta"` narrow the
union. Keys keep the server's meaning, in Python spelling (`toolCallId` → `tool_call_id`);
nested objects (`args`, `result`, `usage`) are handed over as the server sent them.

An event name this client does not know becomes `UnknownEvent` (a newer server may add
some); a known event whose data is not the documented JSON raises `ProtocolError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .errors import ProtocolError
from .sse import ServerSentEvent

__all__ = [
    "AgentEvent",
    "ErrorEvent",
    "FinishEvent",
    "TextDeltaEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "UnknownEvent",
    "parse_event",
]


@dataclass(frozen=True, slots=True)
class TextDeltaEvent:
    """More of the answer's text."""

    text: str
    type: Literal["text-delta"] = field(default="text-delta", init=False)


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    """The model called a tool with `args`."""

    tool_call_id: str
    tool_name: str
    args: Any
    type: Literal["tool-call"] = field(default="tool-call", init=False)


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    """A tool call's result; `is_error` when the tool failed or refused (then `result` is
    `{"error": ...}`, which the model was shown)."""

    tool_call_id: str
    tool_name: str
    result: Any
    is_error: bool = False
    type: Literal["tool-result"] = field(default="tool-result", init=False)


@dataclass(frozen=True, slots=True)
class FinishEvent:
    """The answer is complete: why, the token usage, and the memory thread it went to."""

    finish_reason: str
    usage: Mapping[str, Any]
    thread_id: str | None = None
    type: Literal["finish"] = field(default="finish", init=False)


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """The run failed after the stream began; the server ends the stream after it."""

    error: str
    type: Literal["error"] = field(default="error", init=False)


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event this client has no type for: its name and raw data."""

    event: str
    data: str
    type: Literal["unknown"] = field(default="unknown", init=False)


AgentEvent: TypeAlias = (
    TextDeltaEvent | ToolCallEvent | ToolResultEvent | FinishEvent | ErrorEvent | UnknownEvent
)


class _Data:
    """The JSON object of one event, read with checks that name the event on failure."""

    def __init__(self, sse: ServerSentEvent) -> None:
        self._event = sse.event
        try:
            data = json.loads(sse.data)
        except ValueError:
            raise self._bad("data is not JSON") from None
        if not isinstance(data, dict):
            raise self._bad("data is not a JSON object")
        self._data: dict[str, Any] = data

    def _bad(self, why: str) -> ProtocolError:
        return ProtocolError(200, f"stream event {self._event!r}: {why}")

    def text(self, key: str) -> str:
        value = self._data.get(key)
        if not isinstance(value, str):
            raise self._bad(f"{key!r} is not a string")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self._data.get(key) is None else self.text(key)

    def any(self, key: str) -> Any:
        if key not in self._data:
            raise self._bad(f"{key!r} is missing")
        return self._data[key]

    def flag(self, key: str) -> bool:
        value = self._data.get(key, False)
        if not isinstance(value, bool):
            raise self._bad(f"{key!r} is not a boolean")
        return value

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self._data.get(key, {})
        if not isinstance(value, dict):
            raise self._bad(f"{key!r} is not an object")
        return value


_PARSERS: dict[str, Callable[[_Data], AgentEvent]] = {
    "text-delta": lambda d: TextDeltaEvent(d.text("text")),
    "tool-call": lambda d: ToolCallEvent(d.text("toolCallId"), d.text("toolName"), d.any("args")),
    "tool-result": lambda d: ToolResultEvent(
        d.text("toolCallId"), d.text("toolName"), d.any("result"), d.flag("isError")
    ),
    "finish": lambda d: FinishEvent(
        d.text("finishReason"), d.mapping("usage"), d.optional_text("threadId")
    ),
    "error": lambda d: ErrorEvent(d.text("error")),
}


def parse_event(sse: ServerSentEvent) -> AgentEvent:
    """The typed event for one server-sent event."""
    parser = _PARSERS.get(sse.event)
    if parser is None:
        return UnknownEvent(sse.event, sse.data)
    return parser(_Data(sse))
