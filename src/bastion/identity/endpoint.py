"""Endpoints as declarations, and the runner that takes a request through them.

The order is better-auth's (spec §1.4): body parsed (415/400) → origin and redirect checks
(403) → before-hooks → body validated (400) → `use` guards (401/403) → handler →
after-hooks. The same runner serves HTTP and in-process calls (`identity.api`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from urllib.parse import parse_qsl

import orjson
from pydantic import BaseModel, ValidationError

from ._untrusted import InvalidInput, NotJSON, check_value, parse_json
from .cookies import CookieAttributes, parse_cookie_header, serialize_cookie
from .db.types import format_iso
from .errors import APIError, Code
from .ratelimit import RateRule
from .validation import Body, describe_errors, js_type

if TYPE_CHECKING:
    from .context import AuthContext
    from .options import IdentityOptions
    from .origins import TrustedOrigins
    from .store import SessionWithUser

__all__ = [
    "JSON",
    "JSON_OR_FORM",
    "APIResponse",
    "Ctx",
    "Endpoint",
    "RawResponse",
    "Redirect",
    "SignInAnswered",
    "dump_json",
]

# In better-auth's order: its 415 message lists them as declared.
JSON: tuple[str, ...] = ("application/json",)
JSON_OR_FORM: tuple[str, ...] = ("application/x-www-form-urlencoded", "application/json")

B = TypeVar("B", bound=BaseModel)
Guard = Callable[["Ctx[Any]"], Awaitable[None]]


@dataclass(frozen=True, eq=False)
class Endpoint:
    """`path` is relative to the base path; `{name}` marks a path parameter.

    `name` is the in-process method (`identity.api.<name>`); `tags` let hooks match a
    family of endpoints ("sign-in", "sign-up") instead of a list of paths; `rate_limit` is
    the endpoint's own per-IP rule (else the limiter's default). `operation_id` and
    `openapi_tags` are its OpenAPI operation id and tags (better-auth's
    `metadata.openapi`): without them the open-api document gives no operation id, and
    groups the endpoint under `Default` (core) or its plugin's id.
    """

    path: str
    methods: tuple[str, ...]
    handler: Callable[[Ctx[Any]], Awaitable[Any]]
    name: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    media_types: Collection[str] = JSON
    use: Sequence[Guard] = ()
    tags: tuple[str, ...] = ()
    rate_limit: RateRule | None = None
    server_only: bool = False
    no_store: bool = False  # Cache-Control: no-store, Pragma: no-cache once the handler runs
    operation_id: str | None = None
    openapi_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or self.path.endswith("/"):
            raise ValueError(f"endpoint path {self.path!r}: starts with '/', no trailing '/'")


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A handler's answer sent as it is, not as JSON: an HTML page, a text, a redirect.

    `RawResponse.redirect(url)` is a 302 with `Location`; cookies the handler set go out
    with either.
    """

    content: str | bytes = b""
    status: int = 200
    media_type: str | None = "text/html; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> RawResponse:
        return cls(b"", status, None, {"location": location})

    def encoded(self) -> bytes:
        return self.content.encode() if isinstance(self.content, str) else self.content


class SignInAnswered(Exception):
    """Raised by `complete_sign_in` when a plugin's sign-in check answers instead of a new
    session (a second factor is due): the endpoint answers `answer`, with no session."""

    def __init__(self, answer: Any) -> None:
        super().__init__("sign-in answered by a plugin")
        self.answer = answer


class Redirect(Exception):
    """A handler's 302: raised so cookies set before it are kept (as ctx.redirect does)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass
class APIResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)  # Set-Cookie lines

    def render(self) -> tuple[bytes, str | None]:
        """The body's bytes and media type."""
        if isinstance(self.body, RawResponse):
            return self.body.encoded(), self.body.media_type
        if self.body is _EMPTY:
            return b"", "application/json"
        return dump_json(self.body), "application/json"


_EMPTY: Any = object()


