"""`Identity`: the options, the database, the endpoints — served over HTTP (`identity.app`)
and in-process (`identity.api`)."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from .crypto import PasswordHasher, sign_jwt, verify_jwt
from .db import CORE_SCHEMA, Database, DatabaseUnavailable, Schema, TableSpec
from .db.types import utc_now
from .endpoint import (
    APIResponse,
    Ctx,
    Endpoint,
    Redirect,
    dump_json,
    parse_body,
    response_of,
    validate,
)
from .errors import APIError, Code, service_unavailable, too_many_requests
from .options import IdentityOptions
from .origins import TrustedOrigins
from .origins import resolve as resolve_origins
from .ratelimit import RATE_LIMIT_SCHEMA, ClientIP, RateLimiter, StorageKind
from .routes import CORE_ENDPOINTS
from .routes.misc import ErrorPage
from .secret import generated_secret
from .security import router_checks
from .sessions import SessionCookies
from .storage import StorageUnavailable
from .store import Store

__all__ = ["API", "Identity"]

logger = logging.getLogger("bastion.identity")


class Identity:
    """better-auth, in Python: `Identity(email_and_password={"enabled": True})`.

    Mount `identity.app` at the base path (`/api/auth`), or call `identity.api.<endpoint>`
    in-process. Options are `IdentityOptions` fields, as keyword arguments or one object.
    """

    def __init__(
        self,
        options: IdentityOptions | None = None,
        /,
        *,
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], datetime] = utc_now,
        **kwargs: Any,
    ) -> None:
        if options is None:
            options = IdentityOptions.build(kwargs)
        elif kwargs:
            raise TypeError("give options either as one IdentityOptions or as keywords")
        self.options = options.resolve(env)
        self.now = clock
        self._env = env
        self.schema = self._schema()
        database = self.options.database
        if isinstance(database, Database):
            self.db = database
        else:
            self.db = Database(database, schema=self.schema, clock=clock)
        if self.options.secret is None:  # never a constant: see identity/secret.py
            self.options = dataclasses.replace(self.options, secret=generated_secret(self.db.url))
        self.store = Store(
            self.db,
            secondary=self.options.secondary_storage,
            sessions_in_database=self.options.session.store_session_in_database,
            database_hooks=self.options.database_hooks,
            clock=clock,
        )
        self.hasher = PasswordHasher()
        self.rate_limiter = self._rate_limiter()
        advanced = self.options.advanced
        self._client_ip = ClientIP(
            ip_headers=tuple(advanced.ip_address_headers),
            trusted_proxies=tuple(advanced.trusted_proxies),
            disable_ip_tracking=advanced.disable_ip_tracking,
            ipv6_subnet=128,  # the address itself (session.ipAddress); the limiter takes a /64
        )
        # Without trusted proxies the client address depends on the peer alone: parse each
        # peer once (ipaddress costs several µs a request).
        self._ip_by_peer = not advanced.trusted_proxies
        self._peer_ips: dict[str, str | None] = {}
        self.endpoints = self._endpoints()
        # A base URL with a path gives the base path (spec §1.1), as in `new_ctx`.
        base_url_path = urlsplit(self.options.base_url or "").path.rstrip("/")
        self._base_path = base_url_path or self.options.base_path
        self._static: dict[str, Endpoint] = {}
        self._dynamic: list[tuple[re.Pattern[str], Endpoint]] = []
        for endpoint in self.endpoints.values():
            if endpoint.server_only:
                continue
            if "{" in endpoint.path:
                pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", endpoint.path)
                self._dynamic.append((re.compile(pattern), endpoint))  # fullmatch: no `$`
            else:
                self._static[endpoint.path] = endpoint
        self._trusted: dict[str, TrustedOrigins] = {}
        # Static entries are checked now: a typo fails at start-up, not on a request.
        configured = self.options.trusted_origins
        self._static_origins = TrustedOrigins.from_options(
            None, [] if callable(configured) else list(configured), env
        )
        self._before = [h for p in self.options.plugins for h in p.before]
        self._after = [h for p in self.options.plugins for h in p.after]
        self._output: dict[str, set[str]] = {
            model: {n for n, f in self.schema.fields(model).items() if f.returned}
            for model in self.schema
        }
        self._dates = {
            model: {n for n, f in self.schema.fields(model).items() if f.type == "date"}
            for model in self.schema
        }
        self._secure = self._secure_cookies()  # options only: decided once
        assert self.options.secret is not None  # set above
        self.session_cookies = SessionCookies(
            self.options.secret,
            advanced.cookie_prefix,
            self.options.session.cookie_cache.version,
            self._dates,
        )
        self.api = API(self)

    # -- construction ----------------------------------------------------------------

    def _schema(self) -> Schema:
        schema = CORE_SCHEMA
        for plugin in self.options.plugins:
            if plugin.schema:
                schema = schema.extend(plugin.schema)
        extra_user = self.options.user.additional_fields
        extra_session = self.options.session.additional_fields
        if extra_user:
            schema = schema.extend({"user": TableSpec(fields=extra_user)})
        if extra_session:
            schema = schema.extend({"session": TableSpec(fields=extra_session)})
        if self._rate_limit_storage() == "database":
            schema = schema.extend(RATE_LIMIT_SCHEMA)
        return schema

    def _rate_limit_storage(self) -> StorageKind:
        chosen = self.options.rate_limit.storage
        if chosen is not None:
            return chosen
        return "secondary-storage" if self.options.secondary_storage is not None else "memory"

    def _rate_limiter(self) -> RateLimiter | None:
        options = self.options.rate_limit
        enabled = options.enabled if options.enabled is not None else self.options.production
        if not enabled:
            return None
        storage = self._rate_limit_storage()
        return RateLimiter(
            window=options.window,
            max=options.max,
            storage=storage,
            database=self.db if storage == "database" else None,
            secondary=self.options.secondary_storage,
            plugin_rules=[rule for p in self.options.plugins for rule in p.rate_limits],
            custom_rules=options.custom_rules,
            account_rules=options.account_rules,
            now_ms=lambda: int(self.now().timestamp() * 1000),  # the Identity's clock
        )

    def _endpoints(self) -> dict[str, Endpoint]:
        endpoints: dict[str, Endpoint] = {}
        seen: dict[tuple[str, str], str] = {}
        for endpoint in [*CORE_ENDPOINTS, *(e for p in self.options.plugins for e in p.endpoints)]:
            if endpoint.name in endpoints:
                raise ValueError(f"two endpoints are named {endpoint.name!r}")
            for method in endpoint.methods:
                key = (method, endpoint.path)
                if key in seen:
                    raise ValueError(f"{method} {endpoint.path} is served twice")
                seen[key] = endpoint.name
            endpoints[endpoint.name] = endpoint
        return endpoints

    # -- helpers the routes use ------------------------------------------------------

    def public_row(self, model: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """The row without its `returned=False` fields (password hashes, OAuth tokens)."""
        keep = self._output[model]
        return {k: v for k, v in row.items() if k in keep}

    def date_fields(self, model: str) -> set[str]:
        return self._dates[model]

    def sign_jwt(self, claims: Mapping[str, Any], expires_in: int) -> str:
        assert self.options.secret is not None
        return sign_jwt(self.options.secret, dict(claims), expires_in, now=self.now())

    def verify_jwt(self, token: str) -> dict[str, Any]:
        assert self.options.secret is not None
        return verify_jwt(self.options.secret, token, now=self.now())

    def secure_cookies(self, ctx: Ctx[Any]) -> bool:
        """`__Secure-` names and `Secure`, decided as better-auth decides (spec §5.1): the
        option, else a configured https base URL, else production. Not the request's scheme:
        behind a TLS-terminating proxy it is http, and the cookie names must not change with
        it (a better-auth server on the same database reads the same cookies)."""
        return self._secure

    def _secure_cookies(self) -> bool:
        chosen = self.options.advanced.use_secure_cookies
        if chosen is not None:
            return chosen
        if self.options.base_url:
            return self.options.base_url.startswith("https://")
        return self.options.production

    async def trusted_origins(self, ctx: Ctx[Any]) -> TrustedOrigins:
        configured = self.options.trusted_origins
        if callable(configured):
            # Entries a callable returns per request are dropped when unusable, not a 500.
            return await resolve_origins(
                self._static_origins, configured, ctx.request, base_url=ctx.base_url
            )
        trusted = self._trusted.get(ctx.base_url)
        if trusted is None:
            trusted = await resolve_origins(
                self._static_origins, None, ctx.request, base_url=ctx.base_url
            )
            if len(self._trusted) < 64:  # one per base URL seen; bounded for derived URLs
                self._trusted[ctx.base_url] = trusted
        return trusted

    # -- lifecycle -------------------------------------------------------------------

    async def migrate(self) -> None:
        from .db import migrate

        await migrate(self.db)

    async def close(self) -> None:
        await self.db.close()

    # -- running endpoints -----------------------------------------------------------

    async def run(self, endpoint: Endpoint, ctx: Ctx[Any]) -> APIResponse:
        """The pipeline of spec §1.4 from the parsed body on; never raises for a request."""
        try:
            return await self._run(endpoint, ctx)
        except Exception as exc:  # a request never answers a traceback
            ctx.error = _failure(endpoint.path, exc)
            return response_of(ctx, ctx.error)

    async def _run(self, endpoint: Endpoint, ctx: Ctx[Any]) -> APIResponse:
        error: APIError | None = None
        location: str | None = None
        try:
            if ctx.request is not None:  # in-process calls skip them, as auth.api calls do
                await router_checks(ctx)
            answered = False
            user_before = self.options.hooks.get("before")
            if user_before is not None:
                result = await _maybe_await(user_before(ctx))
                if result is not None:
                    ctx.returned, answered = result, True
            for hook in self._before:
                if answered:
                    break
                if hook.match(endpoint):
                    result = await hook.run(ctx)
                    if result is not None:
                        ctx.returned, answered = result, True
            if not answered:
                validate(endpoint, ctx)
                for guard in endpoint.use:
                    await guard(ctx)
                if endpoint.no_store:  # set by the handler, so not on the router's errors
                    ctx.response_headers.update(_NO_STORE)
                ctx.returned = await endpoint.handler(ctx)
        except Redirect as redirect:
            location = redirect.location
        except APIError as exc:
            error = exc
        ctx.error = error
        try:
            user_after = self.options.hooks.get("after")
            if user_after is not None:
                await _maybe_await(user_after(ctx))
            for hook in self._after:
                if hook.match(endpoint):
                    await hook.run(ctx)
        except APIError as exc:
            error, location = exc, None
        return response_of(ctx, error, location)

    def new_ctx(
        self,
        endpoint: Endpoint,
        *,
        method: str,
        headers: Mapping[str, str],
        raw_body: Any = None,
        query: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        request: Request | None = None,
        client_ip: str | None = None,
    ) -> Ctx[Any]:
        base_url = self.options.base_url
        if base_url is None and request is not None:
            base_url = _request_origin(request, self.options.advanced.trusted_proxy_headers)
        base = _with_base_path(base_url or "http://localhost", self.options.base_path)
        return Ctx(
            identity=self,
            endpoint=endpoint,
            headers=headers,
            method=method,
            raw_body=raw_body,
            query=dict(query or {}),
            params=dict(params or {}),
            request=request,
            client_ip=client_ip,
            base_url=base,
        )

    # -- ASGI ------------------------------------------------------------------------

    @property
    def app(self) -> Identity:
        """The ASGI application (the Identity itself): mount it at `base_path`."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = _route_path(scope, self._base_path)
        endpoint, params = self._match(path) if path is not None else (None, {})
        method = scope["method"]
        if endpoint is None or path is None or method not in endpoint.methods:
            await _send(send, 404, b"", [])
            return
        headers = Headers(scope=scope)
        lower = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        ip = self._ip(headers, client[0] if client else None)
        if self.rate_limiter is not None:
            try:
                verdict = await self.rate_limiter.check(path, ip)
            except Exception as exc:  # its storage is down: as any storage failure
                error = _failure(path, exc)
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
                raw = await _read_body(request, headers, self.options.max_body_size)
            except ClientDisconnect:  # hung up, or cut off by the server's body timeout
                return  # nobody is left to answer, and a half body must not run the endpoint
        query: dict[str, Any] = {}
        for key, value in request.query_params.multi_items() if scope.get("query_string") else ():
            query[key] = (
                [*query[key], value]
                if isinstance(query.get(key), list)
                else ([query[key], value] if key in query else value)
            )
        ctx = self.new_ctx(
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
                ctx.raw_body = parse_body(endpoint, headers.get("content-type"), raw, method)
            except APIError as exc:
                response = response_of(ctx, exc)
            else:
                response = await self.run(endpoint, ctx)
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

    def _match(self, path: str) -> tuple[Endpoint | None, dict[str, str]]:
        endpoint = self._static.get(path)
        if endpoint is not None:
            return endpoint, {}
        for pattern, candidate in self._dynamic:
            found = pattern.fullmatch(path)
            if found:
                return candidate, found.groupdict()
        return None, {}

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


class API:
    """`identity.api.sign_in_email(body={...}, headers={...})`: the endpoints in-process.

    Each returns the endpoint's result as Python values and raises `APIError` for an error
    answer; `as_response=True` returns the whole `APIResponse` (status, headers, cookies).
    """

    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    def __getattr__(self, name: str) -> Callable[..., Any]:
        endpoint = self._identity.endpoints.get(name)
        if endpoint is None:
            raise AttributeError(f"no endpoint {name!r}")

        async def call(
            *,
            body: Any = None,
            headers: Mapping[str, str] | None = None,
            query: Mapping[str, Any] | None = None,
            params: Mapping[str, str] | None = None,
            as_response: bool = False,
        ) -> Any:
            identity = self._identity
            method = (
                "POST" if "POST" in endpoint.methods and body is not None else endpoint.methods[0]
            )
            ctx = identity.new_ctx(
                endpoint,
                method=method,
                headers={k.lower(): v for k, v in (headers or {}).items()},
                raw_body=body,
                query=query,
                params=params,
            )
            response = await identity.run(endpoint, ctx)
            if as_response:
                return response
            if response.status >= 400:
                raise ctx.error or APIError(response.status)
            return ctx.returned

        call.__name__ = name
        return call


_JSON = [(b"content-type", b"application/json")]
_HTTP1 = frozenset({"1.0", "1.1"})
_FRAMING = frozenset({"content-length", "transfer-encoding"})  # RFC 9112 §6.3
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _failure(path: str, exc: Exception) -> APIError:
    """The answer to an exception that escaped an endpoint: 503 when a storage did not
    answer, else 500; logged here, never sent to the client."""
    if isinstance(exc, DatabaseUnavailable | StorageUnavailable):
        logger.error("identity %s: %s", path, exc)
        return service_unavailable(secondary_storage=isinstance(exc, StorageUnavailable))
    logger.exception("identity %s failed", path)
    return APIError(500, Code.INTERNAL_SERVER_ERROR)


_FORWARDED_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def _request_origin(request: Request, trust_forwarded: bool) -> str:
    scheme, host = request.url.scheme, request.url.netloc
    if trust_forwarded:
        # The first hop is the client-facing one; a malformed value falls back to the request.
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        forwarded_host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        if proto in ("http", "https"):
            scheme = proto
        if _FORWARDED_HOST.fullmatch(forwarded_host):
            host = forwarded_host
    return f"{scheme}://{host}"


def _with_base_path(base_url: str, base_path: str) -> str:
    parts = urlsplit(base_url)
    if parts.path not in ("", "/"):
        return base_url.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{base_path}"


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
    if isinstance(response.body, ErrorPage):
        body = str(response.body).encode()
        content_type = b"text/html"  # as better-auth; the page declares its charset
    else:
        body = response.render()
        content_type = b"application/json"
    headers: list[tuple[bytes, bytes]] = [(b"content-type", content_type)]
    headers += [(k.encode(), v.encode()) for k, v in response.headers.items()]
    headers += [(b"set-cookie", c.encode()) for c in response.cookies]
    await _send(send, response.status, body, headers)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
