"""Routes an application adds under `/api`: `route("/me", handler, methods=["GET"])`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ..._callbacks import as_async
from ..._routes import compile_template
from ...auth.context import RequestContext
from .router import Handler, Router

__all__ = ["CustomRoute", "add_custom_routes", "route"]

ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True, slots=True)
class CustomRoute:
    path: str
    handler: Callable[[Request], Any]
    methods: tuple[str, ...]
    requires_auth: bool | None
    requires_permission: tuple[str, ...] | None
    # `methods=["ALL"]`: every method, and no derived permission (spec §2.10).
    all_methods: bool = False


def route(
    path: str,
    handler: Callable[[Request], Any],
    *,
    methods: Sequence[str] = ("GET",),
    requires_auth: bool | None = True,
    requires_permission: str | Sequence[str] | None = None,
) -> CustomRoute:
    """A route served at `/api` + `path`; `{name}` parameters match one segment each.

    `handler(request)` (async, or sync: then run in a thread) returns a Starlette
    Response or JSON data; the caller is `request.state.context` (or `current_context()`).
    `requires_auth` defaults to True: the route is authenticated even on a public path;
    False opens it; None lets the patterns decide. `requires_permission` (with RBAC): any
    one of these; else the permission derived from the path. `methods=["ALL"]` serves
    every method (and gets no derived permission).
    """
    if not callable(handler):
        raise TypeError(f"route {path!r}: the handler must be callable")
    if path == "/api" or path.startswith("/api/"):
        raise ValueError(f"custom routes are mounted under /api: give {path[4:] or '/'!r}")
    compile_template(path)  # a bad template fails here, naming the user's path
    names = [method.upper() for method in methods]
    if not names:
        raise ValueError(f"route {path!r}: no methods")
    permission = (
        (requires_permission,) if isinstance(requires_permission, str) else requires_permission
    )
    return CustomRoute(
        path,
        handler,
        ALL_METHODS if "ALL" in names else tuple(names),
        requires_auth,
        tuple(permission) if permission is not None else None,
        "ALL" in names,
    )


def _adapt(handler: Callable[[Request], Any]) -> Handler:
    call = as_async(handler)  # contextvars, so current_context(), follow into a thread

    async def adapted(request: Request, context: RequestContext) -> Any:
        return await call(request)

    # The handler's name and docstring, which the OpenAPI document shows.
    adapted.__name__ = getattr(handler, "__name__", type(handler).__name__)
    adapted.__doc__ = handler.__doc__
    return adapted


def add_custom_routes(router: Router, routes: Sequence[CustomRoute], prefix: str = "/api") -> None:
    for custom in routes:
        template = prefix + custom.path if custom.path != "/" else prefix
        router.add(
            template,
            custom.methods,
            _adapt(custom.handler),
            requires_auth=custom.requires_auth,
            requires_permission=custom.requires_permission,
            derive_permission=not custom.all_methods,
        )
