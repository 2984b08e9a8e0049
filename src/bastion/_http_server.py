"""The HTTP server `bastion serve` and `serving.serve()` run: uvicorn, with deadlines for
slow clients, a concurrency limit, no proxy headers and a redacted access log.

    protocol = HttpProtocol("auto", HttpLimits(header_timeout=10))   # ValueError: no httptools
    run(app, host="127.0.0.1", port=4111, protocol=protocol)
    run("bastion.serving:child_app", factory=True, workers=4, ...)   # the same, per worker

uvicorn alone waits forever for a request to begin, for its head to end and for its body to
arrive, so a client that connects and sends nothing, or a byte now and then, holds a
connection (and with httptools, a head of any size) as long as it likes. The protocol
classes here add, per connection:

- **idle timeout**: nothing received for `idle_timeout` s while no request is in progress
  (on a new connection, or after a response on a kept-alive one): closed (uvicorn's
  keep-alive timer, also armed when the connection opens);
- **header timeout**: the whole request head must arrive within `header_timeout` s of the
  connection opening, or of the previous request's end: else closed;
- **body timeout**: the whole body must arrive within `body_timeout` s of the head: else
  408 if no response has started, and the connection is closed (the app's `receive` then
  says `http.disconnect`);
- **head size**: a head still incomplete past about `max_head_size` bytes is a 400 (h11's
  own rule, counted on what has been read; httptools has no limit of its own).

`limit_concurrency` is uvicorn's: a request that finds that many connections open (its own
included) or requests in progress is answered `503 Service Unavailable` (text,
`connection: close`), and uvicorn logs a warning for it.

A hang-up, or a body cut off by its deadline, reaches the app as `http.disconnect`; Bastion's
body readers (the Identity's, the agent server's) then stop without logging anything.

uvicorn's proxy-header handling is off: it believes `X-Forwarded-For` and
`X-Forwarded-Proto` from 127.0.0.1 by default, so any local client could choose its
recorded address and its rate-limit bucket. The Identity's `advanced.trusted_proxies`
(security S6) is the one rule for forwarded headers.

Every setting travels inside uvicorn's `Config`, which uvicorn pickles into each worker
process (`--workers`, `--reload`): the protocol factory is a picklable dataclass and the log
filter is named by its dotted path, so the workers serve exactly as a single process does.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from ._http_deadlines import HttpLimits
from ._log_redaction import log_config

__all__ = ["HTTP_IMPLEMENTATIONS", "HttpImplementation", "HttpLimits", "HttpProtocol", "run"]

HttpImplementation = Literal["auto", "h11", "httptools"]
HTTP_IMPLEMENTATIONS: tuple[HttpImplementation, ...] = ("auto", "h11", "httptools")


def run(
    app: Any,
    *,
    host: str,
    port: int,
    protocol: HttpProtocol,
    workers: int = 1,
    reload: bool = False,
    factory: bool = False,
    log_level: str | None = None,
) -> None:
    """`uvicorn.run` with Bastion's protocol, limits and logging. `app` is an ASGI app, or
    an import string when `workers > 1` or `reload` (uvicorn's rule)."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        factory=factory,
        workers=workers,
        reload=reload,
        # uvicorn types `http` as a protocol class; any callable that makes one will do.
        http=cast(Any, protocol),
        limit_concurrency=protocol.limits.limit_concurrency,
        timeout_keep_alive=protocol.limits.idle_timeout,
        h11_max_incomplete_event_size=protocol.limits.max_head_size,
        proxy_headers=False,  # S6: forwarded headers count only through trusted_proxies
        log_config=log_config(),
        log_level=log_level,
    )


@dataclass(frozen=True)
class HttpProtocol:
    """What uvicorn calls to make each connection's protocol (its `http=`): the HTTP/1.1
    implementation `name` with the deadlines of `limits`. Picklable, so that it reaches
    worker processes inside uvicorn's Config.

    ValueError: "httptools" when httptools is not installed."""

    name: HttpImplementation = "auto"
    limits: HttpLimits = field(default_factory=HttpLimits)

    def __post_init__(self) -> None:
        if self.name not in HTTP_IMPLEMENTATIONS:
            raise ValueError(f"http must be one of {', '.join(HTTP_IMPLEMENTATIONS)}")
        if self.name == "httptools" and not _has_httptools():
            raise ValueError("httptools is not installed (pip install httptools)")

    def implementation(self) -> Callable[..., asyncio.Protocol]:
        """The protocol class: httptools' for "auto" when httptools is installed, as
        uvicorn's own "auto" chooses."""
        if self.name == "h11" or (self.name == "auto" and not _has_httptools()):
            from ._h11_protocol import H11DeadlineProtocol

            return H11DeadlineProtocol
        from ._httptools_protocol import HttpToolsDeadlineProtocol

        return HttpToolsDeadlineProtocol

    def __call__(self, **kwargs: Any) -> asyncio.Protocol:
        return self.implementation()(self.limits, **kwargs)


def _has_httptools() -> bool:
    return importlib.util.find_spec("httptools") is not None
