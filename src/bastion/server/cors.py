"""CORS: let pages on other origins call the API from a browser, with credentials.

    Bastion(..., cors=["https://app.example.com"])          # or cors=CORS(origins=[...], ...)

Off by default: a page served by the same origin needs none of this. When on, it runs
before everything else (the auth pipeline, the mounted Identity), because a browser's
preflight (`OPTIONS` with `Access-Control-Request-Method`) never carries credentials and
would otherwise be answered 401:

- a preflight from a listed origin: 204 with `Access-Control-Allow-Origin: <that origin>`,
  `-Allow-Credentials: true`, `-Allow-Methods`, `-Allow-Headers`, `-Max-Age`; from any other
  origin: 403 `{"error": "Origin not allowed"}`, without CORS headers. Neither reaches auth.
- any other request goes on as usual; its answer (errors included, so the page can read a
  401) gets `Access-Control-Allow-Origin`, `-Allow-Credentials: true` and
  `-Expose-Headers: set-auth-token` when its `Origin` is listed.
- every answer says `Vary: Origin`, so a cache never hands one origin's answer to another.

Origins are listed exactly (scheme, host, port): with credentials, a wildcard would let any
site act as the signed-in user, so `"*"` is refused. The Identity still checks `Origin` on
its own state-changing endpoints: list the same origins in its `trusted_origins`, or let
them be the list:

    Bastion(..., auth=IdentityAuth(identity), cors="trusted")   # = trusted_cors(identity)

`trusted_cors(identity)` allows the origin of the Identity's base URL, its `trusted_origins`
and $BETTER_AUTH_TRUSTED_ORIGINS / $BASTION_TRUSTED_ORIGINS (of the Identity's `env`), so
one list says which pages may sign in and call the API. Only exact http(s) origins become
CORS origins: a pattern (`*.example.com`, `https://*.example.com`) raises ValueError (with
credentials, every subdomain, including one that serves user content, could read the
signed-in user's answers: list the origins, or give `cors=[...]` yourself), and so does a
`trusted_origins` callable (its list is per request; CORS is decided at start-up).
Custom-scheme entries (`myapp://`) are skipped: they are redirect targets of native apps,
not the `Origin` of a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from ..identity import Identity

__all__ = ["CORS", "CORSMiddleware", "normalize_origin", "trusted_cors"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_VARY = (b"vary", b"Origin")
_REFUSED = b'{"error":"Origin not allowed"}'


def normalize_origin(origin: str) -> str:
    """`scheme://host[:port]` as browsers send it in `Origin`: lower case, no default port,
    no path. Raises ValueError for anything that is not one origin."""
    if origin == "*" or origin == "null":
        raise ValueError(
            f"CORS origin {origin!r}: list each origin (with credentials, a wildcard or "
            "'null' would let any page act as the signed-in user)"
        )
    parts = urlsplit(origin)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or port == -1
    ):
        raise ValueError(f"CORS origin {origin!r}: give scheme://host[:port], e.g. https://a.com")
    host = parts.hostname
    if ":" in host:  # IPv6
        host = f"[{host}]"
    suffix = f":{port}" if port is not None and port != _DEFAULT_PORTS[parts.scheme] else ""
    return f"{parts.scheme}://{host}{suffix}"


@dataclass(frozen=True, kw_only=True, slots=True)
class CORS:
    """Which origins may call the API from a browser, and what a preflight allows."""

    origins: Sequence[str]
    allow_methods: Sequence[str] = _METHODS
    allow_headers: Sequence[str] = ("Content-Type", "Authorization")
    expose_headers: Sequence[str] = ("set-auth-token",)
    # Seconds a browser may reuse a preflight's answer.
    max_age: int = 600

    def __post_init__(self) -> None:
        for field in ("origins", "allow_methods", "allow_headers", "expose_headers"):
            if isinstance(getattr(self, field), str):
                raise TypeError(f"CORS {field}: a list of strings, not one string")
        if not self.origins:
            raise ValueError("CORS origins: list at least one origin")
        for origin in self.origins:
            normalize_origin(origin)
        if self.max_age < 0:
            raise ValueError("CORS max_age cannot be negative")


def trusted_cors(identity: Identity, **options: Any) -> CORS:
    """`CORS` for the Identity's trusted origins (module docstring); `options` are the
    other `CORS` fields (allow_headers=..., max_age=...)."""
    configured = identity.options.trusted_origins
    if callable(configured):
        raise ValueError(
            "cors='trusted': the Identity's trusted_origins is a callable, decided per "
            "request; give Bastion(cors=[...]) the origins pages may call from"
        )
    origins: list[str] = []
    base_url = identity.options.base_url
    if base_url:
        parts = urlsplit(base_url)
        origins.append(normalize_origin(f"{parts.scheme}://{parts.netloc}"))
    for entry in identity.context.static_trusted_origins.entries:
        if "*" in entry or "?" in entry:
            raise ValueError(
                f"cors='trusted': trusted origin {entry!r} is a pattern; with credentials "
                "CORS allows exact origins only: list them in trusted_origins, or give "
                "Bastion(cors=[...])"
            )
        if urlsplit(entry).scheme not in _DEFAULT_PORTS:
            continue  # a native app's redirect scheme, never a page's Origin
        origin = normalize_origin(entry)
        if origin not in origins:
            origins.append(origin)
    if not origins:
        raise ValueError(
            "cors='trusted': the Identity trusts no origin (no base_url, no trusted_origins)"
        )
    return CORS(origins=tuple(origins), **options)


class CORSMiddleware:
    """`CORS` options applied in front of `app` (built once; see the module docstring)."""

    def __init__(self, app: ASGIApp, cors: CORS) -> None:
        self.app = app
        self.origins = frozenset(normalize_origin(o) for o in cors.origins)
        self._preflight = [
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", ", ".join(cors.allow_methods).encode()),
            (b"access-control-allow-headers", ", ".join(cors.allow_headers).encode()),
            (b"access-control-max-age", str(cors.max_age).encode()),
            _VARY,
        ]
        self._actual = [(b"access-control-allow-credentials", b"true"), _VARY]
        if cors.expose_headers:
            exposed = ", ".join(cors.expose_headers).encode()
            self._actual.append((b"access-control-expose-headers", exposed))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        preflight = False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = True
        allowed = (
            origin
            if origin is not None and origin.decode("latin-1").lower() in self.origins
            else None
        )
        if preflight and origin is not None and scope["method"] == "OPTIONS":
            await self._answer_preflight(allowed, send)
            return
        extra = [(b"access-control-allow-origin", allowed), *self._actual] if allowed else [_VARY]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _answer_preflight(self, origin: bytes | None, send: Send) -> None:
        if origin is None:
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_REFUSED)).encode()),
                _VARY,
            ]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": _REFUSED})
            return
        headers = [(b"access-control-allow-origin", origin), *self._preflight]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
