"""The embedded default that `bastion serve` runs when no app is given.

One process, one SQLite file ($DATABASE_URL, else `sqlite:///bastion.db`):

- an Identity at /api/auth with email and password, bearer tokens (`set-auth-token`) and the
  memory tables, GitHub and Google sign-in when $GITHUB_CLIENT_ID/$GITHUB_CLIENT_SECRET and
  $GOOGLE_CLIENT_ID/$GOOGLE_CLIENT_SECRET are set (`social_providers_from_env`), mails
  printed to the console unless SMTP is configured ($SMTP_FROM), sessions in Redis when
  $REDIS_URL is set; without $BASTION_SECRET, a random secret made at the first start and
  kept beside the SQLite file (`bastion.db.secret`); rate limits on sign-in, sign-up,
  password and email changes and their mails only (per client address, and per account:
  `bastion.identity.ratelimit`), in the database or in Redis with $REDIS_URL;
- the agent server under /api, protected by `IdentityAuth(identity)`: the session cookie or
  `Authorization: Bearer <token>`;
- the web pages (bastion.web, docs/web.md): http://127.0.0.1:4111/ signs in, and the mails'
  links land on them; two-factor authentication (authenticator app, or a code by mail);
- one demo agent, `assistant`, on the deterministic `LocalModel` (no API key), with two tools:
  `whoami` (the signed-in user, read from the request context) and `get_time`; with
  $OPENAI_API_KEY set, on `OpenAIModel` instead ($OPENAI_MODEL, default gpt-4o-mini, at
  $OPENAI_BASE_URL, default OpenAI's: any OpenAI-compatible server);
- CORS for the Identity's trusted origins (`cors="trusted"`): http://localhost:$PORT, the
  base URL's origin and $BETTER_AUTH_TRUSTED_ORIGINS (comma-separated exact origins), so a
  front end on another port, e.g. Vite's http://localhost:5173, may sign in and call /api.

The tables are created at start-up. Try it (the token is the `set-auth-token` header):

    curl -si localhost:4111/api/auth/sign-up/email -H 'content-type: application/json' \\
      -d '{"name":"Ada","email":"ada@example.com","password":"correct-horse"}'
    curl -s localhost:4111/api/agents/assistant/generate -H "authorization: Bearer $TOKEN" \\
      -H 'content-type: application/json' -d '{"messages":"who am i?"}'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .auth.context import RequestContext
from .auth.providers.identity import IdentityAuth
from .identity import Identity, bearer
from .identity.db import DEFAULT_DATABASE_URL
from .identity.email import (
    ConsoleMailer,
    EmailMessage,
    Mailer,
    SMTPMailer,
    reset_password_sender,
    verification_sender,
)
from .identity.plugins.two_factor import TwoFactorOTP, two_factor
from .identity.storage import RedisStorage
from .server import Agent, Bastion, tool
from .server.local import LocalModel
from .server.memory import Memory, memory_plugin
from .server.models import Model
from .server.openai import OpenAIModel
from .serving import ServedApp, serving
from .web import Pages, to_pages

__all__ = [
    "create_app",
    "default_identity",
    "demo_agent",
    "demo_model",
    "get_time",
    "social_providers_from_env",
    "two_factor_code_sender",
    "whoami",
]

# The social providers the embedded default turns on from the environment: id, the name a
# message gives it, and the prefix of its two variables.
_SOCIAL_FROM_ENV = (("github", "GitHub", "GITHUB"), ("google", "Google", "GOOGLE"))


def social_providers_from_env(env: Mapping[str, str] = os.environ) -> dict[str, dict[str, str]]:
    """`social_providers` from the environment: GitHub with GITHUB_CLIENT_ID and
    GITHUB_CLIENT_SECRET, Google with GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET. A provider is
    on when both of its variables are set; ValueError (one line, naming the variable) when
    only one is: a half-configured provider would fail at its first sign-in instead."""
    providers: dict[str, dict[str, str]] = {}
    for provider_id, name, prefix in _SOCIAL_FROM_ENV:
        id_name, secret_name = f"{prefix}_CLIENT_ID", f"{prefix}_CLIENT_SECRET"
        client_id, client_secret = env.get(id_name, "").strip(), env.get(secret_name, "").strip()
        if client_id and client_secret:
            providers[provider_id] = {"client_id": client_id, "client_secret": client_secret}
        elif client_id or client_secret:
            given, missing = (id_name, secret_name) if client_id else (secret_name, id_name)
            raise ValueError(
                f"{given} is set but {missing} is not: set both for {name} sign-in, or neither"
            )
    return providers


def default_identity(env: Mapping[str, str] = os.environ) -> Identity:
    mailer: Mailer = SMTPMailer.from_env(env) if env.get("SMTP_FROM") else ConsoleMailer()
    port = env.get("PORT", "4111")
    return Identity(
        env=env,
        database=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        base_url=env.get("BETTER_AUTH_URL") or f"http://127.0.0.1:{port}",
        trusted_origins=[f"http://localhost:{port}"],
        # The mails' links land on the pages (/verify-email, /reset-password).
        email_and_password={
            "enabled": True,
            "send_reset_password": to_pages(reset_password_sender(mailer)),
        },
        email_verification={
            "send_verification_email": to_pages(verification_sender(mailer)),
            "send_on_sign_up": True,
        },
        # GitHub and Google sign-in, when their client ids and secrets are set.
        social_providers=social_providers_from_env(env),
        # The memory tables live beside the users, in the same database and pool.
        plugins=[
            bearer(),
            memory_plugin(),
            two_factor(otp={"send_otp": two_factor_code_sender(mailer)}),
        ],
        # Sessions, verification values and rate limits shared by every process.
        secondary_storage=RedisStorage(env["REDIS_URL"]) if env.get("REDIS_URL") else None,
        # Password guessing and mail flooding are limited out of the box, other paths not
        # (better-auth limits only in production). Counted in Redis with REDIS_URL, else in
        # the database: every worker of `bastion serve --workers N` shares the counts.
        rate_limit={
            "enabled": True,
            "storage": "secondary-storage" if env.get("REDIS_URL") else "database",
            "declared_only": True,
        },
    )


def two_factor_code_sender(mailer: Mailer, app_name: str = "Bastion") -> Any:
    """The two-factor plugin's `send_otp`: the sign-in code, by mail."""

    async def send(message: TwoFactorOTP, request: Any = None) -> None:
        text = (
            f"Your {app_name} sign-in code is {message.otp}\n\n"
            "It works once, for a few minutes. If you did not try to sign in, change your "
            f"password.\n\n{app_name}\n"
        )
        email = str(message.user["email"])
        await mailer.send(EmailMessage(to=email, subject=f"{app_name} sign-in code", text=text))

    return send


