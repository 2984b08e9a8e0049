"""CompositeAuth (spec §1.5): providers in order, the authenticating one remembered."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import HTTPConnection, Request

from bastion.auth import AuthProvider, CompositeAuth, SimpleAuth
from bastion.identity import Identity
from bastion.server import Bastion, route
from tests.auth.doubles import Recording, bearer, client


class Raising(AuthProvider):
    name = "raising"

    async def authenticate_token(self, token: str, request: HTTPConnection) -> Any:
        raise RuntimeError("issuer unreachable")

    async def default_authorize_user(self, user: Any, request: HTTPConnection) -> bool:
        raise RuntimeError("policy down")


def me_route() -> Any:
    async def me(request: Request) -> Any:
        context = request.state.context
        return {"user": context.user, "resourceId": context.resource_id}

    return route("/me", me)


async def test_first_user_wins_and_raising_providers_are_skipped() -> None:
    first = Recording({"a": {"id": "from-first"}})
    second = Recording({"a": {"id": "from-second"}, "b": {"id": "only-second"}})
    app = Bastion(auth=CompositeAuth([Raising(), first, second]), routes=[me_route()])
    async with client(app) as http:
        assert (await http.get("/api/me", headers=bearer("a"))).json()["user"]["id"] == (
            "from-first"
        )
        assert (await http.get("/api/me", headers=bearer("b"))).json()["user"]["id"] == (
            "only-second"
        )
        assert (await http.get("/api/me", headers=bearer("c"))).status_code == 401
    assert first.tokens == ["a", "b", "c"]
    assert second.tokens == ["b", "c"]


async def test_resource_id_comes_from_the_provider_that_authenticated() -> None:
    keys = SimpleAuth({"key": {"id": "k"}}, map_user_to_resource_id=lambda u: "api-keys")
    sessions = Recording({"sess": {"id": "s"}}, map_user_to_resource_id=lambda u: f"user-{u['id']}")
    app = Bastion(auth=CompositeAuth([keys, sessions]), routes=[me_route()])
    async with client(app) as http:
        assert (await http.get("/api/me", headers=bearer("key"))).json()["resourceId"] == (
            "api-keys"
        )
        assert (await http.get("/api/me", headers=bearer("sess"))).json()["resourceId"] == (
            "user-s"
        )


async def test_async_resource_hooks_are_awaited_through_the_composite() -> None:
    """An inner provider's async hook, and the composite's own: the awaited id, never the
    coroutine's repr (whose address another user's request may reuse)."""

    async def inner(user: Any) -> str:
        return f"user-{user['id']}"

    async def outer(user: Any) -> str:
        return f"outer-{user['id']}"

    users = {"a": {"id": "a"}, "b": {"id": "b"}}
    for composite, prefix in (
        (CompositeAuth([Recording(users, map_user_to_resource_id=inner)]), "user"),
        (CompositeAuth([Recording(users)], map_user_to_resource_id=outer), "outer"),
    ):
        async with client(Bastion(auth=composite, routes=[me_route()])) as http:
            for token in ("a", "b", "a"):
                answer = (await http.get("/api/me", headers=bearer(token))).json()
                assert answer["resourceId"] == f"{prefix}-{token}"


async def test_an_async_resource_hook_that_raises_is_500_through_the_composite() -> None:
    async def broken(user: Any) -> str:
        raise LookupError("tenant directory down")

    composite = CompositeAuth([Recording(map_user_to_resource_id=broken)])
    async with client(Bastion(auth=composite, routes=[me_route()])) as http:
        response = await http.get("/api/me", headers=bearer("good"))
    assert response.status_code == 500
    assert response.json() == {"error": "Failed to map authenticated user to a resource ID"}


async def test_composite_own_mapping_wins() -> None:
    composite = CompositeAuth(
        [Recording({"t": {"id": "x"}}, map_user_to_resource_id=lambda u: "inner")],
        map_user_to_resource_id=lambda u: "outer",
    )
    async with client(Bastion(auth=composite, routes=[me_route()])) as http:
        assert (await http.get("/api/me", headers=bearer("t"))).json()["resourceId"] == "outer"


async def test_authorize_user_is_an_or() -> None:
    no = Recording({"t": {"id": "x"}}, authorize_user=lambda u, r: False)
    yes = Recording({}, authorize_user=lambda u, r: u["id"] == "x")
    async with client(Bastion(auth=CompositeAuth([Raising(), no, yes]))) as http:
        assert (await http.get("/api/agents", headers=bearer("t"))).status_code == 200
    async with client(Bastion(auth=CompositeAuth([no, Raising()]))) as http:
        assert (await http.get("/api/agents", headers=bearer("t"))).status_code == 403


async def test_public_and_protected_are_concatenated() -> None:
    composite = CompositeAuth(
        [Recording(public=["/api/tools"]), Recording(public=["/api/agents"], protected=["/x/*"])],
        public=["/api/me"],
    )
    assert composite.public == ["/api/me", "/api/tools", "/api/agents"]
    assert composite.protected == ["/x/*"]
    async with client(Bastion(auth=composite)) as http:
        assert (await http.get("/api/tools")).status_code == 200
        assert (await http.get("/api/agents")).status_code == 200
        assert (await http.get("/x/y")).status_code == 401


def test_cookie_names_and_identity_come_from_the_providers() -> None:
    identity = Identity(secret="x" * 32, base_url="http://localhost", env={})

    class WithIdentity(Recording):
        session_cookie_name = "better-auth.session_token"

        def __init__(self) -> None:
            super().__init__()
            self.identity = identity

    composite = CompositeAuth([SimpleAuth({"t": 1}), WithIdentity()])
    assert composite.session_cookie_name == ("bastion-token", "better-auth.session_token")
    assert composite.identity is identity
    assert CompositeAuth([SimpleAuth({"t": 1})]).identity is None


def test_needs_a_provider() -> None:
    with pytest.raises(ValueError):
        CompositeAuth([])
