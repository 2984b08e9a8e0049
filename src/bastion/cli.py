"""The `bastion` command: migrate the database, make a secret, and (later) serve."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from . import __version__
from .identity.db import Database, DatabaseError, MigrationPlan, migrate, plan_migration

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
        async with Database(database_url) as db:
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
