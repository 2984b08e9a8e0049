"""The I/O half: a sync and an async driver that send a `Call` with httpx.

Only these lines differ between `AuthClient` and `AsyncAuthClient` (and the two
`BastionClient`s), as in httpx's own `Client`/`AsyncClient`: send, read a stream, close.
Everything about the protocol is in wire.py, every operation in one table (operations.py).

The phantom types `Sync` and `Async` mark which kind a driver is, so one generic section
class (`Section[M]`) serves both clients and the type checker still sees `T` from a sync
call and `Awaitable[T]` from an async one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any, Generic, Self, TypeVar

import httpx

from .events import AgentEvent, parse_event
from .sse import aiter_sse, iter_sse
from .wire import USER_AGENT, Call, CookieTypes, TimeoutTypes, Wire

__all__ = [
    "DEFAULT_TIMEOUT",
    "Async",
    "AsyncDriver",
    "AsyncEventStream",
    "Driver",
    "EventStream",
    "M",
    "Sync",
    "SyncDriver",
]

T = TypeVar("T")

# A generation may think for a while between two events: allow a minute per read.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)

_STREAM = "a text/event-stream answer"


class Sync:
    """Marks a synchronous driver: operations return their results."""


class Async:
    """Marks an asynchronous driver: operations return awaitables."""


M = TypeVar("M")  # Sync or Async


class Driver(Generic[M]):
    """Sends calls; `run` returns the result (or an awaitable of it), `stream` the events."""

    http: httpx.Client | httpx.AsyncClient

    def __init__(self, wire: Wire, *, owns_http: bool) -> None:
        self.wire = wire
        self._owns_http = owns_http

    def run(self, call: Call[Any]) -> Any:
        raise NotImplementedError

    def stream(self, call: Call[Any]) -> Any:
        raise NotImplementedError


class SyncDriver(Driver[Sync]):
    http: httpx.Client

    def __init__(
        self,
        wire: Wire,
        http: httpx.Client | None,
        *,
        cookies: CookieTypes | None,
        timeout: TimeoutTypes,
    ) -> None:
        super().__init__(wire, owns_http=http is None)
        self.http = http or httpx.Client(timeout=timeout, headers={"user-agent": USER_AGENT})
        if cookies is not None:
            self.http.cookies.update(cookies)

    def run(self, call: Call[T]) -> T:
        response = self.http.send(self.wire.build(self.http, call))
        return self.wire.read(call, response)

    def stream(self, call: Call[Any]) -> EventStream:
        return EventStream(lambda: self._open(call))

    def _open(self, call: Call[Any]) -> httpx.Response:
        response = self.http.send(self.wire.build(self.http, call, stream=True), stream=True)
        if not self.wire.streams(response):
            try:
                response.read()
            finally:
                response.close()
            raise self.wire.refusal(call, response, expected=_STREAM)
        return response

    def close(self) -> None:
        if self._owns_http:
            self.http.close()


class AsyncDriver(Driver[Async]):
    http: httpx.AsyncClient

    def __init__(
        self,
        wire: Wire,
        http: httpx.AsyncClient | None,
        *,
        cookies: CookieTypes | None,
        timeout: TimeoutTypes,
    ) -> None:
        super().__init__(wire, owns_http=http is None)
        self.http = http or httpx.AsyncClient(timeout=timeout, headers={"user-agent": USER_AGENT})
        if cookies is not None:
            self.http.cookies.update(cookies)

    async def run(self, call: Call[T]) -> T:
        response = await self.http.send(self.wire.build(self.http, call))
        return self.wire.read(call, response)

    def stream(self, call: Call[Any]) -> AsyncEventStream:
        return AsyncEventStream(lambda: self._open(call))

    async def _open(self, call: Call[Any]) -> httpx.Response:
        request = self.wire.build(self.http, call, stream=True)
        response = await self.http.send(request, stream=True)
        if not self.wire.streams(response):
            try:
                await response.aread()
            finally:
                await response.aclose()
            raise self.wire.refusal(call, response, expected=_STREAM)
        return response

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()


class EventStream(Iterator[AgentEvent]):
    """The events of one agent stream. The request goes out on `with` or the first `next`
    (an error answer raises there); the response closes when the events run out, on
    `close()`, or at the end of the `with` block."""

    def __init__(self, open_stream: Callable[[], httpx.Response]) -> None:
        self._open = open_stream
        self._response: httpx.Response | None = None
        self._events: Generator[AgentEvent, None, None] | None = None
        self._used = False  # one request per stream, even when opening it failed

    def __enter__(self) -> Self:
        self._start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __next__(self) -> AgentEvent:
        events = self._start()
        if events is None:
            raise StopIteration
        return next(events)

    def _start(self) -> Generator[AgentEvent, None, None] | None:
        if not self._used:
            self._used = True
            self._response = self._open()
            self._events = self._read(self._response)
        return self._events

    @staticmethod
    def _read(response: httpx.Response) -> Generator[AgentEvent, None, None]:
        try:
            for event in iter_sse(response.iter_bytes()):
                yield parse_event(event)
        finally:
            response.close()

    def close(self) -> None:
        self._used = True
        if self._events is not None:
            self._events.close()
        if self._response is not None:
            self._response.close()


class AsyncEventStream(AsyncIterator[AgentEvent]):
    """`EventStream` for `async for` / `async with`."""

    def __init__(self, open_stream: Callable[[], Awaitable[httpx.Response]]) -> None:
        self._open = open_stream
        self._response: httpx.Response | None = None
        self._events: AsyncGenerator[AgentEvent, None] | None = None
        self._used = False

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> AgentEvent:
        events = await self._start()
        if events is None:
            raise StopAsyncIteration
        return await anext(events)

    async def _start(self) -> AsyncGenerator[AgentEvent, None] | None:
        if not self._used:
            self._used = True
            self._response = await self._open()
            self._events = self._read(self._response)
        return self._events

    @staticmethod
    async def _read(response: httpx.Response) -> AsyncGenerator[AgentEvent, None]:
        try:
            async for event in aiter_sse(response.aiter_bytes()):
                yield parse_event(event)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        self._used = True
        if self._events is not None:
            await self._events.aclose()
        if self._response is not None:
            await self._response.aclose()
