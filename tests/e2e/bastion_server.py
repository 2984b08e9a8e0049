"""Bastion's identity served by uvicorn on 127.0.0.1, in the test's own event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from bastion.identity import Identity


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def listening(app: ASGIApp, port: int, *, lifespan: str = "off") -> AsyncIterator[None]:
    """`app` served by uvicorn on 127.0.0.1:`port` in this event loop, from the moment the
    socket listens (up to 20 s: on a loaded machine, with parallel test workers, start-up
    takes seconds, and a test must not begin before it) until the block ends."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    if not server.started:
        server.should_exit = True
        await task
        raise RuntimeError(f"uvicorn did not start on port {port}")
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@asynccontextmanager
async def serve(
    identity_for: Any,
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    app_for: Callable[[Identity], ASGIApp] | None = None,
) -> AsyncIterator[tuple[Identity, str]]:
    """`identity_for(base_url)` builds the Identity; yields it and its origin URL.

    It listens on 127.0.0.1; `host` names it in the origin (e.g. "localhost", another site
    than 127.0.0.1 for a browser). `app_for(identity)` serves another app around the
    Identity's (pages of the test's own beside /api/auth)."""
    port = port or free_port()
    origin = f"http://{host}:{port}"
    identity: Identity = identity_for(origin)
    await identity.migrate()
    app = identity.app if app_for is None else app_for(identity)
    try:
        async with listening(app, port):
            yield identity, origin
    finally:
        await identity.close()
