"""Self-hosted sessions: Bastion's own identity server in front of an agent.

Users sign up with email and password at /api/auth, or sign in with GitHub or Google when
their OAuth client is set (GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET, GOOGLE_CLIENT_ID and
GOOGLE_CLIENT_SECRET; docs/social.md). The agent API under /api accepts their session — the
cookie in a browser, or `Authorization: Bearer <session token>` from a script
(examples/sessions_client.py) — and only once their email address is verified: by the link
of the verification mail, or by GitHub or Google saying they verified it.

    python examples/sessions.py                     # http://127.0.0.1:4111, ./bastion.db
    bastion serve examples.sessions:app             # the same, from the repository's root

Mails (the verification link) are printed on the console unless SMTP_FROM is set
(SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_TLS). Set BASTION_SECRET (from
`bastion secret`) for anything but a trial, and BETTER_AUTH_URL to the public URL.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from bastion.auth import RequestContext
from bastion.auth import IdentityAuth
from bastion.identity import Identity, bearer
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


logger = logging.getLogger("examples.sessions")

# better-auth's `socialProviders`, each on when its variables are: id -> (name, prefix).
SOCIAL_PROVIDERS = {"github": ("GitHub", "GITHUB"), "google": ("Google", "GOOGLE")}


def social_sign_in(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`social_providers` from the environment: GitHub from GITHUB_CLIENT_ID and
    GITHUB_CLIENT_SECRET (a GitHub OAuth app whose callback URL is
    <base URL>/api/auth/callback/github), Google from GOOGLE_CLIENT_ID and
    GOOGLE_CLIENT_SECRET (a "Web application" OAuth client whose authorized redirect URI is
    <base URL>/api/auth/callback/google). Half a pair is a mistake, said at start-up."""
    providers: dict[str, dict[str, str]] = {}
    for provider_id, (name, prefix) in SOCIAL_PROVIDERS.items():
        client_id = env.get(f"{prefix}_CLIENT_ID")
        client_secret = env.get(f"{prefix}_CLIENT_SECRET")
        if client_id and client_secret:
            providers[provider_id] = {"client_id": client_id, "client_secret": client_secret}
        elif client_id or client_secret:
            raise ValueError(
                f"set both {prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET for {name} sign-in"
            )
    return providers


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
    social = social_sign_in(env)
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
        # GitHub and Google, when their OAuth clients are set (docs/social.md).
        social_providers=social,
    )
    if social:  # one line at start-up (a warning: what Python prints with no logging set up)
        logger.warning("social sign-in: %s", ", ".join(SOCIAL_PROVIDERS[p][0] for p in social))
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
