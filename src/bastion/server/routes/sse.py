"""Server-sent events out: the encoding of one event, and a response that streams them.

`EventStream(chunks)` sends the encoded events an async iterator yields, each as soon as it
is there (one ASGI `send` per event: nothing is buffered). Three things a plain
`StreamingResponse` does not do:

- **The status is decided by the first event.** The iterator is advanced once before the
  headers go out, so a failure before anything was produced (the model is down) is still an
  ordinary JSON error with its status (`HTTPError`, e.g. 502). After the first byte the
  status is spent: a failure becomes an `error` event, and the stream ends.
- **A client that hangs up stops the work.** A watcher waits for `http.disconnect` and
  cancels the iterator where it stands (in the model's stream, in a tool), even when no
  event is due: ASGI servers such as uvicorn drop writes to a closed connection silently,
  so a failed write cannot be relied on to notice.
- **The iterator is always closed** (`aclose`), so whatever it holds (an upstream HTTP
  stream) is released at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from pydantic_core import to_json
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .common import HTTPError, json_response

__all__ = ["Encoder", "EventStream", "encode_event"]

logger = logging.getLogger("bastion.server")

# Headers the stream sets itself; any other header on the response (a provider's refreshed
# Set-Cookie) also goes on a JSON error sent in its place.
_OWN_HEADERS = frozenset({b"content-type", b"cache-control", b"x-accel-buffering"})


# How one event becomes bytes: `encode_event`, or another wire format of the same events
# (mastra_stream.py).
Encoder = Callable[[str, Mapping[str, Any]], bytes]


def encode_event(event: str, data: Mapping[str, Any]) -> bytes:
    """`event: <event>` and `data: <JSON>`, then the blank line that dispatches it. Compact
    JSON never holds a raw line break (those inside strings are escaped), so one `data`
    line carries the whole object."""
    return b"event: " + event.encode() + b"\ndata: " + to_json(data, inf_nan_mode="null") + b"\n\n"


class EventStream(Response):
    """A `text/event-stream` answer of the encoded events `chunks` yields.

    `chunks` raises `HTTPError` to refuse: before its first event that is the response (a
    JSON error with that status); afterwards, an `error` event with the message. Any other
    exception is logged and answered as a 500, or an `error` event "Internal server error".
    """

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncIterator[bytes], encode: Encoder = encode_event) -> None:
        # Not Response.__init__: with no body it would announce `content-length: 0`.
        self.chunks = chunks
        self.encode = encode  # the format of `chunks`, for the error event sent in the end
        self.status_code = 200
        self.background = None
        # `X-Accel-Buffering: no`: nginx would otherwise hold events back in its buffer.
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Plain asyncio rather than an anyio task group: this runs once per stream, and the
        # benchmark of many short streams counts every microsecond of it.
        host = asyncio.current_task()
        assert host is not None
        hung_up = False

        async def watch() -> None:
            nonlocal hung_up
            # The request body was read before the stream began; what comes now is the end.
            while (await receive())["type"] != "http.disconnect":
                pass
            hung_up = True
            host.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await self._stream(scope, send)
        except asyncio.CancelledError:
            if not hung_up:
                raise  # cancelled from outside (a shutdown): not ours to swallow
            host.uncancel()
        finally:
            # No await between the end of the stream and this: the watcher cannot cancel
            # the host any more once it is cancelled itself.
            watcher.cancel()
            await _aclose(self.chunks)

    async def _stream(self, scope: Scope, send: Send) -> None:
        try:
            first: bytes | None = await anext(self.chunks)
        except StopAsyncIteration:
            first = None
        except HTTPError as exc:
            await self._refuse(exc.status, exc.body()["error"], exc.headers(), scope, send)
            return
        except Exception as exc:
            _log(scope, exc)
            await self._refuse(500, "Internal server error", {}, scope, send)
            return
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if first is not None:
                await send({"type": "http.response.body", "body": first, "more_body": True})
                try:
                    async for chunk in self.chunks:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except HTTPError as exc:
                    await _send_error(send, self.encode, exc.body()["error"])
                except OSError:  # an ASGI 2.4 server: the client is gone
                    raise
                except Exception as exc:
                    _log(scope, exc)
                    await _send_error(send, self.encode, "Internal server error")
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # nobody left to tell

    async def _refuse(
        self, status: int, message: str, headers: Mapping[str, str], scope: Scope, send: Send
    ) -> None:
        answer = json_response({"error": message}, status, headers)
        answer.raw_headers.extend(h for h in self.raw_headers if h[0] not in _OWN_HEADERS)
        try:
            await answer(scope, _no_receive, send)
        except OSError:
            return


async def _send_error(send: Send, encode: Encoder, message: str) -> None:
    body = encode("error", {"error": message})
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _no_receive() -> dict[str, Any]:  # pragma: no cover - a JSON answer never reads
    return {"type": "http.disconnect"}


async def _aclose(chunks: AsyncIterator[bytes]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def _log(scope: Scope, exc: Exception) -> None:
    logger.error(
        "%s %s failed while streaming: %s",
        scope.get("method"),
        scope.get("path"),
        type(exc).__name__,
        exc_info=exc,
    )
