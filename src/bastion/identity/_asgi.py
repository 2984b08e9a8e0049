"""The ASGI shell of an Identity: from an HTTP request to the runner and back.

It finds the endpoint (404 for what is not served), applies the per-IP rate limit, reads a
bounded body and parses it, and sends what the runner answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from .._routes import RouteTable
from ._runner import Runner, failure
from .endpoint import APIResponse, Endpoint, dump_json, parse_body, response_of
from .errors import APIError, Code, too_many_requests
from .ratelimit import ClientIP, RateLimiter

__all__ = ["IdentityHTTP"]

_JSON = [(b"content-type", b"application/json")]
_HTTP1 = frozenset({"1.0", "1.1"})
_FRAMING = frozenset({"content-length", "transfer-encoding"})  # RFC 9112 §6.3


class IdentityHTTP:
    """The endpoints of `table`, served at `base_path` (or below a mount point)."""

    def __init__(
        self,
        runner: Runner,
        table: RouteTable[Endpoint],
        *,
        base_path: str,
        client_ip: ClientIP,
        rate_limiter: RateLimiter | None,
        max_body_size: int,
        on_shutdown: Callable[[], Awaitable[None]],
    ) -> None:
        self._runner = runner
        self._table = table
        self._base_path = base_path
        self._client_ip = client_ip
        self._rate_limiter = rate_limiter
        self._max_body_size = max_body_size
        self._on_shutdown = on_shutdown
        # Without trusted proxies the client address depends on the peer alone: parse each
        # peer once (ipaddress costs several µs a request).
        self._ip_by_peer = not client_ip.trusted_proxies
        self._peer_ips: dict[str, str | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = _route_path(scope, self._base_path)
        route, params = self._table.find(path) if path is not None else (None, {})
        method = scope["method"]
        endpoint = route.methods.get(method) if route is not None else None
        if endpoint is None or path is None:
            await _send(send, 404, b"", [])
            return
        request = Request(scope, receive)
        headers = Headers(scope=scope)
        lower = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        ip = self._ip(headers, client[0] if client else None)
        if self._rate_limiter is not None:
            try:
                verdict = await self._rate_limiter.check(path, ip, endpoint.rate_limit)
            except Exception as exc:  # its storage is down: as any storage failure
                error = failure(path, exc)
                extra = [(k.encode(), v.encode()) for k, v in error.headers.items()]
                await _send(send, error.status, dump_json(error.body()), [*_JSON, *extra])
                return
            if not verdict.allowed:
                # JSON-typed, as better-auth 1.7.25 sends it (1.7.1 said text/plain).
                limited = too_many_requests(verdict.retry_after)
                await _send(
                    send,
                    429,
                    dump_json(limited.body()),
                    [*_JSON, *((k.encode(), v.encode()) for k, v in limited.headers.items())],
                )
                return
        if scope.get("http_version") in _HTTP1 and not _FRAMING.intersection(lower):
            raw: bytes | None = b""  # HTTP/1.x: without either header there is no body
        else:
            try:
                raw = await _read_body(request, headers, self._max_body_size)
            except ClientDisconnect:  # hung up, or cut off by the server's body timeout
                return  # nobody is left to answer, and a half body must not run the endpoint
        query: dict[str, Any] = {}
        for key, value in request.query_params.multi_items() if scope.get("query_string") else ():
            query[key] = (
                [*query[key], value]
                if isinstance(query.get(key), list)
                else ([query[key], value] if key in query else value)
            )
        ctx = self._runner.new_ctx(
            endpoint,
            method=method,
            headers=lower,
            query=query,
            params=params,
            request=request,
            client_ip=ip,
        )
        if raw is None:
            response = response_of(ctx, APIError(413, Code.REQUEST_TOO_LARGE))
        else:
            try:
                # No body (every GET), no media type to look up: Starlette's headers are a
                # list scanned on each look-up.
                media = headers.get("content-type") if raw else None
                ctx.raw_body = parse_body(endpoint, media, raw, method)
            except APIError as exc:
                response = response_of(ctx, exc)
            else:
                response = await self._runner.run(endpoint, ctx)
        await _send_response(send, response)

    def _ip(self, headers: Headers, peer: str | None) -> str | None:
        if peer is None or not self._ip_by_peer:
            return self._client_ip(headers, peer)
        try:
            return self._peer_ips[peer]
        except KeyError:
            ip = self._peer_ips[peer] = self._client_ip(headers, peer)
            if len(self._peer_ips) > 4096:  # many clients: start again
                self._peer_ips.clear()
            return ip

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _route_path(scope: Scope, base_path: str) -> str | None:
    """The endpoint path of a request, or None when it is outside the base path.

    Mounted (Starlette's `Mount(base_path, identity.app)` sets `root_path`), the rest of
    the path after the mount point; served at the server's root, the path under
    `base_path`, as better-call requires it.
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root:
        return path[len(root) :] if path.startswith(root) else path
    if path.startswith(base_path + "/"):
        return path[len(base_path) :]
    return None


async def _read_body(request: Request, headers: Headers, limit: int) -> bytes | None:
    """The body, or None past `limit` bytes (read no further than that)."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_response(send: Send, response: APIResponse) -> None:
    body, media_type = response.render()
    headers: list[tuple[bytes, bytes]] = []
    if media_type is not None:
        headers.append((b"content-type", media_type.encode()))
    headers += [(k.encode(), v.encode()) for k, v in response.headers.items()]
    headers += [(b"set-cookie", c.encode()) for c in response.cookies]
    await _send(send, response.status, body, headers)
