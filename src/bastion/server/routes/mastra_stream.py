"""A run's stream in the chunks Mastra's own client reads, for a request that asks for them
with `X-Bastion-Stream-Format: mastra`.

Bastion's stream is standard server-sent events, `event: <type>` then `data: <JSON>`
(sse.py). @mastra/client-js reads a stream differently: `processDataStream` takes only
blocks that *begin* with `data: `, whose JSON says its own type: `{"type": "text-delta",
"runId", "from": "AGENT", "payload": {"text"}}`. No block can be both (an `event:` line first
hides it from Mastra; a `data:` line first with another line after is not JSON to it), and
the client sends nothing that tells it apart from other callers, so it asks explicitly: the
header goes in MastraClient's `headers` option, beside the bearer token.

The events are the same, in the same order, with the same content:

| Bastion event | Mastra chunk `type` | `payload` |
|---|---|---|
| `text-delta` | `text-delta` | `{"id", "text"}` |
| `tool-call` | `tool-call` | `{"toolCallId", "toolName", "args"}` |
| `tool-result` | `tool-result` | `{"toolCallId", "toolName", "result", "isError"?}` |
| `finish` | `finish` | `{"stepResult": {"reason"}, "usage", "output": {"usage"}, "threadId"?}` |
| `error` | `error` | `{"error": {"message"}}` |

Finish reasons are spelled as Mastra does (`tool-calls`, not `tool_calls`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import to_json
from starlette.requests import Request

from ...identity.crypto import generate_id
from .common import HTTPError
from .sse import Encoder, encode_event

__all__ = ["STREAM_FORMAT_HEADER", "MastraChunks", "stream_encoder"]

STREAM_FORMAT_HEADER = "X-Bastion-Stream-Format"
# The formats a client may ask for; the default is Bastion's own events.
_FORMATS = ("bastion", "mastra")


class MastraChunks:
    """Encodes one run's events as Mastra chunks (one `runId` for the whole run)."""

    def __init__(self) -> None:
        self.run_id = generate_id()

    def __call__(self, event: str, data: Mapping[str, Any]) -> bytes:
        chunk = {
            "type": event,
            "runId": self.run_id,
            "from": "AGENT",
            "payload": _payload(event, data, self.run_id),
        }
        return b"data: " + to_json(chunk, inf_nan_mode="null") + b"\n\n"


def _payload(event: str, data: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    if event == "text-delta":
        return {"id": run_id, "text": data.get("text", "")}
    if event == "finish":
        usage = data.get("usage")
        reason = str(data.get("finishReason", "other")).replace("_", "-")
        payload: dict[str, Any] = {
            "stepResult": {"reason": reason},
            "usage": usage,
            "output": {"usage": usage},
        }
        if "threadId" in data:
            payload["threadId"] = data["threadId"]
        return payload
    if event == "error":
        return {"error": {"message": data.get("error", "")}}
    return dict(data)  # tool-call, tool-result: Mastra names the fields as Bastion does


def stream_encoder(request: Request) -> Encoder:
    """The encoder the request asked for with `X-Bastion-Stream-Format` (default: Bastion's
    events); another value is a 400 before the run starts."""
    asked = request.headers.get(STREAM_FORMAT_HEADER)
    if asked is None:
        return encode_event
    asked = asked.strip().lower()
    if asked not in _FORMATS:
        raise HTTPError(400, f"{STREAM_FORMAT_HEADER} must be one of: {', '.join(_FORMATS)}")
    return MastraChunks() if asked == "mastra" else encode_event
