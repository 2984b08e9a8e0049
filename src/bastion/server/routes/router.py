"""The API's router: find the route, run the auth pipeline with the route's settings, then
the handler with the caller's context bound.

Routes are data: `(template, methods, handler, requires_auth, requires_permission)`,
compiled when added. A template is a path with `{name}` parameters, each matching one
segment. Static paths are found in a dict, templated ones in registration order after
them, so `/api/agents/featured` wins over `/api/agents/{agentId}`. A trailing `/` is
ignored. A path or method no route serves still goes through the pipeline (with the
patterns deciding) before its 404 or 405, so an anonymous caller learns nothing about
which routes exist under a protected prefix.

A handler's `DatabaseUnavailable` (the database does not answer, or refuses writes: a
read-only or full SQLite file) is a 503 `{"error": "The database is unavailable"}` with
`Retry-After`, as an outage is for the auth pipeline; never a 500 with a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..._openapi import Doc
from ..._routes import RouteTable
from ...auth.context import RequestContext, bind_context
from ...auth.errors import AuthError
from ...auth.pipeline import (
    PATTERN_DECIDES,
    AuthPipeline,
    RouteAuth,
    error_response,
    pending_headers,
)
from ...auth.rbac import RoutePermission
from ...identity.db import DatabaseUnavailable
from .common import HTTPError, json_response

__all__ = ["Handler", "Router", "database_unavailable", "route_path"]

logger = logging.getLogger("bastion.server")

Handler = Callable[[Request, RequestContext], Awaitable[Any]]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_RETRY_AFTER = "5"  # seconds, for a 503 of a database outage


def database_unavailable() -> HTTPError:
    """The answer while the database cannot be used: 503 with Retry-After."""
    return HTTPError(503, "The database is unavailable", {"Retry-After": _RETRY_AFTER})


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point (`root_path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


@dataclass(frozen=True, slots=True)
class _Endpoint:
    handler: Handler
    auth: RouteAuth
    doc: Doc | None = None  # what the OpenAPI document says of it (server/openapi_doc.py)


class Router:
    def __init__(self, pipeline: AuthPipeline, *, prefix: str = "/api") -> None:
        self.pipeline = pipeline
        self.prefix = prefix
        self._table: RouteTable[_Endpoint] = RouteTable()

    def add(
        self,
        template: str,
        methods: Iterable[str],
        handler: Handler,
        *,
        requires_auth: bool | None = None,
        requires_permission: str | Sequence[str] | None = None,
        derive_permission: bool = True,
        doc: Doc | None = None,
    ) -> None:
        required: tuple[str, ...] | None = None
        if requires_permission is not None:
            required = (
                (requires_permission,)
                if isinstance(requires_permission, str)
                else tuple(requires_permission)
            )
            if not required or not all(isinstance(p, str) and p for p in required):
                raise ValueError(f"{template}: requires_permission lists permission strings")
        endpoints: dict[str, _Endpoint] = {}
        for method in methods:
            method = method.upper()
            if method not in _METHODS:
                raise ValueError(f"{template}: unknown HTTP method {method!r}")
            auth = RouteAuth(
                requires_auth=requires_auth,
                requires_permission=required,
                permission=(
                    RoutePermission.of(template, method, prefix=self.prefix)
                    if derive_permission
                    else None
                ),
            )
            endpoints[method] = _Endpoint(handler, auth, doc)
        for method, endpoint in endpoints.items():
            self._table.add(template, (method,), endpoint)

    @property
    def routes(self) -> dict[str, tuple[str, ...]]:
        """What is served: each route's template and its methods, in the order added."""
        return {route.template: tuple(route.methods) for route in self._table.routes}

    def operations(self) -> Iterator[tuple[str, str, Handler, RouteAuth, Doc | None]]:
        """Each route's template, method, handler, auth settings and doc, in the order added."""
        for route in self._table.routes:
            for method, endpoint in route.methods.items():
                yield route.template, method, endpoint.handler, endpoint.auth, endpoint.doc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send, route_path(scope))

    async def handle(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method: str = scope["method"]
        # Routing and the pipeline see the same path: `/api/x/` is `/api/x` for both, so a
        # regex pattern cannot miss a path the router serves.
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        route, params = self._table.find(path)
        endpoint: _Endpoint | None = None
        if route is not None:
            endpoint = route.methods.get(method)
            if endpoint is None and method == "HEAD":
                endpoint = route.methods.get("GET")
        scope["path_params"] = params
        request = Request(scope, receive)
        auth = endpoint.auth if endpoint is not None else PATTERN_DECIDES
        try:
            context = await self.pipeline.authenticate(request, path, method, auth, params)
        except AuthError as exc:
            await _with_pending(error_response(exc), scope)(scope, receive, send)
            return
        # `request.state.context`, without building a State object per request.
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["context"] = context
        with bind_context(context):
            if endpoint is not None:
                response = await self._run(endpoint.handler, request, context)
            elif route is not None:
                allow = ", ".join(sorted(route.methods))
                response = json_response({"error": "Method not allowed"}, 405, {"Allow": allow})
            else:
                response = json_response({"error": "Not found"}, 404)
            # Still bound while a streaming body is produced.
            await _with_pending(response, scope)(scope, receive, send)

    async def _run(self, handler: Handler, request: Request, context: RequestContext) -> Response:
        try:
            result = await handler(request, context)
            if isinstance(result, Response):
                return result
            return json_response(result)
        except HTTPError as exc:  # a handler's refusal, or one in the pipeline's words
            return error_response(exc)
        except DatabaseUnavailable as exc:  # down, read-only or full: an outage, not a bug
            logger.error("%s %s: %s", request.method, request.url.path, exc)
            return error_response(database_unavailable())
        except HTTPException as exc:
            return json_response({"error": exc.detail}, exc.status_code, exc.headers)
        except ClientDisconnect:  # a custom route read the body of a client that hung up
            return json_response({"error": "The client disconnected"}, 400)
        except Exception as exc:  # never a traceback on the wire
            logger.exception(
                "%s %s failed: %s", request.method, request.url.path, type(exc).__name__
            )
            return json_response({"error": "Internal server error"}, 500)


def _with_pending(response: Response, scope: Scope) -> Response:
    """The response with the headers a provider left for it (refreshed session cookies)."""
    for name, value in pending_headers(scope):
        response.headers.append(name, value)
    return response
