"""hooks.before / hooks.after and database_hooks (spec §9.1, §9.2)."""

from __future__ import annotations

from typing import Any

from bastion.identity import APIError, Code, Ctx
from tests.identity.conftest import running


async def test_before_hook_may_refuse_or_answer() -> None:
    async def before(ctx: Ctx[Any]) -> Any:
        if ctx.endpoint.path == "/sign-up/email" and str(ctx.raw_body.get("email", "")).endswith(
            "@blocked.test"
        ):
            raise APIError(400, Code.INVALID_EMAIL)
        if ctx.endpoint.path == "/ok":
            return {"ok": "from the hook"}
        return None

    async with running(hooks={"before": before}) as (_, client):
        refused = await client.post(
            "/sign-up/email",
            json={"name": "A", "email": "a@blocked.test", "password": "password123"},
        )
        assert refused.status_code == 400 and refused.json()["code"] == "INVALID_EMAIL"
        assert (await client.get("/ok")).json() == {"ok": "from the hook"}
        allowed = await client.post(
            "/sign-up/email", json={"name": "B", "email": "b@fine.test", "password": "password123"}
        )
        assert allowed.status_code == 200


async def test_after_hook_sees_the_result_and_may_replace_it() -> None:
    seen: list[Any] = []

    async def after(ctx: Ctx[Any]) -> None:
        seen.append((ctx.endpoint.path, ctx.error.code if ctx.error else None))
        if ctx.endpoint.path == "/ok":
            ctx.returned = {"ok": True, "hooked": True}

    async with running(hooks={"after": after}) as (_, client):
        assert (await client.get("/ok")).json() == {"ok": True, "hooked": True}
        await client.post("/sign-in/email", json={"email": "x@y.test", "password": "password123"})
    # The code stays its member for hooks: compared by identity, never by its text.
    assert seen == [("/ok", None), ("/sign-in/email", Code.INVALID_EMAIL_OR_PASSWORD)]


async def test_database_hooks_change_data_or_abort() -> None:
    created: list[str] = []

    def before_user(data: dict[str, Any], ctx: Any) -> Any:
        if data["email"].startswith("nope"):
            return False
        return {"data": {"name": data["name"].title()}}

    async def after_user(data: dict[str, Any], ctx: Any) -> None:
        created.append(data["email"])

    hooks = {"user": {"create": {"before": before_user, "after": after_user}}}
    async with running(database_hooks=hooks) as (identity, client):
        ok = await client.post(
            "/sign-up/email",
            json={"name": "ada lovelace", "email": "ada@x.test", "password": "password123"},
        )
        assert ok.json()["user"]["name"] == "Ada Lovelace"
        refused = await client.post(
            "/sign-up/email",
            json={"name": "n", "email": "nope@x.test", "password": "password123"},
            headers={"origin": "http://localhost:3000"},
        )
        assert refused.status_code == 422
        assert refused.json()["code"] == "FAILED_TO_CREATE_USER"
        assert await identity.store.find_user_by_email("nope@x.test") is None
    assert created == ["ada@x.test"]
