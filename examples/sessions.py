"""Self-hosted sessions: Bastion's own identity server in front of an agent.

Users sign up with email and password (GitHub sign-in is configured below, for when it lands)
at /api/auth; the agent API under /api accepts their session — the cookie in a browser, or
`Authorization: Bearer <session token>` from a script (examples/sessions_client.py) — and
only once they have verified their email address.

    python examples/sessions.py                     # http://127.0.0.1:4111, ./bastion.db
    bastion serve examples.sessions:app             # the same, from the repository's root

Mails (the verification link) are printed on the console unless SMTP_FROM is set
(SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_TLS). Set BASTION_SECRET (from
`bastion secret`) for anything but a trial, and BETTER_AUTH_URL to the public URL.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from typing import Any

from bastion.auth import RequestContext
from bastion.auth import IdentityAuth
from bastion.identity import Identity, IdentityOptions, bearer
from bastion.identity import (
    ConsoleMailer,
    Mailer,
    SMTPMailer,
    reset_password_sender,
    verification_sender,
)
from bastion.server import Agent, Bastion, tool
from bastion.server import LocalModel
from bastion.server.memory import Memory, memory_plugin


async def verified_email_only(user: Any, request: Any) -> bool:
    """`authorize_user`: a live session of a user who has verified their email address.

    Replaces IdentityAuth's default (a session and a user), so it checks both itself. False
    gives 403 {"error": "Access denied"}; the auth routes at /api/auth stay open, so an
    unverified user can still ask for a new verification mail."""
    session, person = user.get("session") or {}, user.get("user") or {}
    verified = person.get("emailVerified") is True
    return bool(session.get("id")) and bool(person.get("id")) and verified


def github_sign_in(env: Mapping[str, str]) -> dict[str, Any]:
    """better-auth's `socialProviders.github`, from GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET
    (a GitHub OAuth app whose callback URL is <base URL>/api/auth/callback/github).

    bastion.identity has no social sign-in yet: it lands with the social sign-in issue, as
    `Identity(social_providers=...)`. Until then GitHub sign-in is off, and says so when the
    keys are set, rather than pretending to work."""
    client_id, client_secret = env.get("GITHUB_CLIENT_ID"), env.get("GITHUB_CLIENT_SECRET")
    if not (client_id and client_secret):
        return {}
    if "social_providers" not in {f.name for f in dataclasses.fields(IdentityOptions)}:
        warnings.warn(
            "GITHUB_CLIENT_ID is set, but this version of Bastion has no social sign-in: "
            "GitHub sign-in is off",
            stacklevel=2,
        )
        return {}
    github = {"client_id": client_id, "client_secret": client_secret}
    return {"social_providers": {"github": github}}


@tool
async def my_profile(context: RequestContext) -> dict[str, Any]:
    """The signed-in user's name and email address."""
    user = context.user["user"]
    return {"name": user["name"], "email": user["email"], "verified": user["emailVerified"]}


assistant = Agent(
    name="Assistant",
    instructions="Answer questions about the signed-in user's account.",
    # A deterministic stand-in: "who am i" calls my_profile. Use OpenAIModel for a real one.
    model=LocalModel(rules=[(r"\bwho\s*am\s*i\b", "my_profile")]),
    tools=[my_profile],
)


def create_app(env: Mapping[str, str] = os.environ) -> Bastion:
    mailer: Mailer = SMTPMailer.from_env(env) if env.get("SMTP_FROM") else ConsoleMailer()
    identity = Identity(
        env=env,  # BASTION_SECRET, BETTER_AUTH_URL
        database=env.get("DATABASE_URL") or "sqlite:///bastion.db",
        email_and_password={"enabled": True, "send_reset_password": reset_password_sender(mailer)},
        email_verification={
            "send_verification_email": verification_sender(mailer),
            "send_on_sign_up": True,
        },
        # bearer: `Authorization: Bearer <session token>` is a session, like the cookie.
        # memory_plugin: conversation threads in the same database as the users.
        plugins=[bearer(), memory_plugin()],
        **github_sign_in(env),
    )
    return Bastion(
        agents=[assistant],
        # Mounts the Identity at /api/auth and checks every /api request's session.
        auth=IdentityAuth(identity, authorize_user=verified_email_only),
        # Each user's conversation threads (/api/memory/threads), beside the users.
        memory=Memory(identity.db),
    )


app = create_app()

if __name__ == "__main__":
    from bastion.serving import serve

    serve(app)  # creates the tables at start-up, as `bastion serve` does
