"""The HTTP server `bastion serve` and `serving.serve()` run: uvicorn, with deadlines for
slow clients, a concurrency limit, no proxy headers and a redacted access log.

    sock = listen("127.0.0.1", 4111)                  # ListenError: the port is taken
    protocol = HttpProtocol("auto", HttpLimits(header_timeout=10))   # ValueError: no httptools
    run(app, sock=sock, protocol=protocol, graceful_timeout=30)
    run("bastion.serving:child_app", sock=sock, factory=True, workers=4, ...)  # per worker

The stack: uvicorn with httptools' parser on uvloop (dependencies of the default install;
`auto`), falling back to h11 and asyncio's own loop where they cannot be installed (Windows
has no uvloop; PyPy neither). bench/server_stacks.py compares it with uvicorn + h11 and with
granian; granian is faster still, but it parses HTTP in Rust where no protocol class of
ours can set the deadlines below, so it cannot be `bastion serve`'s server.

Stopping (SIGTERM, SIGINT) is a bounded drain: every process stops listening at once (a new
connection is refused; uvicorn's parent of several workers kept its copy of the socket
listening until they had exited, so connections were accepted and then hung), the requests
in progress get `graceful_timeout` seconds, then they are cancelled.

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
import errno
import importlib.util
import logging
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from uvicorn.supervisors.multiprocess import Multiprocess

from ._http_deadlines import HttpLimits
from ._log_redaction import log_config

__all__ = [
    "DEFAULT_GRACEFUL_TIMEOUT",
    "HTTP_IMPLEMENTATIONS",
    "HttpImplementation",
    "HttpLimits",
    "HttpProtocol",
    "ListenError",
    "event_loop",
    "listen",
    "run",
]

HttpImplementation = Literal["auto", "h11", "httptools"]
HTTP_IMPLEMENTATIONS: tuple[HttpImplementation, ...] = ("auto", "h11", "httptools")

# Seconds a stopping server gives the requests in progress before it cancels them.
DEFAULT_GRACEFUL_TIMEOUT = 30

# The exit code uvicorn gives a server that could not start (its STARTUP_FAILURE).
_STARTUP_FAILURE = 3
# What a stopping parent of several workers gives them beyond the drain (the lifespan's
# shut-down, the interpreter's exit) before it kills them.
_EXIT_MARGIN = 5.0

logger = logging.getLogger("uvicorn.error")  # configured by uvicorn's log config


class ListenError(Exception):
    """The address cannot be listened on (taken, not allowed, unknown); one line."""


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port, to hand to `run`: binding first tells a taken port
    before anything else happens (no banner, no database touched). ListenError otherwise."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is in use by another program"
        elif exc.errno == errno.EACCES:
            reason = "permission denied (ports below 1024 need privileges)"
        else:
            reason = exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {where}: {reason}") from None
    sock.set_inheritable(True)  # worker processes serve on it too
    return sock


def event_loop() -> Literal["uvloop", "asyncio"]:
    """uvloop where it is installed (not on Windows or PyPy), else asyncio's own loop."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def run(
    app: Any,
    *,
    sock: socket.socket,
    protocol: HttpProtocol,
    workers: int = 1,
    reload: bool = False,
    factory: bool = False,
    graceful_timeout: int = DEFAULT_GRACEFUL_TIMEOUT,
    log_level: str | None = None,
) -> None:
    """Serve `app` on `sock` (from `listen`) with uvicorn, Bastion's protocol, limits and
    logging. `app` is an ASGI app, or an import string when `workers > 1` or `reload`.

    On SIGTERM or SIGINT the listening socket is closed in every process at once (new
    connections are refused), the requests in progress get `graceful_timeout` seconds to
    finish, then they are cancelled and the lifespan's shut-down runs. SystemExit(3) when
    the app does not start (uvicorn's code)."""
    import uvicorn
    from uvicorn.supervisors import ChangeReload

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        factory=factory,
        workers=workers,
        reload=reload,
        loop=event_loop(),
        # uvicorn types `http` as a protocol class; any callable that makes one will do.
        http=cast(Any, protocol),
        limit_concurrency=protocol.limits.limit_concurrency,
        timeout_keep_alive=protocol.limits.idle_timeout,
        timeout_graceful_shutdown=graceful_timeout,
        h11_max_incomplete_event_size=protocol.limits.max_head_size,
        proxy_headers=False,  # S6: forwarded headers count only through trusted_proxies
        server_header=False,  # as better-auth's Node server: no `server: uvicorn` to fingerprint
        log_config=_log_config(),
        log_level=log_level,
    )
    logger.info(
        "HTTP/1.1: uvicorn with the %s parser on the %s event loop",
        protocol.resolved(),
        config.loop,
    )
    server = uvicorn.Server(config)
    # uvicorn says where it listens only when it binds the socket itself.
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    logger.info("Uvicorn running on %s (Press CTRL+C to quit)", url)
    try:
        if reload:
            ChangeReload(config, target=server.run, sockets=[sock]).run()
        elif workers > 1:
            _DrainingWorkers(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl-C
        pass
    if not server.started and not reload and workers == 1:
        sys.exit(_STARTUP_FAILURE)


class CancelledAtShutdown(logging.Filter):
    """For `uvicorn.error`: a request that outlasted the graceful timeout is cancelled, and
    uvicorn logs that as an application error with a traceback. One line says it instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, asyncio.CancelledError):
            record.msg, record.args = "A request was cancelled: %s", (exc,)
            record.exc_info, record.exc_text = None, None
        return True


def _log_config() -> dict[str, Any]:
    config = log_config()
    config.setdefault("filters", {})["cancelled_at_shutdown"] = {
        "()": f"{__name__}.{CancelledAtShutdown.__qualname__}"
    }
    error = config["loggers"].setdefault("uvicorn.error", {"level": "INFO"})
    error["filters"] = [*error.get("filters", []), "cancelled_at_shutdown"]
    return config


class _DrainingWorkers(Multiprocess):
    """uvicorn's parent of several workers, which on stopping also closes its own copy of
    the listening socket before it signals them. uvicorn's keeps it open until they have
    exited, so the kernel went on accepting connections that no worker would ever read. The
    workers are given the drain plus a margin, then killed."""

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()

    def join_all(self) -> None:
        timeout = self.config.timeout_graceful_shutdown
        deadline = time.monotonic() + (timeout or 0) + _EXIT_MARGIN
        for worker in self.processes:
            worker.process.join(max(deadline - time.monotonic(), 0.1) if timeout else None)
            if worker.process.is_alive():
                logger.warning(
                    "Killing child process [%s]: it outlasted the graceful timeout", worker.pid
                )
                worker.kill()
                worker.process.join()


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
        if self.resolved() == "h11":
            from ._h11_protocol import H11DeadlineProtocol

            return H11DeadlineProtocol
        from ._httptools_protocol import HttpToolsDeadlineProtocol

        return HttpToolsDeadlineProtocol

    def resolved(self) -> Literal["h11", "httptools"]:
        """The parser this protocol uses: "auto" resolved."""
        if self.name == "h11" or (self.name == "auto" and not _has_httptools()):
            return "h11"
        return "httptools"

    def __call__(self, **kwargs: Any) -> asyncio.Protocol:
        return self.implementation()(self.limits, **kwargs)


def _has_httptools() -> bool:
    return importlib.util.find_spec("httptools") is not None
