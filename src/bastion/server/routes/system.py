"""`GET /api` (the welcome), `GET /health`, and `GET /api/auth-context` (auth_context.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ... import __version__
from ..._openapi import Doc
from ...auth.context import RequestContext
from .auth_context import add_auth_context_route
from .router import Router

__all__ = ["add_system_routes"]


def add_system_routes(router: Router, name: str) -> None:
    welcome = {"name": name, "version": __version__}

    async def api_root(request: Request, context: RequestContext) -> Any:
        return welcome

    async def health(request: Request, context: RequestContext) -> Any:
        return {"status": "ok"}

    # Both public by the default patterns (`/api`, `/health`).
    router.add("/api", ["GET"], api_root, doc=Doc("The server's name and version", ("System",)))
    router.add("/health", ["GET"], health, doc=Doc("Liveness", ("System",)))
    add_auth_context_route(router)
