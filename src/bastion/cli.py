"""The `bastion` command: migrate the database, make a secret, and (later) serve."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from . import __version__
from .identity.db import (
    CORE_SCHEMA,
    Database,
    DatabaseError,
    MigrationPlan,
    migrate,
    plan_migration,
)
from .server.memory import MEMORY_SCHEMA

T = TypeVar("T")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bastion")
def main() -> None:
    """Bastion: self-hosted authentication and access control for AI-agent servers."""


@main.command("migrate")
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    help="Database URL (default: $DATABASE_URL, else sqlite:///bastion.db).",
)
@click.option("--sql", "print_sql", is_flag=True, help="Print the SQL instead of running it.")
def migrate_command(database_url: str | None, print_sql: bool) -> None:
    """Create the missing tables, columns and indexes. Never drops or alters anything."""

    async def run() -> MigrationPlan:
        async with Database(database_url, schema=CORE_SCHEMA.extend(MEMORY_SCHEMA)) as db:
            if print_sql:
                return await plan_migration(db)
            return await migrate(db)

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
def serve_command(app: str | None, host: str, port: int | None, workers: int, reload: bool) -> None:
    """Serve APP (an ASGI app such as `Identity(...).app`), or the embedded default: the
    identity server on SQLite with email and password, at http://127.0.0.1:4111/api/auth."""
    import uvicorn

    port = port if port is not None else int(os.environ.get("PORT", "4111"))
    os.environ["PORT"] = str(port)  # the default app's links name the port it serves on
    target = app or "bastion.standalone:create_app"
    try:
        uvicorn.run(
            target,
            factory=app is None,
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            log_level="info",
        )
    except (ImportError, AttributeError, ValueError) as exc:
        click.echo(f"error: cannot load {target}: {exc}", err=True)
        raise SystemExit(1) from None


@main.command("secret")
def secret_command() -> None:
    """Print a new random secret for BASTION_SECRET (32 bytes, hex)."""
    click.echo(secrets.token_hex(32))


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; a database problem becomes one line on stderr and exit code 1."""
    try:
        return asyncio.run(make())
    except DatabaseError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
