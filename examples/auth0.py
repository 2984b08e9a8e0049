"""Auth0 access tokens in front of an agent: users sign in with Auth0, the agent server checks
their token and what it allows.

    AUTH0_DOMAIN=tenant.eu.auth0.com AUTH0_AUDIENCE=https://api.example.com python examples/auth0.py
    AUTH0_DOMAIN=... AUTH0_AUDIENCE=... bastion serve examples.auth0:create_app

`create_app` is a factory (served as such by `bastion serve`) because the provider needs its
tenant: without AUTH0_DOMAIN and AUTH0_AUDIENCE it stops with a message naming them. For an
issuer that is not at https://{domain}/ (a local test issuer, a proxy), AUTH0_ISSUER and
AUTH0_JWKS_URI replace the URLs derived from the domain.

Clients send `Authorization: Bearer <access token>`, an Auth0 access token for the API
whose identifier is AUTH0_AUDIENCE, e.g. from the client-credentials grant:

    curl -s https://$AUTH0_DOMAIN/oauth/token -d grant_type=client_credentials \\
      -d client_id=... -d client_secret=... -d audience=$AUTH0_AUDIENCE
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from bastion.auth import Auth0Auth, RequestContext, token_permissions
from bastion.server import Agent, Bastion, tool
from bastion.server import LocalModel
from bastion.server.memory import Memory

# Custom claims in Auth0 tokens must be namespaced with a URL. An Action adds the user's
# roles there:  api.accessToken.setCustomClaim("https://example.com/roles", roles)
NAMESPACE = "https://example.com/"
ROLES_CLAIM = NAMESPACE + "roles"

# What each role may do on this API. Auth0's own RBAC ("Add Permissions in the Access Token")
# puts permissions straight into the `permissions` claim; both are honoured.
ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = {
    "admin": frozenset({"read:agents", "run:agents"}),
    "member": frozenset({"read:agents", "run:agents"}),
    "viewer": frozenset({"read:agents"}),
}


def permissions(claims: Mapping[str, Any]) -> frozenset[str]:
    """The permissions a token grants: its `permissions` claim, plus those of its roles."""
    granted = set(token_permissions(claims))
    roles = claims.get(ROLES_CLAIM)
    for role in roles if isinstance(roles, list) else []:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


async def authorize_user(claims: Any, request: Any) -> bool:
    """Reading the API needs `read:agents`; running an agent (any POST) `run:agents`.

    Replaces Auth0Auth's default check (a subject), so it requires one too. False gives 403
    {"error": "Access denied"}."""
    needed = "read:agents" if request.method in ("GET", "HEAD") else "run:agents"
    return bool(claims.get("sub")) and needed in permissions(claims)


@tool
async def whoami(context: RequestContext) -> dict[str, Any]:
    """Who is calling: the token's subject and what it may do."""
    claims = context.user
    return {"sub": claims["sub"], "permissions": sorted(permissions(claims))}


assistant = Agent(
    name="Assistant",
    instructions="Tell callers who they are to this API.",
    # A deterministic stand-in: "who am i" calls whoami. Use OpenAIModel for a real one.
    model=LocalModel(rules=[(r"\bwho\s*am\s*i\b", "whoami")]),
    tools=[whoami],
)


def create_app(env: Mapping[str, str] = os.environ) -> Bastion:
    auth = Auth0Auth(
        domain=env.get("AUTH0_DOMAIN"),
        audience=env.get("AUTH0_AUDIENCE"),
        issuer=env.get("AUTH0_ISSUER") or None,
        jwks_uri=env.get("AUTH0_JWKS_URI") or None,
        authorize_user=authorize_user,
    )
    # Each caller's conversation threads, kept under their `sub` ($DATABASE_URL, else
    # sqlite:///bastion.db; the tables are created at start-up by `bastion serve`).
    memory = Memory(env.get("DATABASE_URL") or "sqlite:///bastion.db")
    return Bastion(agents=[assistant], auth=auth, memory=memory)


if __name__ == "__main__":
    from bastion.serving import serve

    serve(create_app())