@dataclass
class Ctx(Generic[B]):
    """What a handler sees. `body` arrives validated; `session` is set by session guards."""

    context: AuthContext
    endpoint: Endpoint
    headers: Mapping[str, str]  # lower-case names
    method: str
    raw_body: Any = None
    body: B = None  # type: ignore[assignment]
    query: dict[str, Any] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    request: Any = None  # the Starlette Request, None in-process
    client_ip: str | None = None
    base_url: str = ""  # origin + base path, e.g. http://localhost:4111/api/auth
    session: SessionWithUser | None = None
    new_session: SessionWithUser | None = None
    returned: Any = None
    error: APIError | None = None  # what after-hooks see when the endpoint failed
    status: int = 200
    response_headers: dict[str, str] = field(default_factory=dict)
    set_cookies: list[str] = field(default_factory=list)
    _cookies: dict[str, str] | None = None
    _received_headers: Mapping[str, str] | None = None

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = dict(_parse_cookies(self.headers.get("cookie", "")))
        return self._cookies

    def replace_cookie_header(self, header: str) -> None:
        """For hooks that rewrite the request's cookies (bearer). The CSRF checks still see
        the headers the client sent (`received_headers`)."""
        if self._received_headers is None:
            self._received_headers = self.headers
        self.headers = {**self.headers, "cookie": header}
        self._cookies = None

    @property
    def received_headers(self) -> Mapping[str, str]:
        """The request's headers as the client sent them, before any hook rewrote them.
        better-auth's Origin and form-CSRF checks read the request itself: a cookie that the
        bearer plugin derived from `Authorization` is not a browser's cookie."""
        return self.headers if self._received_headers is None else self._received_headers

    def set_cookie(self, name: str, value: str, attributes: CookieAttributes) -> None:
        self.set_cookies.append(serialize_cookie(name, value, attributes))

    @property
    def options(self) -> IdentityOptions:
        return self.context.options

    async def trusted_origins(self) -> TrustedOrigins:
        return await self.context.trusted_origins(self.base_url, self.request)


# A session's requests carry the same Cookie header again and again. A pure function of the
# header; its callers get a copy.
_parse_cookies = functools.lru_cache(maxsize=256)(parse_cookie_header)


def dump_json(value: Any) -> bytes:
    """`value` as JSON, as JSON.stringify writes it (non-ASCII as UTF-8, datetimes as
    toISOString)."""
    try:
        return orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS)
    except TypeError:
        # What orjson refuses: a lone surrogate (written as an escape, as JSON.stringify
        # does), an integer past 64 bits, a key that is not a string; or what neither writes,
        # which raises again here.
        return _ENCODER.encode(value).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_iso(value)  # remembers the instants it wrote (a session's, every time)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# Dates through _json_default (toISOString's form, not orjson's); a dataclass is not JSON.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# What json.dumps(value, default=_json_default, separators=(",", ":")) builds on every call;
# an encoder keeps no state between calls, so one serves all.
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"))


def parse_body(endpoint: Endpoint, content_type: str | None, raw: bytes, method: str) -> Any:
    """The request body as a Python value, or an APIError (415 / 400)."""
    if method in ("GET", "HEAD") or not raw:
        return None  # an empty body is no body, whatever its type (better-auth 1.7.25)
    if not content_type:
        return None  # better-auth ignores a body without a content type (errata 1)
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in endpoint.media_types:
        allowed = ", ".join(endpoint.media_types)
        raise APIError(
            415,
            Code.UNSUPPORTED_MEDIA_TYPE,
            f'Content-Type "{content_type}" is not allowed. Allowed types: {allowed}',
        )
    text = raw.decode("utf-8", errors="replace")
    if media == "application/x-www-form-urlencoded":
        form = dict(parse_qsl(text, keep_blank_values=True))
        _check_untrusted(form, "body")  # `%00` decodes to a NUL
        return form
    try:
        value = parse_json(text)
    except NotJSON:
        raise APIError(400, Code.BAD_REQUEST, "Invalid JSON in request body") from None
    except InvalidInput as exc:  # too deep, a NUL, a lone surrogate: before anything runs
        raise _invalid_input(exc, "body") from None
    return JSON_NULL if value is None else value


