"""The `bastion` command: serve, migrate the database, make a secret."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from ._http_server import (
    DEFAULT_GRACEFUL_TIMEOUT,
    HTTP_IMPLEMENTATIONS,
    HttpImplementation,
    HttpLimits,
    HttpProtocol,
    ListenError,
    listen,
)
from .identity.db import (
    CORE_SCHEMA,
    Database,
    DatabaseError,
    MigrationPlan,
    migrate,
    parse_database_url,
    plan_migration,
)
from .identity.ratelimit import RATE_LIMIT_SCHEMA
from .server.memory import MEMORY_SCHEMA

T = TypeVar("T")

_LIMITS = HttpLimits()  # the defaults of `bastion serve`'s limits
_SECONDS = click.IntRange(min=1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bastion")
def main() -> None:
    """Bastion: self-hosted authentication and access control for AI-agent servers."""


@main.command("migrate")
@click.argument("app", required=False, metavar="[MODULE:ATTR]")
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    help="Database URL of the embedded default (default: $DATABASE_URL, else "
    "sqlite:///bastion.db); an app names its own.",
)
@click.option("--sql", "print_sql", is_flag=True, help="Print the SQL instead of running it.")
def migrate_command(app: str | None, database_url: str | None, print_sql: bool) -> None:
    """Create the missing tables, columns and indexes. Never drops or alters anything.

    With MODULE:ATTR, the app is loaded as `bastion serve` loads it, and the schema of its
    Identity (core, plugins, additional fields) and memory is migrated on the databases
    the app names. Without it, the embedded default's tables on --database."""
    from . import serving

    if app is not None and database_url is not None:
        click.echo("error: --database is for the embedded default; an app names its own", err=True)
        raise SystemExit(2)
    app_databases: list[Database] = []
    if app is not None:
        sys.path.insert(0, os.getcwd())  # as serve: the module is found from where you stand
        try:
            app_databases = serving.databases_of(serving.load(app))
        except (serving.LoadError, DatabaseError, ValueError) as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None
        if not app_databases:
            click.echo(
                f"error: {app} is not a Bastion or an Identity: no schema to migrate", err=True
            )
            raise SystemExit(1)

    async def run() -> MigrationPlan:
        # The embedded default creates the identity, memory and rate-limit tables at start-up.
        databases = app_databases or [
            Database(
                database_url, schema=CORE_SCHEMA.extend(MEMORY_SCHEMA).extend(RATE_LIMIT_SCHEMA)
            )
        ]
        plan = MigrationPlan()
        try:
            for db in databases:
                target = db
                if print_sql and _missing_sqlite_file(db.url.text):
                    # Opening it would create it: plan against an empty database instead.
                    target = Database("sqlite://", schema=db.schema)
                try:
                    step = await (plan_migration(target) if print_sql else migrate(target))
                finally:
                    if target is not db:
                        await target.close()
                for name in ("created_tables", "added_columns", "created_indexes"):
                    getattr(plan, name).extend(getattr(step, name))
                plan.statements.extend(step.statements)
                plan.warnings.extend(step.warnings)
                plan.unsafe.extend(step.unsafe)
        finally:
            for db in databases:
                await db.close()
        return plan

    plan = _run(run)
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    if print_sql:
        for statement in plan.statements:
            click.echo(f"{statement};")
        for problem in plan.unsafe:
            click.echo(f"error: {problem}", err=True)
        if plan.unsafe:
            raise SystemExit(1)
        if plan.empty:
            click.echo(plan.summary(), err=True)
        return
    click.echo(plan.summary() if plan.empty else f"Done: {plan.summary()}.")


