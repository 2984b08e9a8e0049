"""Per-user memory isolation through HTTP, with two users of each kind of provider
(SimpleAuth tokens, IdentityAuth sign-ups, JWTAuth HS256 claims).

The class of bug in Mastra's advisory GHSA-cw45-899f-pvrr (#18911): a client naming the
resource, or a thread id, reached another user's threads. Here the owner is the pipeline's
`RequestContext.resource_id`; a `resourceId` naming someone else is 403; another user's
thread answers exactly as a missing one (404 "Thread not found"), on every route and on
generate/stream, and is left untouched.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from bastion.auth import RequestContext, SimpleAuth
from bastion.auth.providers.identity import IdentityAuth
from bastion.auth.providers.jwt import JWTAuth
from bastion.client.sse import iter_sse
from bastion.identity import Identity, bearer
from bastion.server import Agent, Bastion, LocalModel, Memory, memory_plugin, tool
from bastion.server.models import Message, ModelResponse, ToolSpec
from tests.auth.doubles import client
from tests.hashing import cheap_password
from tests.server.memory_kit import open_memory

JWT_SECRET = "jwt-test-secret-0123456789abcdef0123456789abcdef"
IDENTITY_SECRET = "test-secret-0123456789abcdef0123456789abcdef"
BASE = "http://localhost:4111"
NOT_FOUND = (404, {"error": "Thread not found"})


@tool
async def whoami(context: RequestContext) -> str | None:
    """The caller's resource id."""
    return context.resource_id


