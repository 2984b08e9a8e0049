"""An agent server whose permissions follow organization roles: the worked example of
docs/organizations.md (members run the `support` agent; only admins call the `refund`
tool), signed-in users with their own cookie jars, and two organizations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bastion.auth import IdentityAuth, OrganizationRBAC, RequestContext
from bastion.identity import Identity
from bastion.identity.options import CookieCache, SessionOptions
from bastion.identity.plugins.organization import (
    DEFAULT_STATEMENTS,
    admin_ac,
    create_access_control,
    member_ac,
    organization,
    owner_ac,
)
from bastion.server import Agent, Bastion, Memory, route, tool
from tests.auth.doubles import ScriptedModel, calls, text
from tests.hashing import cheap_password

BASE = "http://localhost:4111"
SECRET = "org-rbac-secret-0123456789abcdef0123456789abcdef"
PASSWORD = "horse battery staple"

ac = create_access_control(
    {
        **DEFAULT_STATEMENTS,
        "agents": ["read", "execute", "execute:support"],
        "tools": ["execute"],
        "memory": ["read", "write", "delete"],
        "refunds": ["create"],
    }
)
USE_SUPPORT = {
    "agents": ["read", "execute:support"],
    "tools": ["execute"],
    "memory": ["read", "write", "delete"],
}
RUN_EVERYTHING = {**USE_SUPPORT, "agents": ["read", "execute"], "refunds": ["create"]}
ROLES = {
    "member": ac.new_role({**member_ac.statements, **USE_SUPPORT}),
    "admin": ac.new_role({**admin_ac.statements, **RUN_EVERYTHING}),
    "owner": ac.new_role({**owner_ac.statements, **RUN_EVERYTHING}),
}

REFUNDS: list[str] = []


@tool(requires_permission="refunds:create")
async def refund(order: str) -> str:
    """Refund an order."""
    REFUNDS.append(order)
    return f"refunded {order}"


@tool
async def whoami(context: RequestContext) -> dict[str, Any]:
    """What the pipeline knows of the caller."""
    return {
        "organizationId": context.organization_id,
        "organizationRoles": list(context.organization_roles),
        "teamId": context.team_id,
        "resourceId": context.resource_id,
        "permissions": sorted(context.permissions),
    }


async def refund_report(request: Any) -> dict[str, Any]:
    """A custom route only those who may refund may read."""
    return {"refunds": list(REFUNDS)}


@dataclass
class World:
    identity: Identity
    app: Bastion
    model: ScriptedModel
    users: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # user name -> user id
    orgs: dict[str, str] = field(default_factory=dict)  # org name -> id

    async def sign_up(self, name: str, stack: AsyncExitStack) -> httpx.AsyncClient:
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app),
                base_url=BASE,
                headers={"origin": BASE},
            )
        )
        answer = await http.post(
            "/api/auth/sign-up/email",
            json={"name": name, "email": f"{name}@example.com", "password": PASSWORD},
        )
        assert answer.status_code == 200, answer.text
        self.users[name] = http
        self.ids[name] = answer.json()["user"]["id"]
        return http

    async def create_organization(self, owner: str, name: str) -> str:
        answer = await self.users[owner].post(
            "/api/auth/organization/create", json={"name": name, "slug": name}
        )
        assert answer.status_code == 200, answer.text
        self.orgs[name] = answer.json()["id"]
        return self.orgs[name]

    async def add_member(self, name: str, org: str, role: str) -> None:
        """The server-only add-member, in-process (as an application's code calls it)."""
        body = {"userId": self.ids[name], "organizationId": self.orgs[org], "role": role}
        await self.identity.api.add_member(body=body)

    async def set_active(self, name: str, org: str | None) -> httpx.Response:
        return await self.users[name].post(
            "/api/auth/organization/set-active",
            json={"organizationId": self.orgs[org] if org else None},
        )


def support_model() -> ScriptedModel:
    """Asks for a refund, then answers."""
    return ScriptedModel(calls(("c1", "refund", {"order": "o-1"})), text("done"))


@asynccontextmanager
async def org_world(
    *,
    memory_scope: str = "organization",
    rbac: dict[str, Any] | None = None,
    dynamic_roles: bool = False,
) -> AsyncIterator[World]:
    REFUNDS.clear()
    identity = Identity(
        secret=SECRET,
        base_url=BASE,
        database="sqlite://",
        email_and_password=cheap_password(),
        session=SessionOptions(cookie_cache=CookieCache(enabled=True)),
        plugins=[
            organization(
                ac=ac,
                roles=ROLES,
                teams={"enabled": True},
                dynamic_access_control={"enabled": dynamic_roles},
            )
        ],
        env={},
    )
    await identity.migrate()
    model = support_model()
    agents = [
        Agent(id="support", name="Support", instructions="", model=model, tools=[refund]),
        Agent(id="billing", name="Billing", instructions="", model=ScriptedModel(text("ok"))),
    ]
    async with AsyncExitStack() as stack:
        memory = Memory("sqlite://")
        await memory.migrate()
        stack.push_async_callback(memory.close)
        app = Bastion(
            agents=agents,
            tools=[refund, whoami],
            auth=IdentityAuth(identity),
            rbac=OrganizationRBAC(identity, **(rbac or {})),
            memory=memory,
            memory_scope=memory_scope,  # type: ignore[arg-type]
            routes=[route("/refunds", refund_report, requires_permission="refunds:create")],
        )
        world = World(identity, app, model)
        try:
            for name in ("ana", "bob", "carl", "eve"):
                await world.sign_up(name, stack)
            await world.create_organization("ana", "acme")  # ana: owner, acme active
            await world.create_organization("eve", "globex")  # eve: owner, globex active
            await world.add_member("bob", "acme", "member")
            await world.add_member("carl", "acme", "admin")
            # create makes the organization active in storage but, as better-auth, leaves
            # the cookie cache as it was: set-active rewrites it, as a client does.
            for name, org in (
                ("ana", "acme"),
                ("eve", "globex"),
                ("bob", "acme"),
                ("carl", "acme"),
            ):
                assert (await world.set_active(name, org)).status_code == 200
            yield world
        finally:
            await identity.close()
