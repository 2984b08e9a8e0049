"""The embedded default of `bastion serve` (`bastion.standalone.create_app`) served by
uvicorn on 127.0.0.1, in the test's own event loop, with its lifespan (tables made at
start-up) as `bastion serve` runs it.

    async with serve_default(env) as origin:      # http://127.0.0.1:<port>
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from bastion.standalone import create_app
from tests.e2e.bastion_server import free_port, listening

__all__ = ["serve_default"]


@asynccontextmanager
async def serve_default(env: Mapping[str, str], port: int | None = None) -> AsyncIterator[str]:
    """`create_app(env)` with $PORT set to the port it listens on (as `bastion serve`
    does: the default trusts http://localhost:$PORT); yields its 127.0.0.1 origin."""
    port = port or free_port()
    app = create_app({**env, "PORT": str(port)})
    async with listening(app, port, lifespan="on"):
        yield f"http://127.0.0.1:{port}"