class Counting(LocalModel):
    """The LocalModel ("use whoami" calls the tool), counting the calls it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def respond(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        self.calls += 1
        return super().respond(messages, tools)


@dataclass
class Two:
    """Two signed-in users of one app: their credentials and resource ids."""

    http: httpx.AsyncClient
    memory: Memory
    model: Counting
    ana: dict[str, str]
    bob: dict[str, str]
    ana_id: str
    bob_id: str


def app_for(auth: Any, memory: Memory, model: LocalModel) -> Bastion:
    agent = Agent(id="helper", name="Helper", instructions="", model=model, tools=[whoami])
    return Bastion(agents=[agent], auth=auth, memory=memory)


def hs256(claims: dict[str, Any]) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 300, **claims}, JWT_SECRET, algorithm="HS256")


async def _simple() -> AsyncIterator[Two]:
    model = Counting()
    users = {"token-ana": {"id": "ana"}, "token-bob": {"id": "bob"}}
    async with (
        open_memory("sqlite://") as memory,
        client(app_for(SimpleAuth(users), memory, model)) as http,
    ):
        yield Two(
            http,
            memory,
            model,
            {"Authorization": "Bearer token-ana"},
            {"Authorization": "Bearer token-bob"},
            "ana",
            "bob",
        )


async def _jwt() -> AsyncIterator[Two]:
    """Auth0-style subjects, minted here with the shared secret."""
    model = Counting()
    ana, bob = "auth0|ana-0001", "google-oauth2|bob-0002"
    async with (
        open_memory("sqlite://") as memory,
        client(app_for(JWTAuth(secret=JWT_SECRET), memory, model)) as http,
    ):
        yield Two(
            http,
            memory,
            model,
            {"Authorization": f"Bearer {hs256({'sub': ana})}"},
            {"Authorization": f"Bearer {hs256({'sub': bob, 'scope': 'openid'})}"},
            ana,
            bob,
        )


async def _identity() -> AsyncIterator[Two]:
    """Two users signed up on the mounted Identity; memory shares its database. Ana uses
    her bearer token, Bob his session cookie."""
    model = Counting()
    identity = Identity(
        secret=IDENTITY_SECRET,
        base_url=BASE,
        database="sqlite://",
        email_and_password=cheap_password(),
        plugins=[bearer(), memory_plugin()],
        env={},
    )
    await identity.migrate()
    memory = Memory(identity.db)
    try:
        async with client(app_for(IdentityAuth(identity), memory, model), BASE) as http:
            found: dict[str, tuple[str, str, str]] = {}
            for name in ("ana", "bob"):
                signed_up = await http.post(
                    "/api/auth/sign-up/email",
                    json={
                        "name": name,
                        "email": f"{name}@example.com",
                        "password": "horse battery",
                    },
                    headers={"origin": BASE},
                )
                assert signed_up.status_code == 200, signed_up.text
                cookie = http.cookies.get("better-auth.session_token")
                assert cookie
                http.cookies.clear()
                found[name] = (
                    signed_up.json()["user"]["id"],
                    signed_up.headers["set-auth-token"],
                    cookie,
                )
            yield Two(
                http,
                memory,
                model,
                {"Authorization": f"Bearer {found['ana'][1]}"},
                {"cookie": f"better-auth.session_token={found['bob'][2]}"},
                found["ana"][0],
                found["bob"][0],
            )
    finally:
        await identity.close()


PROVIDERS = {"simple": _simple, "jwt": _jwt, "identity": _identity}


@pytest.fixture(params=list(PROVIDERS))
async def two(request: pytest.FixtureRequest) -> AsyncIterator[Two]:
    async for world in PROVIDERS[request.param]():
        yield world


async def create(two: Two, who: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await two.http.post("/api/memory/threads", json=body, headers=who)
    assert response.status_code == 201, response.text
    thread: dict[str, Any] = response.json()
    return thread


async def test_list_shows_only_the_callers_threads(two: Two) -> None:
    a1 = await create(two, two.ana, title="a1")
    a2 = await create(two, two.ana, title="a2")
    b1 = await create(two, two.bob, title="b1")
    ana = (await two.http.get("/api/memory/threads", headers=two.ana)).json()
    bob = (await two.http.get("/api/memory/threads", headers=two.bob)).json()
    assert sorted(t["id"] for t in ana) == sorted([a1["id"], a2["id"]])
    assert [t["id"] for t in bob] == [b1["id"]]
    assert {t["resourceId"] for t in ana} == {two.ana_id}
    assert {t["resourceId"] for t in bob} == {two.bob_id}


async def test_another_users_thread_is_not_found_on_every_route(two: Two) -> None:
    thread = await create(two, two.bob, title="Bob's", metadata={"secret": "b"})
    await two.http.post(
        "/api/agents/helper/generate",
        json={"messages": "bob's words", "threadId": thread["id"]},
        headers=two.bob,
    )
    bob_messages = await two.memory.list_messages(thread["id"])
    assert len(bob_messages) == 2
    before = (await two.http.get(f"/api/memory/threads/{thread['id']}", headers=two.bob)).json()
    assert before["title"] == "Bob's"
    for tid in (thread["id"], "no-such-thread"):
        base = f"/api/memory/threads/{tid}"
        answers = [
            await two.http.get(base, headers=two.ana),
            await two.http.patch(base, json={"title": "mine now"}, headers=two.ana),
            await two.http.delete(base, headers=two.ana),
            await two.http.get(base + "/messages", headers=two.ana),
        ]
        # Exactly the answer for a thread that does not exist: nothing to probe.
        assert [(r.status_code, r.json()) for r in answers] == [NOT_FOUND] * 4, tid
    after = (await two.http.get(f"/api/memory/threads/{thread['id']}", headers=two.bob)).json()
    assert after == before
    assert await two.memory.list_messages(thread["id"]) == bob_messages


async def test_runs_on_another_users_thread_are_refused_before_the_model(two: Two) -> None:
    thread = await create(two, two.bob)
    calls_before = two.model.calls
    for path in ("/api/agents/helper/generate", "/api/agents/helper/stream"):
        response = await two.http.post(
            path, json={"messages": "hi", "threadId": thread["id"]}, headers=two.ana
        )
        assert (response.status_code, response.json()) == NOT_FOUND, path
    assert two.model.calls == calls_before
    assert await two.memory.list_messages(thread["id"]) == []
    assert (await two.memory.get_thread(thread["id"])) is not None


async def test_a_client_resource_id_naming_someone_else_is_refused(two: Two) -> None:
    refused = (403, {"error": "resourceId does not match the authenticated user"})
    listing = await two.http.get(
        "/api/memory/threads", params={"resourceId": two.bob_id}, headers=two.ana
    )
    created = await two.http.post(
        "/api/memory/threads", json={"resourceId": two.bob_id}, headers=two.ana
    )
    run = await two.http.post(
        "/api/agents/helper/generate",
        json={"messages": "hi", "threadId": "new-one", "resourceId": two.bob_id},
        headers=two.ana,
    )
    for response in (listing, created, run):
        assert (response.status_code, response.json()) == refused
    assert await two.memory.get_thread("new-one") is None
    assert await two.memory.list_threads(two.bob_id) == []
    # Naming oneself is fine (clients written for Mastra always send it).
    own = await two.http.post(
        "/api/agents/helper/generate",
        json={"messages": "hi", "threadId": "new-one", "resourceId": two.ana_id},
        headers=two.ana,
    )
    assert own.status_code == 200
    assert (await two.memory.get_owned_thread("new-one", two.ana_id)).id == "new-one"


async def test_request_context_cannot_forge_the_owner(two: Two) -> None:
    forged = {"resourceId": two.bob_id, "resource_id": two.bob_id, "bastion__resourceId": "x"}
    response = await two.http.post(
        "/api/agents/helper/stream",
        json={"messages": "use whoami", "threadId": "t-forged", "requestContext": forged},
        headers=two.ana,
    )
    results = [json.loads(e.data) for e in iter_sse([response.content]) if e.event == "tool-result"]
    assert [r["result"] for r in results] == [two.ana_id]
    assert (await two.memory.get_owned_thread("t-forged", two.ana_id)).id == "t-forged"
    assert await two.memory.list_threads(two.bob_id) == []


async def test_thread_ids_are_global_and_a_taken_one_is_refused(two: Two) -> None:
    """Ids chosen by clients share one namespace: Ana cannot take or write to Bob's
    "chat-1". She learns only that the id is taken, nothing of the thread."""
    await create(two, two.bob, threadId="chat-1", title="Bob's plans")
    taken = await two.http.post("/api/memory/threads", json={"threadId": "chat-1"}, headers=two.ana)
    assert (taken.status_code, taken.json()) == (409, {"error": "Thread already exists"})
    run = await two.http.post(
        "/api/agents/helper/generate",
        json={"messages": "hi", "threadId": "chat-1"},
        headers=two.ana,
    )
    assert (run.status_code, run.json()) == NOT_FOUND
    assert "Bob" not in taken.text + run.text


async def test_no_credentials_no_memory(two: Two) -> None:
    thread = await create(two, two.bob)
    for path in ("/api/memory/threads", f"/api/memory/threads/{thread['id']}"):
        response = await two.http.get(path)
        assert (response.status_code, response.json()) == (
            401,
            {"error": "Invalid or expired token"},
        )


# -- provider-specific ----------------------------------------------------------------


async def test_a_user_without_a_resource_id_gets_no_memory() -> None:
    """A user the provider maps to no resource (no `id`/`sub`, or a mapping that says None)
    is refused memory: never scoped by what the client claims instead."""
    auth = SimpleAuth({"t-kiosk": {"name": "kiosk"}})
    headers = {"Authorization": "Bearer t-kiosk"}
    async with (
        open_memory("sqlite://") as memory,
        client(app_for(auth, memory, LocalModel())) as http,
    ):
        listing = await http.get("/api/memory/threads?resourceId=bob", headers=headers)
        run = await http.post(
            "/api/agents/helper/generate",
            json={"messages": "hi", "threadId": "t", "resourceId": "bob"},
            headers=headers,
        )
        plain = await http.post(
            "/api/agents/helper/generate", json={"messages": "hi"}, headers=headers
        )
        assert await memory.get_thread("t") is None
    for response in (listing, run):
        assert (response.status_code, response.json()) == (
            403,
            {"error": "No resource id for this user"},
        )
    assert plain.status_code == 200  # runs without memory are unaffected


async def test_map_user_to_resource_id_decides_who_shares() -> None:
    """One resource per organization: colleagues share threads, other orgs do not."""
    users = {
        "t-ana": {"id": "ana", "org": "acme"},
        "t-carl": {"id": "carl", "org": "acme"},
        "t-bob": {"id": "bob", "org": "globex"},
    }
    auth = SimpleAuth(users, map_user_to_resource_id=lambda user: f"org:{user['org']}")
    async with (
        open_memory("sqlite://") as memory,
        client(app_for(auth, memory, LocalModel())) as http,
    ):
        created = await http.post(
            "/api/memory/threads", json={}, headers={"Authorization": "Bearer t-ana"}
        )
        thread_id = created.json()["id"]
        assert created.json()["resourceId"] == "org:acme"
        carl = await http.get(
            f"/api/memory/threads/{thread_id}", headers={"Authorization": "Bearer t-carl"}
        )
        bob = await http.get(
            f"/api/memory/threads/{thread_id}", headers={"Authorization": "Bearer t-bob"}
        )
    assert carl.status_code == 200
    assert (bob.status_code, bob.json()) == NOT_FOUND


async def test_ids_differing_only_in_case_stay_apart(database_url: str) -> None:
    """MySQL compares strings case-insensitively by default; the answers must not."""
    users = {"t-lower": {"id": "ana"}, "t-upper": {"id": "Ana"}}
    lower, upper = {"Authorization": "Bearer t-lower"}, {"Authorization": "Bearer t-upper"}
    async with open_memory(database_url) as memory:
        app = app_for(SimpleAuth(users), memory, LocalModel())
        async with client(app) as http:
            made = await http.post(
                "/api/memory/threads", json={"threadId": "Chat-A"}, headers=upper
            )
            assert made.status_code == 201
            listed = await http.get("/api/memory/threads", headers=lower)
            assert listed.json() == []
            foreign = await http.get("/api/memory/threads/Chat-A", headers=lower)
            assert (foreign.status_code, foreign.json()) == NOT_FOUND
            run = await http.post(
                "/api/agents/helper/generate",
                json={"messages": "hi", "threadId": "Chat-A"},
                headers=lower,
            )
            assert (run.status_code, run.json()) == NOT_FOUND
            # "chat-a" is another thread; MySQL cannot keep it beside "Chat-A" (taken).
            other = await http.post(
                "/api/agents/helper/generate",
                json={"messages": "hi", "threadId": "chat-a"},
                headers=lower,
            )
            if database_url.startswith("mysql"):
                assert (other.status_code, other.json()) == (
                    409,
                    {"error": "Thread already exists"},
                )
            else:
                assert other.status_code == 200
                assert (await memory.get_owned_thread("chat-a", "ana")).id == "chat-a"
            assert await memory.list_messages("Chat-A") == []
            assert [t.id for t in await memory.list_threads("Ana")] == ["Chat-A"]