@main.command("serve")
@click.argument("app", required=False, metavar="[MODULE:ATTR]")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: $PORT, else 4111.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Create the missing tables of the Identity and memory at start-up.",
)
@click.option(
    "--header-timeout",
    type=_SECONDS,
    default=_LIMITS.header_timeout,
    show_default=True,
    help="Seconds for a request head to arrive, from the connection opening or the end of "
    "the previous request; then the connection is closed.",
)
@click.option(
    "--idle-timeout",
    type=_SECONDS,
    default=_LIMITS.idle_timeout,
    show_default=True,
    help="Seconds a connection may stay silent between requests before it is closed.",
)
@click.option(
    "--body-timeout",
    type=_SECONDS,
    default=_LIMITS.body_timeout,
    show_default=True,
    help="Seconds for a request body to arrive, from the end of its head; then 408.",
)
@click.option(
    "--limit-concurrency",
    type=click.IntRange(min=1),
    default=_LIMITS.limit_concurrency,
    show_default=True,
    help="Open connections and requests in progress per process; past that, 503.",
)
@click.option(
    "--http",
    type=click.Choice(HTTP_IMPLEMENTATIONS),
    default="auto",
    show_default=True,
    help="HTTP/1.1 parser (auto: httptools when installed, else h11).",
)
@click.option(
    "--graceful-timeout",
    type=click.IntRange(min=0),
    default=DEFAULT_GRACEFUL_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="On SIGTERM or Ctrl-C: stop accepting connections at once, give the requests in "
    "progress this long, then cancel them and exit.",
)
def serve_command(
    app: str | None,
    host: str,
    port: int | None,
    workers: int,
    reload: bool,
    migrate: bool,
    header_timeout: int,
    idle_timeout: int,
    body_timeout: int,
    limit_concurrency: int,
    http: HttpImplementation,
    graceful_timeout: int,
) -> None:
    """Serve MODULE:ATTR, or the embedded default: an Identity with email and password at
    /api/auth and a demo agent under /api, on SQLite ($DATABASE_URL), at
    http://127.0.0.1:4111. Tables are created at start-up.

    MODULE is imported from the current folder; ATTR is a `Bastion`, an `Identity`, any
    ASGI app, or a function without arguments that returns one."""
    from . import serving
    from ._http_server import run
    from .standalone import create_app

    port = port if port is not None else int(os.environ.get("PORT", "4111"))
    try:  # before anything else: a taken port must not cost a banner or a database
        sock = listen(host, port)
    except ListenError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    os.environ["PORT"] = str(port)  # the default app's links name the port it serves on
    # As uvicorn's own command does: the user's module is found from where they stand.
    sys.path.insert(0, os.getcwd())
    target = app or serving.DEFAULT_TARGET
    try:
        protocol = HttpProtocol(  # ValueError: --http httptools without httptools
            http,
            HttpLimits(
                header_timeout=header_timeout,
                idle_timeout=idle_timeout,
                body_timeout=body_timeout,
                limit_concurrency=limit_concurrency,
            ),
        )
        loaded = serving.load(app) if app else create_app()
        if workers > 1 and not reload and migrate:
            serving.migrate_once(loaded)  # once, before the workers start
    except (serving.LoadError, DatabaseError, ValueError) as exc:  # a bad option, secret, URL
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    if app is None:
        click.echo(
            f"Bastion: the demo agent at http://{host}:{port}/api/agents, "
            f"sign-up at http://{host}:{port}/api/auth/sign-up/email",
            err=True,
        )
        social = _social_sign_in(loaded)
        if social:
            click.echo(social, err=True)
    if workers == 1 and not reload:
        served = serving.serving(loaded, migrate=migrate)
        run(served, sock=sock, protocol=protocol, graceful_timeout=graceful_timeout)
        return
    # Other processes import the app themselves: tell them what, and whether to migrate
    # (with --reload one process runs at a time, so it migrates at each restart). The
    # protocol and its limits reach them inside uvicorn's Config.
    os.environ[serving.TARGET_ENV] = target
    os.environ[serving.MIGRATE_ENV] = "1" if reload and migrate else "0"
    run(
        "bastion.serving:child_app",
        factory=True,
        sock=sock,
        protocol=protocol,
        workers=workers,
        reload=reload,
        graceful_timeout=graceful_timeout,
    )


@main.command("secret")
def secret_command() -> None:
    """Print a new random secret for BASTION_SECRET (32 bytes, hex)."""
    click.echo(secrets.token_hex(32))


def _social_sign_in(app: Any) -> str | None:
    """The embedded default's social providers ($GITHUB_CLIENT_ID, …) and the callback URL
    each must have registered at the provider, in one line; None when there are none."""
    from .server import Bastion
    from .serving import ServedApp

    bastion = app.app if isinstance(app, ServedApp) else app
    identity = bastion.identity if isinstance(bastion, Bastion) else None
    if identity is None or not identity.context.social_providers:
        return None
    base = f"{identity.options.base_url or ''}{identity.options.base_path}"
    providers = identity.context.social_providers.values()
    names = ", ".join(p.name or p.id for p in providers)
    urls = [f"{base}/callback/{p.id}" for p in providers]
    what = "callback URL" if len(urls) == 1 else "callback URLs"
    return f"Bastion: sign-in with {names} ({what} to register: {', '.join(urls)})"


def _missing_sqlite_file(database_url: str | None) -> bool:
    """The URL names a SQLite file that does not exist (yet). InvalidDatabaseURL as
    `Database` raises it."""
    url = parse_database_url(database_url)
    if url.dialect != "sqlite" or url.memory or not url.url.database:
        return False
    return not Path(url.url.database).expanduser().exists()


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; a database problem becomes one line on stderr and exit code 1."""
    try:
        return asyncio.run(make())
    except DatabaseError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
