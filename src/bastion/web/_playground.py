"""The agent playground: /playground (signed in).

The page is a shell; static/playground.js fills it from the public API, as any client would:
the agents (`GET /api/agents`), a run streamed as server-sent events (`POST
/api/agents/{id}/stream`, read with fetch), the caller's threads (`/api/memory/threads`),
and the "auth" panel (`GET /api/auth-context`: what the auth pipeline made of the request).
The session cookie is the credential of every call; nothing is read on the server side
beyond the session that decides whether the page is shown.

An Identity served alone (`web_app(identity)`) has no agent server: the page then says so
instead of offering a chat that could only fail.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._app import WebContext

__all__ = ["API", "routes"]

# The agent server's API, where Bastion serves it (server/app.py API_PREFIX).
API = {
    "agents": "/api/agents",
    "threads": "/api/memory/threads",
    "context": "/api/auth-context",
}


def routes(web: WebContext) -> list[Route]:
    async def playground(request: Request) -> Response:
        await web.require_session(request)
        bastion = web.bastion
        return web.render(
            request,
            "playground.html",
            title="Playground",
            has_agents=bastion is not None,
            has_memory=bastion is not None and bastion.memory is not None,
            endpoints=API,
        )

    return [Route("/playground", playground, methods=["GET", "HEAD"])]
