"""Stream events (docs/http-api.md "Stream events") into typed objects."""

from __future__ import annotations

import pytest

from bastion.client import (
    ErrorEvent,
    FinishEvent,
    ProtocolError,
    ServerSentEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    UnknownEvent,
    parse_event,
)

USAGE = {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}


@pytest.mark.parametrize(
    ("event", "data", "expected"),
    [
        ("text-delta", '{"text": "Hel"}', TextDeltaEvent("Hel")),
        (
            "tool-call",
            '{"toolCallId": "c1", "toolName": "add", "args": {"a": 1}}',
            ToolCallEvent("c1", "add", {"a": 1}),
        ),
        (
            "tool-result",
            '{"toolCallId": "c1", "toolName": "add", "result": 3}',
            ToolResultEvent("c1", "add", 3),
        ),
        (
            "tool-result",
            '{"toolCallId": "c2", "toolName": "add", "result": {"error": "no"}, "isError": true}',
            ToolResultEvent("c2", "add", {"error": "no"}, is_error=True),
        ),
        (
            "tool-result",  # a result may be null
            '{"toolCallId": "c3", "toolName": "noop", "result": null}',
            ToolResultEvent("c3", "noop", None),
        ),
        (
            "finish",
            '{"finishReason": "stop", "usage": {"inputTokens": 1, "outputTokens": 2, '
            '"totalTokens": 3}, "threadId": "t1"}',
            FinishEvent("stop", USAGE, "t1"),
        ),
        ("finish", '{"finishReason": "length", "usage": {}}', FinishEvent("length", {})),
        ("error", '{"error": "model down"}', ErrorEvent("model down")),
        ("step-start", '{"step": 2}', UnknownEvent("step-start", '{"step": 2}')),
        ("message", "not json at all", UnknownEvent("message", "not json at all")),
    ],
)
def test_parse_event(event: str, data: str, expected: object) -> None:
    assert parse_event(ServerSentEvent(event, data)) == expected


@pytest.mark.parametrize(
    ("event", "data", "why"),
    [
        ("text-delta", "{not json", "not JSON"),
        ("text-delta", '["a"]', "not a JSON object"),
        ("text-delta", '{"text": 5}', "'text' is not a string"),
        ("tool-call", '{"toolCallId": "c1", "toolName": "add"}', "'args' is missing"),
        ("tool-result", '{"toolCallId": "c", "toolName": "t", "result": 1, "isError": "y"}', ""),
        ("finish", '{"finishReason": "stop", "usage": []}', "'usage' is not an object"),
        ("error", "{}", "'error' is not a string"),
    ],
)
def test_a_malformed_known_event_is_a_protocol_error(event: str, data: str, why: str) -> None:
    with pytest.raises(ProtocolError) as bad:
        parse_event(ServerSentEvent(event, data))
    assert f"stream event {event!r}" in bad.value.message and why in bad.value.message


def test_the_type_tags() -> None:
    assert TextDeltaEvent("x").type == "text-delta"
    assert ToolCallEvent("c", "t", {}).type == "tool-call"
    assert ToolResultEvent("c", "t", 1).type == "tool-result"
    assert FinishEvent("stop", {}).type == "finish"
    assert ErrorEvent("e").type == "error"
    assert UnknownEvent("x", "").type == "unknown"
