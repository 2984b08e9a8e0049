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
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from re import Pattern
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..._openapi import Doc
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
from .common import ApiError, json_response

__all__ = ["Handler", "Router", "compile_template", "database_unavailable", "route_path"]

logger = logging.getLogger("bastion.server")

Handler = Callable[[Request, RequestContext], Awaitable[Any]]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_RETRY_AFTER = "5"  # seconds, for a 503 of a database outage


def database_unavailable() -> ApiError:
    """The answer while the database cannot be used: 503 with Retry-After."""
    return ApiError(503, "The database is unavailable", {"Retry-After": _RETRY_AFTER})


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point (`root_path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


def compile_template(template: str) -> tuple[Pattern[str] | None, str]:
    """The regex of a `{name}` template (None when it has no parameter), and its shape:
    the template with its parameter names blanked, to find two routes that would clash."""
    if not template.startswith("/"):
        raise ValueError(f"a route path starts with '/': {template!r}")
    if template != "/" and template.endswith("/"):
        raise ValueError(f"a route path does not end with '/': {template!r}")
    if "{" in _PARAM.sub("", template) or "}" in _PARAM.sub("", template):
        raise ValueError(f"bad parameter in route path {template!r}: use {{name}}")
    names = _PARAM.findall(template)
    if not names:
        return None, template
    if len(set(names)) != len(names):
        raise ValueError(f"a parameter name appears twice in {template!r}")
    # split() alternates literal text and parameter names.
    pieces = _PARAM.split(template)
    body = "".join(
        re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>[^/]+)" for i, piece in enumerate(pieces)
    )
    return re.compile(body), _PARAM.sub("{}", template)  # fullmatch: `$` allows a final "\n"


@dataclass(frozen=True, slots=True)
class _Endpoint:
    handler: Handler
    auth: RouteAuth
    doc: Doc | None = None  # what the OpenAPI document says of it (server/openapi_doc.py)


@dataclass(slots=True)
class _Route:
    template: str
    regex: Pattern[str] | None
    endpoints: dict[str, _Endpoint] = field(default_factory=dict)


class Router:
    def __init__(self, pipeline: AuthPipeline, *, prefix: str = "/api") -> None:
        self.pipeline = pipeline
        self.prefix = prefix
        self._static: dict[str, _Route] = {}
        self._dynamic: list[_Route] = []
        self._shapes: dict[str, _Route] = {}

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
        regex, shape = compile_template(template)
        route = self._shapes.get(shape)
        if route is None:
            route = _Route(template, regex)
            self._shapes[shape] = route
            if regex is None:
                self._static[template] = route
            else:
                self._dynamic.append(route)
        elif route.template != template:
            raise ValueError(f"route {template!r} clashes with {route.template!r}")
        required: tuple[str, ...] | None = None
        if requires_permission is not None:
            required = (
                (requires_permission,)
                if isinstance(requires_permission, str)
                else tuple(requires_permission)
            )
            if not required or not all(isinstance(p, str) and p for p in required):
                raise ValueError(f"{template}: requires_permission lists permission strings")
        for method in methods:
            method = method.upper()
            if method not in _METHODS:
                raise ValueError(f"{template}: unknown HTTP method {method!r}")
            if method in route.endpoints:
                raise ValueError(f"{method} {template} is registered twice")
            auth = RouteAuth(
                requires_auth=requires_auth,
                requires_permission=required,
                permission=(
                    RoutePermission.of(template, method, prefix=self.prefix)
                    if derive_permission
                    else None
                ),
            )
            route.endpoints[method] = _Endpoint(handler, auth, doc)

    @property
    def routes(self) -> dict[str, tuple[str, ...]]:
        """What is served: each route's template and its methods, in the order added."""
        return {route.template: tuple(route.endpoints) for route in self._shapes.values()}

    def operations(self) -> Iterator[tuple[str, str, Handler, RouteAuth, Doc | None]]:
        """Each route's template, method, handler, auth settings and doc, in the order added."""
        for route in self._shapes.values():
            for method, endpoint in route.endpoints.items():
                yield route.template, method, endpoint.handler, endpoint.auth, endpoint.doc

    def _find(self, path: str) -> tuple[_Route | None, dict[str, str]]:
        route = self._static.get(path)
        if route is not None:
            return route, {}
        for candidate in self._dynamic:
            found = candidate.regex.fullmatch(path) if candidate.regex else None
            if found:
                return candidate, found.groupdict()
        return None, {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send, route_path(scope))

    async def handle(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method: str = scope["method"]
        # Routing and the pipeline see the same path: `/api/x/` is `/api/x` for both, so a
        # regex pattern cannot miss a path the router serves.
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        route, params = self._find(path)
        endpoint: _Endpoint | None = None
        if route is not None:
            endpoint = route.endpoints.get(method)
            if endpoint is None and method == "HEAD":
                endpoint = route.endpoints.get("GET")
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
                allow = ", ".join(sorted(route.endpoints))
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
        except ApiError as exc:
            return json_response({"error": exc.message}, exc.status, exc.headers)
        except AuthError as exc:  # a handler may refuse a caller the way the pipeline does
            return error_response(exc)
        except DatabaseUnavailable as exc:  # down, read-only or full: an outage, not a bug
            logger.error("%s %s: %s", request.method, request.url.path, exc)
            unavailable = database_unavailable()
            return json_response(
                {"error": unavailable.message}, unavailable.status, unavailable.headers
            )
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
