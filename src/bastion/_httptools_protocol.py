"""uvicorn's httptools protocol with Bastion's deadlines and head-size limit (see
`bastion._http_server`). A module of its own because httptools is optional: it is imported
only when httptools is installed.

httptools reports a request through callbacks: `on_message_begin` (first byte),
`on_headers_complete`, `on_message_complete` (end of the body). The header deadline runs
from the connection opening, or from the end of the previous exchange, to
`on_headers_complete`; the body deadline from there to `on_message_complete`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ._http_deadlines import Deadline, HttpLimits, body_too_slow, close_quietly

__all__ = ["HttpToolsDeadlineProtocol"]

_INVALID = "Invalid HTTP request received."  # uvicorn's words, as h11 answers a large head


class HttpToolsDeadlineProtocol(HttpToolsProtocol):
    def __init__(self, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._max_head_size = limits.max_head_size
        self._head = Deadline(self.loop, limits.header_timeout, self._head_too_slow)
        self._body = Deadline(self.loop, limits.body_timeout, self._body_too_slow)
        # uvicorn's keep-alive timeout, as a Deadline: uvicorn schedules a new timer after
        # every response and cancels it on the next request's first byte.
        self._idle = Deadline(self.loop, self.timeout_keep_alive, self.timeout_keep_alive_handler)
        self._in_head = False
        self._head_size = 0
        self._upgraded = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer only after a response: a connection that never
        # sends anything goes idle too.
        self._idle.arm()
        self._head.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._idle.stop()
        self._head.stop()
        self._body.stop()
        super().connection_lost(exc)

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn calls it when data arrives, a response ends or the connection goes.
        self._idle.cancel()
        super()._unset_keepalive_if_required()

    def data_received(self, data: bytes) -> None:
        inside = self._in_head
        super().data_received(data)
        # httptools keeps a head of any size. Count the chunks that began and ended inside
        # one head (a chunk that also holds a body or another message does not count).
        if inside and self._in_head and not self.transport.is_closing():
            self._head_size += len(data)
            if self._head_size > self._max_head_size:
                self.logger.warning(_INVALID)
                self.send_400_response(_INVALID)

    def handle_websocket_upgrade(self) -> None:
        self._upgraded = True  # the connection is the WebSocket protocol's now
        self._idle.stop()
        self._head.stop()
        self._body.stop()
        super().handle_websocket_upgrade()

    # httptools callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head.cancel()
        self._body.arm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body.cancel()
        if self.cycle is not None and self.cycle.response_complete and not self.pipeline:
            self._head.arm()  # answered before its body ended: now the next head is due

    def on_response_complete(self) -> None:
        # uvicorn's own (0.55), with the keep-alive timer a Deadline.
        # The next head is due unless one is queued (pipelined) or this body is still coming.
        head_due = not self.pipeline and not self._body.armed
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()  # reads paused while the response was written
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle.arm()
        if head_due and not self._upgraded:
            self._head.arm()

    def _head_too_slow(self) -> None:
        close_quietly(self.transport)

    def _body_too_slow(self) -> None:
        # A pipelined request waiting its turn must not answer into the current response.
        queued = any(cycle is self.cycle for cycle, _ in self.pipeline)
        body_too_slow(self.transport, None if queued else self.cycle)