@tool
async def whoami(context: RequestContext) -> dict[str, Any]:
    """Who is asking: the signed-in user's id, name and email."""
    user = context.user
    # An Identity session is {"session", "user"}; a JWT provider's user is the claims.
    if isinstance(user, Mapping) and isinstance(user.get("user"), Mapping):
        user = user["user"]
    if not isinstance(user, Mapping):
        return {"signedIn": False}
    return {
        "id": user.get("id") or user.get("sub"),
        "name": user.get("name"),
        "email": user.get("email"),
    }


@tool
def get_time() -> str:
    """The current date and time in UTC, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


#: The OpenAI model of the demo agent when $OPENAI_API_KEY is set and $OPENAI_MODEL is not.
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


def demo_model(env: Mapping[str, str] = os.environ) -> Model:
    """With $OPENAI_API_KEY: `OpenAIModel` ($OPENAI_MODEL at $OPENAI_BASE_URL). Otherwise
    `LocalModel`: "who am i" calls `whoami`, "what time is it" `get_time`, `use <tool>
    {json}` that tool, and anything else is echoed."""
    if env.get("OPENAI_API_KEY", "").strip():
        return OpenAIModel(env.get("OPENAI_MODEL", "").strip() or DEFAULT_OPENAI_MODEL, env=env)
    return LocalModel(
        name="demo",
        rules=[(r"\bwho\s*am\s*i\b", "whoami"), (r"\b(time|date)\b", "get_time")],
    )


def demo_agent(model: Model | None = None) -> Agent:
    """`assistant`, with the tools `whoami` and `get_time`, on `model` (default: the
    `LocalModel` of `demo_model`, whatever the environment says)."""
    if model is None:
        model = demo_model({})
    return Agent(
        name="Assistant",
        instructions="Bastion's demo assistant: says who you are and what time it is.",
        model=model,
        tools=[whoami, get_time],
    )


def create_app(env: Mapping[str, str] = os.environ) -> ServedApp:
    """The app of `bastion serve` without arguments; `.app` is the `Bastion`."""
    identity = default_identity(env)
    app = Bastion(
        agents=[demo_agent(demo_model(env))],
        tools=[whoami, get_time],
        auth=IdentityAuth(identity),
        memory=Memory(identity.db),  # threads per user, in the identity's database
        ui=Pages(),  # sign-in, account and playground pages at /
        # A page on another origin the Identity trusts may sign in and call /api.
        cors="trusted",
    )
    served = serving(app)
    assert isinstance(served, ServedApp)
    return served
