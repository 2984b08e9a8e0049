"""`Bastion`: the agent server, an ASGI app.

    app = Bastion(agents=[agent], tools=[get_weather], auth=IdentityAuth(identity),
                  memory=Memory(identity.db), cors=["https://app.example.com"])
    uvicorn.run(app, port=4111)                       # or mount it in Starlette/FastAPI

It serves `/health`, `/api` and the API under `/api` (docs/http-api.md), every request
going through the auth pipeline (docs/auth.md). When the auth provider has an `identity`
(an `IdentityAuth` of an in-process `Identity`), or `identity=` is given, that Identity's
own API is mounted at its base path (`/api/auth`) and answers there by itself. `cors=`
(off by default) answers browsers' preflights before any of that (cors.py), for the
Identity's own path too; `cors="trusted"` allows the Identity's trusted origins.

`memory_scope=` ("user", "organization" or "user_in_organization") chooses whose threads a
caller's are: its own, its active organization's, or its own within that organization
(bastion.auth.tenancy).

`ui=bastion.web.Pages(...)` adds the web pages (docs/web.md): every path outside `/api` and
`/health` is theirs, `/` leads to sign-in or the playground. The server knows them only as
an object that builds an ASGI app for it (`UI`): the web package sits on top of the server,
never the other way round.

Memory is used only when given (`memory=`): nothing is guessed from the Identity, whose
database may or may not hold the memory tables. Without it the memory routes answer 404
"Memory is not configured".

The app handles the ASGI lifespan: on shutdown it closes the auth provider's connections,
the mounted Identity's database pool and the memory's (if the Memory opened its own). It
does not create tables: run `bastion migrate`, or `await identity.migrate()` /
`await memory.migrate()`. An
application that mounts `Bastion` inside another app (whose lifespan does not reach
mounted apps) passes `lifespan=bastion.lifespan` to it, or calls `startup`/`shutdown`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth.config import AuthLike
from ..auth.pipeline import AuthPipeline
from ..auth.rbac import RBACProvider
from ..auth.tenancy import MemoryScope
from ..identity import Identity
from .agents import ID_PATTERN as AGENT_ID
from .agents import Agent, AgentTool
from .cors import CORS, CORSMiddleware, trusted_cors
from .memory import Memory
from .openapi_doc import add_openapi_route
from .routes import (
    CustomRoute,
    Router,
    add_agent_routes,
    add_custom_routes,
    add_memory_routes,
    add_system_routes,
    add_tool_routes,
    route_path,
)
from .tools import tool_permission


class UI(Protocol):
    """What `ui=` takes: `bastion.web.Pages`, or anything that builds the pages' ASGI app
    for a server."""

    def asgi_app(self, server: Bastion) -> ASGIApp: ...


__all__ = ["Bastion"]

logger = logging.getLogger("bastion.server")

API_PREFIX = "/api"


class Bastion:
    def __init__(
        self,
        *,
        agents: Sequence[Agent] | Mapping[str, Agent] = (),
        tools: Sequence[AgentTool] = (),
        auth: AuthLike | None = None,
        rbac: RBACProvider | None = None,
        memory_scope: MemoryScope = "user",
        routes: Sequence[CustomRoute] = (),
        identity: Identity | None = None,
        memory: Memory | None = None,
        cors: CORS | Sequence[str] | Literal["trusted"] | None = None,
        name: str = "bastion",
        openapi: bool = True,
        ui: UI | None = None,
    ) -> None:
        if memory is not None and not isinstance(memory, Memory):
            raise TypeError(f"memory: {memory!r} is not a bastion.server.memory.Memory")
        self.name = name
        self.auth = auth
        self.pipeline = AuthPipeline(auth, rbac=rbac, memory_scope=memory_scope)
        self.agents = _agents(agents)
        self.tools = _tools(tools)
        _check_tool_permissions(self.tools, self.agents, rbac)
        self.identity = _identity(auth, identity)
        self.memory = memory
        self.cors = _cors(cors, self.identity)
        self.router = Router(self.pipeline, prefix=API_PREFIX)
        add_system_routes(self.router, name)
        add_agent_routes(self.router, self.agents, memory)
        add_tool_routes(self.router, self.tools)
        add_memory_routes(self.router, memory)
        add_custom_routes(self.router, routes, API_PREFIX)
        if openapi:  # last: the document lists every route above
            add_openapi_route(self.router, self.pipeline, name)
        # (prefix, app): requests under a prefix go to that app, with the prefix added to
        # root_path as Starlette's Mount does.
        self._mounts: list[tuple[str, ASGIApp]] = []
        if self.identity is not None:
            base = identity_base_path(self.identity)
            for custom in routes:
                full = API_PREFIX + custom.path
                if full == base or full.startswith(base + "/"):
                    raise ValueError(f"route {custom.path!r} is under the Identity's {base}")
            self._mounts.append((base, self.identity.app))
        # The web pages (bastion.web) answer every path outside /api and /health.
        self._web: ASGIApp | None = _web(self, ui)
        self._http: ASGIApp = self._dispatch
        if self.cors is not None:
            self._http = CORSMiddleware(self._dispatch, self.cors)

    def __repr__(self) -> str:
        return f"<Bastion agents={list(self.agents)} tools={list(self.tools)}>"

    # -- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)
        for prefix, app in self._mounts:
            if path == prefix or path.startswith(prefix + "/"):
                child = dict(scope)
                child["root_path"] = scope.get("root_path", "") + prefix
                await app(child, receive, send)
                return
        if self._web is not None and not _is_api(path):
            await self._web(scope, receive, send)
            return
        await self.router.handle(scope, receive, send, path)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    logger.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    # -- lifecycle ---------------------------------------------------------------------

    async def startup(self) -> None:
        """Nothing to open yet: the database pools connect on first use."""

    async def shutdown(self) -> None:
        """Close the provider's own connections (IdentityAuth's lookups, a remote client),
        then the memory's and the Identity's pools. Each close is idempotent."""
        aclose = getattr(self.auth, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        finally:
            try:
                if self.memory is not None:
                    await self.memory.close()  # a no-op when it shares the Identity's pool
            finally:
                if self.identity is not None:
                    await self.identity.close()

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """For a host app: `Starlette(routes=[Mount("/", bastion)], lifespan=bastion.lifespan)`."""
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()


def identity_base_path(identity: Identity) -> str:
    """Where an Identity serves: the path of its base URL, else its `base_path`."""
    options = identity.options
    return urlsplit(options.base_url or "").path.rstrip("/") or options.base_path


def _is_api(path: str) -> bool:
    return path in (API_PREFIX, "/health") or path.startswith(API_PREFIX + "/")


def _web(app: Bastion, ui: UI | None) -> ASGIApp | None:
    if ui is None:
        return None
    build = getattr(ui, "asgi_app", None)
    if not callable(build):
        raise TypeError(f"ui: bastion.web.Pages(...), not {ui!r}")
    if app.identity is None:
        raise ValueError("ui: the pages need an Identity (auth=IdentityAuth(identity))")
    web: ASGIApp = build(app)
    return web


def _identity(auth: Any, given: Identity | None) -> Identity | None:
    found = getattr(auth, "identity", None)
    found = found if isinstance(found, Identity) else None
    if given is not None and found is not None and given is not found:
        raise ValueError("identity= differs from the Identity of the auth provider")
    return given if given is not None else found


def _cors(cors: CORS | Sequence[str] | str | None, identity: Identity | None) -> CORS | None:
    if cors is None or isinstance(cors, CORS):
        return cors
    if cors == "trusted":
        if identity is None:
            raise ValueError("cors='trusted' needs an Identity (IdentityAuth or identity=)")
        return trusted_cors(identity)
    if isinstance(cors, str):
        raise TypeError("cors: a list of origins, 'trusted', or CORS(origins=[...])")
    return CORS(origins=tuple(cors))


def _agents(agents: Sequence[Agent] | Mapping[str, Agent]) -> dict[str, Agent]:
    pairs = agents.items() if isinstance(agents, Mapping) else [(a.id, a) for a in agents]
    registry: dict[str, Agent] = {}
    for agent_id, agent in pairs:
        if not isinstance(agent, Agent):
            raise TypeError(f"agents: {agent!r} is not an Agent")
        if not AGENT_ID.fullmatch(agent_id):
            raise ValueError(f"agent id {agent_id!r}: 1-128 letters, digits, '_' or '-'")
        if agent_id in registry:
            raise ValueError(f"two agents have the id {agent_id!r}")
        registry[agent_id] = agent
    return registry


def _tools(tools: Sequence[AgentTool]) -> dict[str, AgentTool]:
    registry: dict[str, AgentTool] = {}
    for tool in tools:
        if not isinstance(tool, AgentTool):
            raise TypeError(f"tools: {tool!r} has no id, description, input_schema, execute")
        if tool.id in registry:
            raise ValueError(f"two tools have the id {tool.id!r}")
        registry[tool.id] = tool
    return registry


def _check_tool_permissions(
    tools: Mapping[str, AgentTool], agents: Mapping[str, Agent], rbac: RBACProvider | None
) -> None:
    """A tool that requires a permission, on a server without RBAC, could never be called:
    no caller holds a permission there. Said at construction rather than as a 403 later."""
    if rbac is not None:
        return
    every = [*tools.values(), *(t for agent in agents.values() for t in agent.tools.values())]
    for tool in every:
        if tool_permission(tool):
            raise ValueError(
                f"tool {tool.id!r} requires a permission: give Bastion(rbac=...) to grant it"
            )
