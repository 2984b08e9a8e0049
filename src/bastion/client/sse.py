"""Server-sent events: bytes in, events out, as the WHATWG EventSource parser reads them.

`SSEDecoder` does no I/O: feed it the body's chunks as they arrive (any split, even inside
a line, a UTF-8 character or a CRLF pair) and it returns the events those chunks completed.
`iter_sse` / `aiter_sse` wrap it around an (async) iterable of chunks.

What it follows (html.spec.whatwg.org, "Interpreting an event stream"):
- lines end with CRLF, LF or CR (nothing else: not U+2028, which `str.splitlines` would cut);
- a leading UTF-8 BOM is dropped; lines are decoded as UTF-8, bad bytes replaced;
- `:` starts a comment; `field: value` loses one space after the colon; a line without a
  colon is a field with an empty value; unknown fields are ignored;
- `data` lines are joined with "\\n"; a blank line dispatches; a block without any `data`
  line dispatches nothing (and forgets its `event` name);
- `id` (without NUL) is remembered across events; `retry` (ASCII digits) sets `retry`;
- an event not ended by a blank line when the stream closes is dropped.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent", "aiter_sse", "iter_sse"]

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its type (`"message"` when unnamed), data and last event id."""

    event: str = "message"
    data: str = ""
    id: str = ""


class SSEDecoder:
    """An incremental event-stream parser; one per stream."""

    def __init__(self) -> None:
        self._tail = b""  # the bytes of a line whose end has not arrived yet
        self._after_cr = False  # the last chunk ended in CR: a LF opening the next is its pair
        self._first_line = True
        self._event = ""
        self._data: list[str] = []
        self._last_id = ""
        self.retry: int | None = None
        """The reconnection time (ms) the server asked for, if it did."""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events completed by `chunk`, in order."""
        if not chunk:
            return []
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = False
        buffer = self._tail + chunk
        events: list[ServerSentEvent] = []
        start = 0
        for match in _LINE_END.finditer(buffer):
            event = self._line(buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._tail = buffer[start:]
        # A CR at the very end may be the first half of a CRLF split across chunks.
        self._after_cr = not self._tail and buffer.endswith(b"\r")
        return events

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        line = raw.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event, self._data
        self._event, self._data = "", []
        if not data:
            return None
        return ServerSentEvent(event or "message", "\n".join(data), self._last_id)


def iter_sse(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """The events of a stream given as byte chunks (e.g. `response.iter_bytes()`)."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)


async def aiter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """The events of a stream given as async byte chunks (e.g. `response.aiter_bytes()`)."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
