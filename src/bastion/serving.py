"""What `bastion serve` does with an app: find it, give it a lifespan, run it.

    app = load("myapp:app")                 # LoadError: one line that says what is wrong
    served = serving(app)                   # tables created at start-up, pools closed at the end
    serve(app, port=4111)                   # uvicorn, as `bastion serve` runs it

`load` takes `module:attr` (attr may be dotted). The object is served as it is when it is an
ASGI app: a `Bastion`, an `Identity`, Starlette, FastAPI, anything callable with
`(scope, receive, send)`. A function that takes no arguments is a factory: it is called, and
what it returns is served.

`serving` wraps a `Bastion` or an `Identity` in a `ServedApp`, whose lifespan creates the
missing tables (the Identity's, the memory's) before the app starts and then runs the app's
own start-up and shut-down, closing the auth provider's connections last. Any other ASGI app
is returned unchanged, with its own lifespan. Migrations only add what is missing, but two
processes must not run them at once: with several workers `bastion serve` migrates once, in
the parent, before the workers start (`migrate_once`).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ._http_server import (
    DEFAULT_GRACEFUL_TIMEOUT,
    HttpImplementation,
    HttpLimits,
    HttpProtocol,
    ListenError,
    listen,
    run,
)
from .identity import Identity
from .identity.db import Database, DatabaseError
from .server import Bastion

__all__ = [
    "DEFAULT_TARGET",
    "MIGRATE_ENV",
    "TARGET_ENV",
    "ListenError",
    "LoadError",
    "ServedApp",
    "child_app",
    "load",
    "migrate_once",
    "migrate_tables",
    "serve",
    "serving",
]

logger = logging.getLogger("bastion.serve")

DEFAULT_TARGET = "bastion.standalone:create_app"

# How `bastion serve` tells its worker processes what to serve (see `child_app`).
TARGET_ENV = "BASTION_SERVE_TARGET"
MIGRATE_ENV = "BASTION_SERVE_MIGRATE"


class LoadError(Exception):
    """The app named on the command line cannot be served; the message says why, in one line."""


# -- finding the app ---------------------------------------------------------------------


def load(target: str) -> ASGIApp:
    """The ASGI app that `module:attr` names (a factory's result, when attr is a factory)."""
    module_name, colon, attr = target.partition(":")
    if not colon or not module_name or not attr:
        raise LoadError(f"{target!r} is not MODULE:ATTR (for example myapp:app)")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and _is_prefix(exc.name, module_name):
            raise LoadError(
                f"cannot load {target}: no module named {exc.name!r} (run bastion serve in the "
                "folder that holds it, or add that folder to PYTHONPATH)"
            ) from None
        raise LoadError(f"cannot load {target}: importing {module_name} {_failed(exc)}") from None
    except Exception as exc:  # the user's module failed: say where, in one line
        raise LoadError(f"cannot load {target}: importing {module_name} {_failed(exc)}") from None
    found: Any = module
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise LoadError(
                f"cannot load {target}: {module_name} has no attribute {attr!r}"
            ) from None
    if _is_factory(found):
        try:
            found = found()
        except Exception as exc:
            raise LoadError(f"cannot load {target}: calling {attr}() {_failed(exc)}") from None
    if not callable(found):
        raise LoadError(f"cannot serve {target}: it is a {type(found).__name__}, not an ASGI app")
    app: ASGIApp = found
    return app


def _is_prefix(missing: str, module: str) -> bool:
    """`a` or `a.b` is missing for module `a.b.c`: the module itself cannot be found."""
    return module == missing or module.startswith(missing + ".")


def _is_factory(obj: Any) -> bool:
    """A function or method that takes no arguments (an ASGI app takes three)."""
    if not (inspect.isfunction(obj) or inspect.ismethod(obj)):
        return False
    try:
        inspect.signature(obj).bind()
    except (TypeError, ValueError):
        return False
    return True


def _failed(exc: BaseException) -> str:
    """`failed: ValueError: bad value (myapp.py:12)`: the error and where it was raised."""
    where, text = "", str(exc)
    if isinstance(exc, SyntaxError) and exc.filename:
        where, text = f" ({_short(exc.filename)}:{exc.lineno})", exc.msg
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            where = f" ({_short(frames[-1].filename)}:{frames[-1].lineno})"
    message = text.splitlines()[0] if text else ""
    return f"failed: {type(exc).__name__}{': ' + message if message else ''}{where}"


def _short(filename: str) -> str:
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except ValueError:
        return filename


# -- the lifespan ------------------------------------------------------------------------


async def migrate_tables(app: Any) -> None:
    """Create the missing tables of a Bastion's Identity and memory, or of an Identity."""
    if isinstance(app, ServedApp):
        app = app.app
    if isinstance(app, Identity):
        await app.migrate()
        return
    if not isinstance(app, Bastion):
        return
    if app.identity is not None:
        await app.identity.migrate()
    if app.memory is not None:  # on the Identity's database, its tables are already there
        await app.memory.migrate()


def databases_of(app: Any) -> list[Database]:
    """The databases `bastion serve` migrates for `app` (a Bastion, an Identity, or either
    wrapped by `serving`): the Identity's, with its plugins' tables and the app's
    additional fields, and the memory's when it has its own; none for any other app."""
    if isinstance(app, ServedApp):
        app = app.app
    if isinstance(app, Identity):
        return [app.db]
    if not isinstance(app, Bastion):
        return []
    found = [app.identity.db] if app.identity is not None else []
    if app.memory is not None and all(app.memory.db is not db for db in found):
        found.append(app.memory.db)
    return found


class ServedApp:
    """An ASGI app run inside `lifespan()`: what `serving` returns for a Bastion or an
    Identity. `app` is the wrapped app. A host app that mounts it passes
    `lifespan=lambda _: served.lifespan()`, since mounted apps get no lifespan events."""

    def __init__(
        self, app: ASGIApp, lifespan: Callable[[], AbstractAsyncContextManager[None]]
    ) -> None:
        self.app = app
        self._lifespan = lifespan

    def __repr__(self) -> str:
        return f"<ServedApp {self.app!r}>"

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        return self._lifespan()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await receive()  # lifespan.startup
        started = False
        try:
            async with self._lifespan():
                started = True
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
        except Exception as exc:
            kind = "shutdown" if started else "startup"
            if isinstance(exc, DatabaseError):  # its message is clear and masks passwords
                message = f"cannot start: {exc}" if not started else str(exc)
            else:
                logger.exception("%s failed", kind)
                message = f"{kind} failed: {type(exc).__name__}: {exc}"
            await send({"type": f"lifespan.{kind}.failed", "message": message})
            return
        await send({"type": "lifespan.shutdown.complete"})


def serving(app: ASGIApp, *, migrate: bool = True) -> ASGIApp:
    """`app` with `bastion serve`'s lifespan when it is a Bastion or an Identity (tables
    created at start-up unless `migrate=False`); any other app unchanged. A ServedApp is
    wrapped again, so that `migrate` is the one given here."""
    if isinstance(app, ServedApp):
        app = app.app
    if isinstance(app, Bastion):
        return ServedApp(app, lambda: _bastion_lifespan(app, migrate))
    if isinstance(app, Identity):
        return ServedApp(app, lambda: _identity_lifespan(app, migrate))
    return app


@asynccontextmanager
async def _bastion_lifespan(app: Bastion, migrate: bool) -> AsyncIterator[None]:
    try:
        if migrate:
            await migrate_tables(app)
        await app.startup()
    except BaseException:
        await app.shutdown()  # the pools the migration opened
        raise
    try:
        yield
    finally:
        await app.shutdown()


@asynccontextmanager
async def _identity_lifespan(identity: Identity, migrate: bool) -> AsyncIterator[None]:
    try:
        if migrate:
            await identity.migrate()
        yield
    finally:
        await identity.close()


# -- several processes -------------------------------------------------------------------


def migrate_once(app: ASGIApp) -> None:
    """Create the missing tables in this process, in an event loop of its own, and close
    the connections: the parent of several workers does this before they start."""

    async def run() -> None:
        inner = app.app if isinstance(app, ServedApp) else app
        try:
            await migrate_tables(inner)
        finally:  # close only the pools: the app never started here
            if isinstance(inner, Bastion):
                await inner.shutdown()
            elif isinstance(inner, Identity):
                await inner.close()

    asyncio.run(run())


def child_app() -> ASGIApp:
    """The factory each worker process (or each `--reload` restart) imports: the target in
    $BASTION_SERVE_TARGET (empty: the embedded default), migrated when $BASTION_SERVE_MIGRATE
    is 1. Set by `bastion serve`; not meant to be called by hand."""
    target = os.environ.get(TARGET_ENV) or DEFAULT_TARGET
    return serving(load(target), migrate=os.environ.get(MIGRATE_ENV) == "1")


# -- running -----------------------------------------------------------------------------


_DEFAULT_LIMITS = HttpLimits()


def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    migrate: bool = True,
    header_timeout: int = _DEFAULT_LIMITS.header_timeout,
    idle_timeout: int = _DEFAULT_LIMITS.idle_timeout,
    body_timeout: int = _DEFAULT_LIMITS.body_timeout,
    limit_concurrency: int | None = _DEFAULT_LIMITS.limit_concurrency,
    http: HttpImplementation = "auto",
    graceful_timeout: int = DEFAULT_GRACEFUL_TIMEOUT,
) -> None:
    """Serve `app` with uvicorn in this process, as `bastion serve MODULE:ATTR` does (port:
    $PORT, else 4111). For `if __name__ == "__main__": serve(app)` in a script.

    Timeouts are in seconds: the request head must arrive within `header_timeout` of the
    connection opening or of the previous request's end, its body within `body_timeout` of
    the head (else 408); a connection silent for `idle_timeout` between requests is closed.
    Past `limit_concurrency` open connections or requests in progress (per process), a
    request gets 503. `http`: "h11", "httptools", or "auto" (httptools when installed). On
    SIGTERM or SIGINT it stops listening at once and gives the requests in progress
    `graceful_timeout` seconds before it cancels them.
    ValueError: a limit that is not a positive whole number, or a missing httptools.
    ListenError: the port is taken, or may not be used."""
    protocol = HttpProtocol(
        http,
        HttpLimits(
            header_timeout=header_timeout,
            idle_timeout=idle_timeout,
            body_timeout=body_timeout,
            limit_concurrency=limit_concurrency,
        ),
    )
    port = port if port is not None else int(os.environ.get("PORT", "4111"))
    sock = listen(host, port)
    run(
        serving(app, migrate=migrate),
        sock=sock,
        protocol=protocol,
        graceful_timeout=graceful_timeout,
        log_level="info",
    )
