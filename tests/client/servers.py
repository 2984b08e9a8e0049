"""Servers for the client tests: any ASGI app on a real port, and a way to run one test body
with the sync client (against that real server) and with the async client (in-process).

The sync clients need a server outside the test's event loop (a blocking call would stall a
server on the same loop), so `ThreadServer` runs uvicorn on 127.0.0.1 in a thread with its own
loop; the app is built inside that loop, since database engines belong to the loop that
made them. The async clients talk to the app in-process through `httpx.ASGITransport`.

Test bodies are written once and run in both modes: `await resolve(client.get_session())`
awaits what the async client returns and passes the sync client's result through.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx
import uvicorn
from starlette.types import ASGIApp

__all__ = [
    "MODES",
    "Mode",
    "Served",
    "Setup",
    "ThreadServer",
    "resolve",
    "served",
]

T = TypeVar("T")

Mode = Literal["sync", "async"]
MODES: list[Mode] = ["sync", "async"]

Setup = Callable[[str], AbstractAsyncContextManager[ASGIApp]]
"""`setup(origin)`: builds the app for a server at `origin`, and tears it down after."""


async def resolve(value: Any) -> Any:
    """The result of a client call, sync or async."""
    return await value if inspect.isawaitable(value) else value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadServer:
    """`with ThreadServer(setup) as origin:` — the app of `setup(origin)` served by uvicorn on
    127.0.0.1 from a thread with its own event loop."""

    def __init__(self, setup: Setup) -> None:
        self._setup = setup
        self.origin = ""
        self._server: uvicorn.Server | None = None
        self._error: BaseException | None = None
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> str:
        self.origin = f"http://127.0.0.1:{_free_port()}"
        self._thread.start()
        deadline = time.monotonic() + 15
        while not (self._server is not None and self._server.started):
            if self._finished.is_set():
                raise RuntimeError("the test server stopped before it started") from self._error
            assert time.monotonic() < deadline, "the test server did not start within 15 s"
            time.sleep(0.01)
        return self.origin

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(15)
        if self._error is not None and exc == (None, None, None):
            raise self._error

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        try:
            async with self._setup(self.origin) as app:
                port = int(self.origin.rpartition(":")[2])
                config = uvicorn.Config(
                    app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
                )
                self._server = uvicorn.Server(config)
                await self._server.serve()
        except BaseException as error:  # handed to the test thread
            self._error = error
        finally:
            self._finished.set()


@dataclass
class Served:
    """A server under test and the clients made for it (closed at the end)."""

    mode: Mode
    origin: str
    app: ASGIApp | None  # in-process (async mode) only
    client_type: Callable[..., Any]
    async_client_type: Callable[..., Any]
    _made: list[Any] = field(default_factory=list)

    def client(self, **options: Any) -> Any:
        """A new client (`AuthClient`/`BastionClient` or their async twins) of this server,
        with a cookie jar of its own: another device."""
        return self.open(self.client_type, self.async_client_type, **options)

    def open(
        self, client_type: Callable[..., Any], async_client_type: Callable[..., Any], **options: Any
    ) -> Any:
        """A new client of another kind than the default one."""
        if self.mode == "sync":
            made = client_type(self.origin, **options)
        else:
            assert self.app is not None
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app))
            self._made.append(http)
            made = async_client_type(self.origin, http_client=http, **options)
        self._made.append(made)
        return made

    async def close(self) -> None:
        for made in reversed(self._made):
            closing = getattr(made, "aclose", None) or made.close
            await resolve(closing())


@asynccontextmanager
async def served(
    mode: Mode,
    setup: Setup,
    client_type: Callable[..., Any],
    async_client_type: Callable[..., Any],
    *,
    in_process_origin: str = "http://localhost:3000",
) -> AsyncIterator[Served]:
    """The app of `setup`: on a real port for the sync client, in-process for the async."""
    if mode == "sync":
        with ThreadServer(setup) as origin:
            served = Served(mode, origin, None, client_type, async_client_type)
            try:
                yield served
            finally:
                await served.close()
    else:
        async with setup(in_process_origin) as app:
            served = Served(mode, in_process_origin, app, client_type, async_client_type)
            try:
                yield served
            finally:
                await served.close()


@contextmanager
def thread_served(setup: Setup) -> Iterator[str]:
    """Only the real server (for tests that need true streaming or a socket)."""
    with ThreadServer(setup) as origin:
        yield origin