def _check_untrusted(value: Any, where: Literal["body", "query", "params"]) -> None:
    try:
        check_value(value)
    except InvalidInput as exc:
        raise _invalid_input(exc, where) from None


def _invalid_input(exc: InvalidInput, where: str) -> APIError:
    """`[body.name] Invalid input: contains a NUL character`, in zod's words and places."""
    location = ".".join([where, *(str(part) for part in exc.path)])
    return APIError(400, Code.VALIDATION_ERROR, f"[{location}] Invalid input: {exc.reason}")


def _expects(model: type[BaseModel]) -> tuple[str, ...]:
    return model.expects if issubclass(model, Body) else ("object",)


class _JSONNull:
    """A body of JSON `null`: not "no body" (None), as zod tells them apart."""

    def __repr__(self) -> str:
        return "JSON_NULL"


JSON_NULL: Any = _JSONNull()


def validate(endpoint: Endpoint, ctx: Ctx[Any]) -> None:
    # Whatever a handler reads may reach the database: no NUL or lone surrogate in the
    # query or path either. An HTTP body was checked as it was parsed (parse_body); an
    # in-process call's was never text, so it is walked here.
    if ctx.request is None and ctx.raw_body is not None:
        _check_untrusted(ctx.raw_body, "body")
    if ctx.query:
        _check_untrusted(ctx.query, "query")
    if ctx.params:
        _check_untrusted(ctx.params, "params")
    if endpoint.body is not None:
        raw = ctx.raw_body
        if not isinstance(raw, dict):
            received = "undefined" if raw is None else js_type(None if raw is JSON_NULL else raw)
            shapes = _expects(endpoint.body)
            raise APIError(
                400,
                Code.VALIDATION_ERROR,
                "; ".join(
                    f"[body] Invalid input: expected {shape}, received {received}"
                    for shape in shapes
                )
                or "[body] Invalid input",
            )
        try:
            ctx.body = endpoint.body.model_validate(raw)
        except ValidationError as exc:
            raise APIError(
                400, Code.VALIDATION_ERROR, describe_errors(exc, endpoint.body, "body")
            ) from None
    if endpoint.query is not None:
        if not ctx.query:  # most requests: the defaults, validated once per model
            defaults = _default_query(endpoint.query)
            if defaults is not None:
                ctx.query = dict(defaults)
                return
        try:
            model = endpoint.query.model_validate(ctx.query, strict=False)
        except ValidationError as exc:
            raise APIError(
                400, Code.VALIDATION_ERROR, describe_errors(exc, endpoint.query, "query")
            ) from None
        ctx.query = model.model_dump(by_alias=True)


@functools.cache
def _default_query(model: type[BaseModel]) -> dict[str, Any] | None:
    """What an empty query validates to, or None when it does not validate. A function of the
    model class alone (no instance state); pydantic takes ~10 µs a request to get it."""
    try:
        return model.model_validate({}, strict=False).model_dump(by_alias=True)
    except ValidationError:
        return None


def response_of(
    ctx: Ctx[Any], error: APIError | None = None, location: str | None = None
) -> APIResponse:
    headers = dict(ctx.response_headers)
    if location is not None:
        headers["location"] = location
        return APIResponse(302, _EMPTY, headers, ctx.set_cookies)
    if error is not None:
        headers.update(error.headers)
        body = error.body()
        return APIResponse(error.status, _EMPTY if body is None else body, headers, ctx.set_cookies)
    returned = ctx.returned
    if isinstance(returned, RawResponse):
        headers.update(returned.headers)
        return APIResponse(returned.status, returned, headers, ctx.set_cookies)
    return APIResponse(ctx.status, returned, headers, ctx.set_cookies)
