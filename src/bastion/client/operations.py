"""One definition per operation, for the sync and the async client alike.

A section (`client.sign_up`, `client.agents`, or the client itself) is a `Section[M]`; its
operations are methods that only *describe* the request and return a `Call`, decorated with
`@operation` (or `@streaming` for an event stream):

    class Threads(Section[M]):
        @operation
        def get(self, thread_id: str) -> Call[JSON]:
            return Call("GET", f"/memory/threads/{segment(thread_id)}")

On a `Section[Sync]`, `threads.get("t1")` sends the call and returns the JSON; on a
`Section[Async]` it returns an awaitable of it. The descriptor's overloads tell the type
checker so, with the parameters of the method (ParamSpec), so both clients are fully typed
from the one definition.

`SyncHandle` / `AsyncHandle` add what a client object has beyond its operations: the token,
the cookie jar, closing, and the context-manager protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload
from urllib.parse import quote

import httpx

from .._url_masking import mask_userinfo
from .transport import (
    DEFAULT_TIMEOUT,
    Async,
    AsyncDriver,
    AsyncEventStream,
    Driver,
    EventStream,
    M,
    Sync,
    SyncDriver,
)
from .wire import Call, CookieTypes, TimeoutTypes, Wire

__all__ = [
    "AsyncHandle",
    "RootSection",
    "Section",
    "SyncHandle",
    "operation",
    "segment",
    "streaming",
]

P = ParamSpec("P")
T = TypeVar("T")


class Section(Generic[M]):
    """A group of operations sharing one driver."""

    def __init__(self, driver: Driver[M]) -> None:
        self._attach(driver)

    def _attach(self, driver: Driver[M]) -> None:
        """Bind this section (and, in overrides, its sub-sections) to `driver`."""
        self._driver = driver


class _Bound(Generic[P]):
    """Binds a `Call`-building method to its section's driver on attribute access."""

    _send = "run"

    def __init__(self, build: Callable[Concatenate[Any, P], Call[Any]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.__name__ = name  # `generate = operation(_generate)` is named "generate"

    def _bind(self, section: Section[Any]) -> Callable[P, Any]:
        build, send = self._build, getattr(section._driver, self._send)

        def bound(*args: P.args, **kwargs: P.kwargs) -> Any:
            return send(build(section, *args, **kwargs))

        bound.__doc__, bound.__name__ = self.__doc__, self.__name__
        bound.__qualname__ = f"{type(section).__name__}.{self.__name__}"
        return bound


class operation(_Bound[P], Generic[P, T]):  # lower case: used as a decorator
    """A request with one JSON answer."""

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        super().__init__(build)

    @overload
    def __get__(self, section: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, section: Section[Sync], owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, section: Section[Async], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, section: Section[Any] | None, owner: type[Any]) -> Any:
        return self if section is None else self._bind(section)


class streaming(_Bound[P]):  # lower case: used as a decorator
    """A request answered with server-sent agent events."""

    _send = "stream"

    @overload
    def __get__(self, section: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, section: Section[Sync], owner: type[Any]) -> Callable[P, EventStream]: ...
    @overload
    def __get__(
        self, section: Section[Async], owner: type[Any]
    ) -> Callable[P, AsyncEventStream]: ...
    def __get__(self, section: Section[Any] | None, owner: type[Any]) -> Any:
        return self if section is None else self._bind(section)


def segment(value: str) -> str:
    """One path segment: an id with "/" or "?" in it stays one segment."""
    return quote(value, safe="")


H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class _Handle(Generic[H]):
    """A client object: made from a base URL and credentials, holding its driver.

    The client classes combine a handle with an API section, e.g.
    `class AuthClient(SyncHandle, AuthAPI[Sync])`; the section provides `_make_wire` (the
    protocol: root URL, error type) and `_attach` (binding the operations to the driver).
    """

    _transport: SyncDriver | AsyncDriver
    _make_wire: Callable[[str, str | None, str | None], Wire]
    _attach: Callable[[Driver[Any]], None]

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        cookies: CookieTypes | None = None,
        origin: str | None = None,
        http_client: H | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
    ) -> None:
        wire = self._make_wire(base_url, token, origin)
        self._transport = self._new_driver(wire, http_client, cookies, timeout)
        self._attach(self._transport)

    def _new_driver(
        self, wire: Wire, http: H | None, cookies: CookieTypes | None, timeout: TimeoutTypes
    ) -> SyncDriver | AsyncDriver:
        raise NotImplementedError

    @property
    def token(self) -> str | None:
        """The bearer token sent as `Authorization: Bearer …` (None: none is sent)."""
        return self._transport.wire.token

    @token.setter
    def token(self, value: str | None) -> None:
        self._transport.wire.token = value

    @property
    def cookies(self) -> httpx.Cookies:
        """The cookie jar (the http client's)."""
        return self._transport.http.cookies

    @property
    def base_url(self) -> str:
        """The URL every path of this client is under."""
        return self._transport.wire.root

    def __repr__(self) -> str:  # never the token
        return f"{type(self).__name__}({mask_userinfo(self.base_url)!r})"


class SyncHandle(_Handle[httpx.Client]):
    _transport: SyncDriver

    def _new_driver(
        self,
        wire: Wire,
        http: httpx.Client | None,
        cookies: CookieTypes | None,
        timeout: TimeoutTypes,
    ) -> SyncDriver:
        return SyncDriver(wire, http, cookies=cookies, timeout=timeout)

    def close(self) -> None:
        """Close the http client, unless it was passed in (then its owner closes it)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncHandle(_Handle[httpx.AsyncClient]):
    _transport: AsyncDriver

    def _new_driver(
        self,
        wire: Wire,
        http: httpx.AsyncClient | None,
        cookies: CookieTypes | None,
        timeout: TimeoutTypes,
    ) -> AsyncDriver:
        return AsyncDriver(wire, http, cookies=cookies, timeout=timeout)

    async def aclose(self) -> None:
        """Close the http client, unless it was passed in (then its owner closes it)."""
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class RootSection(Section[M]):
    """A client's top level: its operations, plus `request` for any other endpoint."""

    @operation
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Call[Any]:
        """Any endpoint under this client's base URL (e.g. a plugin's or a custom route);
        answers its JSON, and raises as the named operations do."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        return Call(method.upper(), path, body=json, params=params)
