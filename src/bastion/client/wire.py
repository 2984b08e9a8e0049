"""The I/O-free half of both clients: what a call sends and how its answer is read.

A `Call` describes one HTTP exchange (method, path, JSON body, query, how to turn the JSON
answer into the result). A `Wire` holds what every request of one client carries (the root
URL, the Origin header, the bearer token) and reads answers: errors become typed exceptions,
a `set-auth-token` header replaces the token. The sync and async drivers (transport.py)
only send what `Wire.build` made and hand the response back to `Wire.read`, so the two
never disagree about the protocol.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any, Generic, TypeAlias, TypeVar
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from .. import __version__
from .._url_masking import mask_userinfo
from .errors import ClientError, ProtocolError

__all__ = [
    "JSON",
    "USER_AGENT",
    "Call",
    "CookieTypes",
    "TimeoutTypes",
    "Wire",
    "compact",
    "json_object",
    "origin_of",
    "server_url",
    "text_or_none",
]

T = TypeVar("T")

CookieTypes: TypeAlias = httpx.Cookies | CookieJar | dict[str, str]
TimeoutTypes: TypeAlias = float | httpx.Timeout | None

JSON: TypeAlias = dict[str, Any]
"""A JSON object as the server sent it (keys in the server's camelCase)."""

USER_AGENT = f"bastion-client/{__version__}"


def _as_is(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request: `body` is sent as JSON (None: no body); `read` makes the result."""

    method: str
    path: str  # below the client's root URL, with a leading "/"
    body: Any = None
    params: Mapping[str, str] | None = None
    read: Callable[[Any], T] = _as_is
    ends_session: bool = False  # on success, the client forgets its bearer token


def compact(**fields: Any) -> JSON:
    """The fields that were given (not None): optional parameters the caller left out are
    left out of the body, as the JS client leaves out `undefined`."""
    return {key: value for key, value in fields.items() if value is not None}


def server_url(base_url: str) -> SplitResult:
    """`base_url`, checked: an absolute http(s) URL without query or fragment."""
    parts = urlsplit(base_url)
    shown = mask_userinfo(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an absolute http(s) URL, not {shown!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url takes no query or fragment: {shown!r}")
    return parts


def origin_of(parts: SplitResult) -> str:
    """scheme://host[:port] — what a browser sends as Origin for a page at that URL."""
    host = parts.netloc.rpartition("@")[2].lower()  # never user:password@
    return urlunsplit((parts.scheme, host, "", "", ""))


class Wire:
    """What one client sends with every call, and how it reads the answers."""

    def __init__(
        self,
        root: str,
        *,
        origin: str | None,
        token: str | None,
        error: Callable[[httpx.Response], ClientError],
        capture_token: bool,
    ) -> None:
        self.root = root.rstrip("/")
        self.origin = origin
        self.token = token
        self._error = error
        self._capture_token = capture_token

    @classmethod
    def at(
        cls,
        base_url: str,
        *,
        path: Callable[[str], str],
        token: str | None,
        origin: str | None,
        error: Callable[[httpx.Response], ClientError],
        capture_token: bool,
    ) -> Wire:
        """The wire of a client given `base_url`: `path(base_url's path)` is the root path;
        the Origin defaults to `base_url`'s origin."""
        parts = server_url(base_url)
        root = urlunsplit((parts.scheme, parts.netloc, path(parts.path.rstrip("/")), "", ""))
        return cls(
            root,
            origin=origin or origin_of(parts),
            token=token,
            error=error,
            capture_token=capture_token,
        )

    def build(
        self, http: httpx.Client | httpx.AsyncClient, call: Call[Any], *, stream: bool = False
    ) -> httpx.Request:
        headers = {"accept": "text/event-stream" if stream else "application/json"}
        if self.origin:
            # better-auth refuses a POST that carries cookies but no Origin (CSRF check).
            headers["origin"] = self.origin
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return http.build_request(
            call.method, self.root + call.path, json=call.body, params=call.params, headers=headers
        )

    def read(self, call: Call[T], response: httpx.Response) -> T:
        """The result of a call whose body has been read, or the error it answered."""
        self.observe(response)
        if not response.is_success:
            raise self.refusal(call, response, expected="a JSON answer")
        result = call.read(self._json(call, response))
        if call.ends_session:
            self.token = None
        return result

    def observe(self, response: httpx.Response) -> None:
        # As the JS bearer recipe: any answer may carry a new session token.
        if self._capture_token:
            token = response.headers.get("set-auth-token")
            if token:
                self.token = token

    def streams(self, response: httpx.Response) -> bool:
        """True when a stream call was answered with an event stream."""
        self.observe(response)
        content_type = response.headers.get("content-type", "")
        return response.is_success and content_type.startswith("text/event-stream")

    def refusal(self, call: Call[Any], response: httpx.Response, *, expected: str) -> ClientError:
        """The error for an answer that is not the call's result (its body already read)."""
        if response.status_code >= 400:
            return self._error(response)
        what = response.headers.get("location") or response.headers.get("content-type", "")
        return ProtocolError(
            response.status_code,
            f"{call.method} {call.path}: expected {expected}, got "
            f"{response.status_code} {response.reason_phrase} {what}".rstrip(),
            response=response,
        )

    def _json(self, call: Call[Any], response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return json.loads(response.content)
        except ValueError:
            raise self.refusal(call, response, expected="JSON") from None


def json_object(response: httpx.Response) -> JSON:
    """An error answer's JSON object, or {} (no body, not JSON, not an object)."""
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
