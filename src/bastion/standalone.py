"""The embedded default that `bastion serve` runs with no app given.

An Identity with email and password on the SQLite default (or $DATABASE_URL), mounted at
/api/auth, its tables migrated at start-up, mails printed to the console unless SMTP is
configured ($SMTP_FROM), sessions in Redis when $REDIS_URL is set. The agent server joins
it in a later release.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from .identity import Identity, bearer
from .identity.email import (
    ConsoleMailer,
    Mailer,
    SMTPMailer,
    reset_password_sender,
    verification_sender,
)
from .identity.storage import RedisStorage

__all__ = ["create_app", "default_identity"]


def default_identity(env: Mapping[str, str] = os.environ) -> Identity:
    mailer: Mailer = SMTPMailer.from_env(env) if env.get("SMTP_FROM") else ConsoleMailer()
    port = env.get("PORT", "4111")
    return Identity(
        env=env,
        base_url=env.get("BETTER_AUTH_URL") or f"http://127.0.0.1:{port}",
        trusted_origins=[f"http://localhost:{port}"],
        email_and_password={"enabled": True, "send_reset_password": reset_password_sender(mailer)},
        email_verification={"send_verification_email": verification_sender(mailer)},
        plugins=[bearer()],
        # Sessions, verification values and rate limits shared by every process.
        secondary_storage=RedisStorage(env["REDIS_URL"]) if env.get("REDIS_URL") else None,
    )


def create_app() -> Starlette:
    """The ASGI app of `bastion serve` (a factory, so workers and --reload can import it)."""
    identity = default_identity()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await identity.migrate()
        yield
        await identity.close()

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/health", health), Mount(identity.options.base_path, identity.app)],
        lifespan=lifespan,
    )
