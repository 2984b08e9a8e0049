"""Shared by the organization plugin's tests: users signed in on their own clients of one
Identity, and the calls that set up organizations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bastion.identity import Identity, organization
from tests.identity.conftest import BASE, ORIGIN, running
from tests.identity.routes.helpers import PASSWORD


@dataclass
class Org:
    identity: Identity
    anonymous: httpx.AsyncClient

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.identity.app)
        return httpx.AsyncClient(transport=transport, base_url=f"{BASE}/api/auth", headers=ORIGIN)

    async def user(self, email: str, name: str = "Ada") -> httpx.AsyncClient:
        """A new client with `email` signed up (and so signed in)."""
        client = self.client()
        body = {"name": name, "email": email, "password": PASSWORD}
        response = await client.post("/sign-up/email", json=body)
        assert response.status_code == 200, response.text
        client.user = response.json()["user"]  # type: ignore[attr-defined]
        return client


@asynccontextmanager
async def org_identity(
    database_url: str = "sqlite://", plugin_options: dict[str, Any] | None = None, **options: Any
) -> AsyncIterator[Org]:
    options.setdefault("plugins", [organization(**(plugin_options or {}))])
    async with running(database_url, **options) as (identity, client):
        yield Org(identity, client)


async def create_org(client: httpx.AsyncClient, slug: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/organization/create", json={"name": slug.title(), "slug": slug, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response) -> tuple[int, str | None]:
    body = response.json() if response.content else {}
    return response.status_code, body.get("code")
