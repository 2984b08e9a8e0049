"""uvicorn's h11 protocol with Bastion's deadlines (see `bastion._http_server`). h11 limits
the head's size itself (`h11_max_incomplete_event_size`).

The deadlines follow h11's state of the client's side, checked after everything that can
move it (bytes received, a response completed): IDLE is waiting for a head (the header
deadline runs), SEND_BODY is a body on its way (the body deadline runs); any other state
(the request is in, the connection is closing) runs neither.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._http_deadlines import Deadline, HttpLimits, body_too_slow, close_quietly

__all__ = ["H11DeadlineProtocol"]


class H11DeadlineProtocol(H11Protocol):
    def __init__(self, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._head = Deadline(self.loop, limits.header_timeout, self._head_too_slow)
        self._body = Deadline(self.loop, limits.body_timeout, self._body_too_slow)
        self._upgraded = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer only after a response: a connection that never
        # sends anything goes idle too.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head.stop()
        self._body.stop()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start the next cycle, or a pipelined request
        self._follow()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._upgraded = True  # the connection is the WebSocket protocol's now
        self._head.stop()
        self._body.stop()
        super().handle_websocket_upgrade(event)

    def _follow(self) -> None:
        if self._upgraded or self.transport.is_closing():
            self._head.stop()
            self._body.stop()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            self._head.arm()
        else:
            self._head.cancel()
        if state is h11.SEND_BODY:
            self._body.arm()
        else:
            self._body.cancel()

    def _head_too_slow(self) -> None:
        close_quietly(self.transport)

    def _body_too_slow(self) -> None:
        body_too_slow(self.transport, self.cycle)
