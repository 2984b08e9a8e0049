"""A deterministic model for demos and tests: no network, the same answer every time.

`LocalModel` is not a language model. It reads the conversation's last message and answers
by a handful of fixed rules, so that agents, tools, streaming and the playground can be
shown and tested without an API key:

- after tool results (the conversation ends with role "tool" messages): text that repeats
  each result verbatim, one line per call, e.g. `whoami returned {"name": "Ada"}`. A tool
  that returns the caller therefore gets the caller named in the answer. It never calls a
  tool right after a tool result, so an agent loop always ends.
- a user message `use <tool> {json arguments}` (arguments optional): a call of that tool,
  if it is offered; otherwise text saying there is no such tool.
- a user message that one of `rules` matches (searched in order, first match wins, and the
  rule's tool must be offered): a call of the rule's tool with arguments from the match.
- anything else: `You said: <the message>`.

Usage counts words, not tokens. Streaming yields the text word by word (whitespace kept, so
the pieces join into the full text), then the tool calls, then one Finish.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..identity._untrusted import InvalidInput, NotJSON, describe_path, parse_json
from .models import (
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

__all__ = ["LocalModel", "ToolTrigger"]

ArgsFromMatch = Callable[[re.Match[str]], Mapping[str, Any]]

# `use get_weather {"city": "Paris"}`: the verb, a tool name, then optional JSON; matched
# whole against the stripped message. Nothing after the JSON: a lazy `(.*?)\s*` there
# took time quadratic in a run of spaces inside it (40,000 spaces: 5 s).
_USE = re.compile(r"use\s+([A-Za-z0-9_.\-]+)\s*(.*)", re.IGNORECASE | re.DOTALL)
# Split before each word that follows whitespace: the pieces keep their spacing.
_WORD_START = re.compile(r"(?<=\s)(?=\S)")


@dataclass(frozen=True)
class ToolTrigger:
    """When `pattern` is found in the last user message, call `tool`.

    The arguments are `args(match)`, or the pattern's named groups when `args` is None:
    `ToolTrigger.of(r"weather in (?P<city>\\w+)", "get_weather")` calls get_weather with
    {"city": ...}.
    """

    pattern: re.Pattern[str]
    tool: str
    args: ArgsFromMatch | None = None

    def __post_init__(self) -> None:
        if not self.tool:
            raise ValueError("a LocalModel rule needs a tool name")

    @classmethod
    def of(
        cls, pattern: str | re.Pattern[str], tool: str, args: ArgsFromMatch | None = None
    ) -> ToolTrigger:
        compiled = re.compile(pattern, re.IGNORECASE) if isinstance(pattern, str) else pattern
        return cls(compiled, tool, args)

    def arguments(self, match: re.Match[str]) -> dict[str, Any]:
        if self.args is None:
            return {k: v for k, v in match.groupdict().items() if v is not None}
        return dict(self.args(match))


TriggerLike = (
    ToolTrigger
    | tuple[str | re.Pattern[str], str]
    | tuple[str | re.Pattern[str], str, ArgsFromMatch]
)


class LocalModel:
    """The demo/test model described above. `LocalModel(rules=[(regex, tool, args_from_match)])`;
    string patterns are case-insensitive. `delay` pauses between streamed words (for demos)."""

    def __init__(
        self, *, name: str = "echo", rules: Iterable[TriggerLike] = (), delay: float = 0.0
    ) -> None:
        if delay < 0:
            raise ValueError("delay must not be negative")
        self._id = f"local/{name}"
        self.rules: tuple[ToolTrigger, ...] = tuple(
            r if isinstance(r, ToolTrigger) else ToolTrigger.of(*r) for r in rules
        )
        self.delay = delay

    @property
    def id(self) -> str:
        return self._id

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        return self.respond(messages, tools)

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        response = self.respond(messages, tools)
        for i, piece in enumerate(p for p in _WORD_START.split(response.text) if p):
            if i and self.delay:
                await asyncio.sleep(self.delay)
            yield TextDelta(piece)
        for call in response.tool_calls:
            yield ToolCallChunk(call)
        yield Finish(response.finish_reason, response.usage)

    def respond(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        """The answer, computed without I/O (what generate returns and stream splits up)."""
        text, call = _answer(messages, {t.name for t in tools}, self.rules)
        calls: tuple[ToolCall, ...] = ()
        if call is not None:
            name, arguments = call
            calls = (ToolCall(f"call_{_calls_so_far(messages) + 1}", name, arguments),)
        usage = Usage(
            input_tokens=sum(_message_words(m) for m in messages),
            output_tokens=_words(text) + sum(_call_words(c) for c in calls),
        )
        return ModelResponse(
            text=text,
            tool_calls=calls,
            usage=usage,
            finish_reason="tool_calls" if calls else "stop",
        )


def _answer(
    messages: Sequence[Message], offered: set[str], rules: Sequence[ToolTrigger]
) -> tuple[str, tuple[str, dict[str, Any]] | None]:
    """(text, tool call or None) for the conversation."""
    talk = [m for m in messages if m.role != "system"]
    if talk and talk[-1].role == "tool":
        return _tool_summary(talk), None
    user = next((m for m in reversed(talk) if m.role == "user"), None)
    said = user.content.strip() if user is not None else ""
    if not said:
        return "You said nothing.", None
    use = _USE.fullmatch(said)
    if use is not None:
        return _use(use.group(1), use.group(2), offered)
    for rule in rules:
        if rule.tool not in offered:
            continue
        match = rule.pattern.search(said)
        if match is not None:
            return "", (rule.tool, rule.arguments(match))
    return f"You said: {said}", None


def _use(name: str, raw: str, offered: set[str]) -> tuple[str, tuple[str, dict[str, Any]] | None]:
    if name not in offered:
        available = ", ".join(sorted(offered)) or "none"
        return f"There is no tool named {name}. Available tools: {available}.", None
    # The client writes these arguments (in its message): they are parsed as a request
    # body is, so that nothing the agent would store and fail to read back gets through.
    try:
        arguments = parse_json(raw) if raw else {}
    except NotJSON:
        arguments = None
    except InvalidInput as exc:
        return f"Cannot call {name}: {describe_path(exc.path, 'the JSON')} {exc.reason}.", None
    if not isinstance(arguments, dict):
        return f"Cannot call {name}: the arguments are not a JSON object.", None
    return "", (name, arguments)


def _tool_summary(talk: Sequence[Message]) -> str:
    """One line per trailing tool result: `<tool> returned <result as given>`."""
    names = {c.id: c.name for m in talk for c in m.tool_calls}
    results: list[Message] = []
    for m in reversed(talk):
        if m.role != "tool":
            break
        results.append(m)
    lines = [
        f"{m.name or names.get(m.tool_call_id or '', 'the tool')} returned {m.content}"
        for m in reversed(results)
    ]
    return "\n".join(lines)


def _calls_so_far(messages: Sequence[Message]) -> int:
    return sum(len(m.tool_calls) for m in messages)


def _words(text: str) -> int:
    return len(text.split())


def _call_words(call: ToolCall) -> int:
    return 1 + _words(json.dumps(call.arguments, default=str))


def _message_words(message: Message) -> int:
    return _words(message.content) + sum(_call_words(c) for c in message.tool_calls)
