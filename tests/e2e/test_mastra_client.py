"""Mastra's own HTTP client, `MastraClient` of @mastra/client-js (tests/e2e/mastra), against a
real Bastion on 127.0.0.1: agents, generate and stream, memory threads and messages, in the
request shapes the client sends, with the bearer token of a Bastion sign-in in its `headers`
option. Mastra routes Bastion does not serve answer a clean 404 (docs/http-api.md, "Mastra's
client").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import Identity, bearer
from bastion.server import Bastion, Memory, memory_plugin
from bastion.standalone import demo_agent, get_time, whoami
from tests.e2e.bastion_server import serve
from tests.e2e.mastra_client import MastraError, mastra_client, node_for_mastra
from tests.hashing import cheap_password

SECRET = "mastra-client-test-secret-0123456789abcdef"
MASTRA_CHUNKS = {"X-Bastion-Stream-Format": "mastra"}


@pytest.fixture(autouse=True)
def _needs_node() -> None:
    node_for_mastra()  # skips (or fails under CI) before a server is started for nothing


@dataclass
class User:
    id: str
    token: str


@dataclass
class Site:
    origin: str
    ana: User
    bob: User
    http: httpx.AsyncClient

    async def messages(self, user: User, thread_id: str) -> list[dict[str, Any]]:
        """The thread's stored messages, read past the client under test."""
        answer = await self.http.get(
            f"/api/memory/threads/{thread_id}/messages",
            headers={"Authorization": f"Bearer {user.token}"},
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json()["messages"])


def identity_for(origin: str) -> Identity:
    return Identity(
        secret=SECRET,
        base_url=origin,
        database="sqlite://",
        email_and_password=cheap_password(),
        plugins=[bearer(), memory_plugin()],
        rate_limit={"enabled": False},
        env={},
    )


def app_for(identity: Identity) -> Bastion:
    return Bastion(
        agents=[demo_agent()],
        tools=[whoami, get_time],
        auth=IdentityAuth(identity),
        memory=Memory(identity.db),
    )


async def sign_up(http: httpx.AsyncClient, origin: str, name: str) -> User:
    answer = await http.post(
        "/api/auth/sign-up/email",
        json={"name": name, "email": f"{name}@example.com", "password": "horse battery"},
        headers={"origin": origin},
    )
    assert answer.status_code == 200, answer.text
    return User(answer.json()["user"]["id"], answer.headers["set-auth-token"])


@asynccontextmanager
async def site() -> AsyncIterator[Site]:
    async with (
        serve(identity_for, app_for=app_for) as (_, origin),
        httpx.AsyncClient(base_url=origin) as http,
    ):
        ana, bob = await sign_up(http, origin, "ana"), await sign_up(http, origin, "bob")
        http.cookies.clear()  # the bearer tokens only, as the client sends them
        yield Site(origin, ana, bob, http)


def agent(*step: Any) -> tuple[tuple[str, str], tuple[Any, ...]]:
    """`client.getAgent("assistant").<step>`."""
    return ("getAgent", "assistant"), step


async def refused(call: Callable[[], Any]) -> MastraError:
    with pytest.raises(MastraError) as caught:
        await call()
    return caught.value


# -- agents --------------------------------------------------------------------------------------


async def test_list_and_get_agents() -> None:
    async with site() as s, mastra_client(s.origin, s.ana.token) as mastra:
        agents = await mastra.call(("listAgents",))
        assert list(agents) == ["assistant"]
        assert set(agents["assistant"]["tools"]) == {"whoami", "get_time"}
        details = await mastra.call(*agent("details"))
        assert details["id"] == "assistant" and details["modelId"] == "local/demo"

        missing = await refused(lambda: mastra.call(("getAgent", "nope"), ("details",)))
        assert (missing.status, missing.body) == (404, {"error": "Agent nope not found"})


async def test_without_the_token_every_call_is_401() -> None:
    async with site() as s, mastra_client(s.origin) as mastra:
        for chain in (
            [("listAgents",)],
            list(agent("generate", "who am i")),
            [("listMemoryThreads", {})],
        ):
            error = await refused(lambda chain=chain: mastra.call(*chain))
            assert (error.status, error.body) == (401, {"error": "Invalid or expired token"})


async def test_tools_list_describe_and_execute() -> None:
    async with site() as s, mastra_client(s.origin, s.ana.token) as mastra:
        assert set(await mastra.call(("listTools",))) == {"whoami", "get_time"}
        details = await mastra.call(("getTool", "whoami"), ("details",))
        assert details["id"] == "whoami"
        ran = await mastra.call(("getTool", "whoami"), ("execute", {"data": {}}))
        assert ran["result"]["id"] == s.ana.id


# -- generate ------------------------------------------------------------------------------------


async def test_generate_runs_on_the_thread_that_memory_names() -> None:
    async with site() as s, mastra_client(s.origin, s.ana.token) as mastra:
        memory = {"memory": {"thread": "ana-chat", "resource": s.ana.id}}
        first = await mastra.call(*agent("generate", "who am i", memory))
        assert s.ana.id in first["text"]  # the demo agent called whoami as ana
        assert first["threadId"] == "ana-chat"
        thread = await mastra.call(("getMemoryThread", {"threadId": "ana-chat"}), ("get",))
        assert thread["resourceId"] == s.ana.id
        kept = await s.messages(s.ana, "ana-chat")
        assert [m["role"] for m in kept] == ["user", "assistant", "tool", "assistant"]

        # `thread` as an object, and no `resource`: the caller's own is used.
        again = await mastra.call(
            *agent("generate", "hello", {"memory": {"thread": {"id": "ana-chat"}}})
        )
        assert again["threadId"] == "ana-chat"
        assert len(await s.messages(s.ana, "ana-chat")) == 6

        # Mastra's deprecated top-level spellings are Bastion's own.
        top = await mastra.call(
            *agent("generate", "hi", {"threadId": "ana-chat", "resourceId": s.ana.id})
        )
        assert top["threadId"] == "ana-chat"

        # Without memory nothing is kept.
        plain = await mastra.call(*agent("generate", [{"role": "user", "content": "hi"}]))
        assert "threadId" not in plain


async def test_a_resource_chosen_by_the_client_never_overrides_the_caller() -> None:
    async with site() as s:
        async with mastra_client(s.origin, s.bob.token) as bob:
            await bob.call(
                *agent(
                    "generate",
                    "bob's secret",
                    {"memory": {"thread": "bob-chat", "resource": s.bob.id}},
                )
            )
        bob_kept = await s.messages(s.bob, "bob-chat")

        async with mastra_client(s.origin, s.ana.token) as ana:
            # Naming bob as the resource: refused before anything runs or is created.
            claimed = await refused(
                lambda: ana.call(
                    *agent(
                        "generate", "hi", {"memory": {"thread": "new-one", "resource": s.bob.id}}
                    )
                )
            )
            assert (claimed.status, claimed.body) == (
                403,
                {"error": "resourceId does not match the authenticated user"},
            )
            gone = await refused(
                lambda: ana.call(("getMemoryThread", {"threadId": "new-one"}), ("get",))
            )
            assert gone.status == 404

            # Bob's thread: with ana's resource it does not exist, with bob's it is refused.
            for resource, status in ((s.ana.id, 404), (s.bob.id, 403)):
                probe = await refused(
                    lambda resource=resource: ana.call(
                        *agent(
                            "generate",
                            "hi",
                            {"memory": {"thread": "bob-chat", "resource": resource}},
                        )
                    )
                )
                assert probe.status == status
            probe = await refused(
                lambda: ana.call(*agent("generate", "hi", {"memory": {"thread": "bob-chat"}}))
            )
            assert (probe.status, probe.body) == (404, {"error": "Thread not found"})

            # Mastra's own scope keys in the request context are dropped like Bastion's.
            forged = {"mastra__resourceId": s.bob.id, "resourceId": s.bob.id}
            who = await ana.call(*agent("generate", "who am i", {"requestContext": forged}))
            assert s.ana.id in who["text"] and s.bob.id not in who["text"]

        assert await s.messages(s.bob, "bob-chat") == bob_kept


async def test_memory_that_disagrees_or_is_malformed_is_a_400() -> None:
    async with site() as s, mastra_client(s.origin, s.ana.token) as mastra:
        for options, message in (
            (
                {"threadId": "a", "memory": {"thread": "b"}},
                "threadId and memory.thread name different values",
            ),
            (
                {"resourceId": s.ana.id, "memory": {"resource": "x"}},
                "resourceId and memory.resource name different values",
            ),
            ({"memory": {"thread": {"title": "no id"}}}, "memory.thread.id must be a string"),
            ({"memory": {"thread": 7}}, "memory.thread must be a string or an object with an id"),
            ({"memory": {"thread": "t", "resource": 7}}, "memory.resource must be a string"),
        ):
            error = await refused(
                lambda options=options: mastra.call(*agent("generate", "hi", options))
            )
            assert (error.status, error.body) == (400, {"error": message}), options


# -- stream --------------------------------------------------------------------------------------


async def test_stream_in_mastra_chunks_onto_a_thread() -> None:
    async with site() as s, mastra_client(s.origin, s.ana.token, MASTRA_CHUNKS) as mastra:
        memory = {"memory": {"thread": "streamed", "resource": s.ana.id}}
        answer = await mastra.call(*agent("stream", "who am i", memory))
        assert answer["status"] == 200
        assert answer["contentType"].startswith("text/event-stream")
        chunks = answer["chunks"]  # as the client's processDataStream handed them over
        types = [c["type"] for c in chunks]
        assert types[:2] == ["tool-call", "tool-result"] and types[-1] == "finish"
        assert set(types[2:-1]) == {"text-delta"}
        assert {c["runId"] for c in chunks} == {chunks[0]["runId"]}
        assert chunks[0]["payload"]["toolName"] == "whoami"
        assert chunks[1]["payload"]["result"]["id"] == s.ana.id
        text = "".join(c["payload"]["text"] for c in chunks if c["type"] == "text-delta")
        assert s.ana.id in text
        finish = chunks[-1]["payload"]
        assert finish["stepResult"] == {"reason": "stop"} and finish["threadId"] == "streamed"
        assert finish["usage"]["totalTokens"] > 0
        kept = await s.messages(s.ana, "streamed")
        assert kept[-1]["content"] == text


async def test_stream_without_the_header_is_bastions_own_events() -> None:
    async with site() as s, mastra_client(s.origin, s.ana.token) as mastra:
        raw = await mastra.call(
            *agent("stream", "hello", {"memory": {"thread": "plain"}}), raw=True
        )
        assert raw["status"] == 200
        assert raw["text"].startswith("event: text-delta\ndata: ")
        assert 'event: finish\ndata: {"finishReason":"stop"' in raw["text"]
        assert '"threadId":"plain"' in raw["text"]
        # ...which Mastra's parser does not read: it takes only blocks that begin with data.
        read = await mastra.call(*agent("stream", "hello"))
        assert read["chunks"] == []


async def test_stream_refusals_keep_their_status() -> None:
    async with site() as s:
        async with mastra_client(s.origin, s.ana.token, MASTRA_CHUNKS) as mastra:
            foreign = await refused(
                lambda: mastra.call(
                    *agent("stream", "hi", {"memory": {"thread": "t", "resource": s.bob.id}})
                )
            )
            assert foreign.status == 403
        async with mastra_client(s.origin, s.ana.token, {"X-Bastion-Stream-Format": "nope"}) as odd:
            error = await refused(lambda: odd.call(*agent("stream", "hi")))
            assert (error.status, error.body) == (
                400,
                {"error": "X-Bastion-Stream-Format must be one of: bastion, mastra"},
            )


# -- memory threads and messages -----------------------------------------------------------------


async def test_threads_create_list_get_update_delete_and_messages() -> None:
    async with site() as s, mastra_client(s.origin, s.ana.token) as mastra:
        created = await mastra.call(
            (
                "createMemoryThread",
                {
                    "title": "Plans",
                    "metadata": {"k": "v"},
                    "resourceId": s.ana.id,
                    "agentId": "assistant",
                },
            )
        )
        thread_id = created["id"]
        assert created["resourceId"] == s.ana.id and created["title"] == "Plans"
        named = await mastra.call(
            (
                "createMemoryThread",
                {"threadId": "chosen", "resourceId": s.ana.id, "agentId": "assistant"},
            )
        )
        assert named["id"] == "chosen"
        await mastra.call(
            *agent("generate", "hello", {"memory": {"thread": thread_id, "resource": s.ana.id}})
        )

        listed = await mastra.call(
            ("listMemoryThreads", {"resourceId": s.ana.id, "agentId": "assistant"})
        )
        assert [t["id"] for t in listed["threads"]] == [thread_id, "chosen"]  # last updated first
        paged = await mastra.call(("listMemoryThreads", {"page": 1, "perPage": 1}))
        assert [t["id"] for t in paged["threads"]] == ["chosen"]
        everything = await mastra.call(("listMemoryThreads", {"perPage": False}))
        assert len(everything["threads"]) == 2

        thread = ("getMemoryThread", {"threadId": thread_id, "agentId": "assistant"})
        assert (await mastra.call(thread, ("get",)))["title"] == "Plans"
        updated = await mastra.call(
            thread, ("update", {"title": "Renamed", "metadata": {"k": 2}, "resourceId": s.ana.id})
        )
        assert (updated["title"], updated["metadata"]) == ("Renamed", {"k": 2})

        messages = await mastra.call(thread, ("listMessages", {}))
        assert [m["content"] for m in messages["messages"]] == ["hello", "You said: hello"]
        via_client = await mastra.call(("listThreadMessages", thread_id, {"agentId": "assistant"}))
        assert via_client == messages

        assert await mastra.call(thread, ("delete", {})) == {"ok": True}
        gone = await refused(lambda: mastra.call(thread, ("get",)))
        assert (gone.status, gone.body) == (404, {"error": "Thread not found"})
        also_gone = await mastra.call(("deleteThread", "chosen", {"agentId": "assistant"}))
        assert also_gone == {"ok": True}
        assert (await mastra.call(("listMemoryThreads", {})))["threads"] == []


async def test_another_users_threads_answer_as_missing() -> None:
    async with site() as s:
        async with mastra_client(s.origin, s.bob.token) as bob:
            await bob.call(
                (
                    "createMemoryThread",
                    {"threadId": "bobs", "resourceId": s.bob.id, "agentId": "assistant"},
                )
            )
        async with mastra_client(s.origin, s.ana.token) as ana:
            assert (await ana.call(("listMemoryThreads", {})))["threads"] == []
            as_bob = await refused(
                lambda: ana.call(("listMemoryThreads", {"resourceId": s.bob.id}))
            )
            assert as_bob.status == 403
            thread = ("getMemoryThread", {"threadId": "bobs", "agentId": "assistant"})
            for step in (
                ("get",),
                ("listMessages", {}),
                ("update", {"title": "x", "resourceId": s.ana.id}),
                ("delete", {}),
            ):
                error = await refused(lambda step=step: ana.call(thread, step))
                assert (error.status, error.body) == (404, {"error": "Thread not found"}), step
            create = await refused(
                lambda: ana.call(
                    (
                        "createMemoryThread",
                        {"title": "x", "resourceId": s.bob.id, "agentId": "assistant"},
                    )
                )
            )
            assert create.status == 403
        async with mastra_client(s.origin, s.bob.token) as bob:
            still = await bob.call(("getMemoryThread", {"threadId": "bobs"}), ("get",))
            assert still["title"] is None


async def test_what_bastion_cannot_honour_in_a_listing_is_a_400() -> None:
    async with site() as s, mastra_client(s.origin, s.ana.token) as mastra:
        for params, message in (
            (
                {"metadata": {"k": "v"}},
                "metadata is not supported: threads cannot be filtered by metadata",
            ),
            (
                {"orderBy": {"field": "createdAt"}},
                "orderBy[field] must be updatedAt: threads are listed by updatedAt DESC",
            ),
            ({"perPage": -1}, "perPage must be a non-negative integer"),
        ):
            error = await refused(lambda params=params: mastra.call(("listMemoryThreads", params)))
            assert (error.status, error.body) == (400, {"error": message}), params
        await mastra.call(
            ("createMemoryThread", {"threadId": "t", "resourceId": s.ana.id, "agentId": "a"})
        )
        paged = await refused(
            lambda: mastra.call(("listThreadMessages", "t", {"page": 0, "perPage": 5}))
        )
        assert paged.status == 400
        assert paged.body == {
            "error": "page, perPage are not supported on messages: "
            "use limit (the last n messages, oldest first)"
        }


# -- what Bastion does not serve -----------------------------------------------------------------

# Mastra client calls with no Bastion counterpart (docs/http-api.md, "Mastra's client").
UNSERVED: list[tuple[Any, ...]] = [
    (("getMemoryConfig", {"agentId": "assistant"}),),
    (("getMemoryStatus", "assistant"),),
    (("saveMessageToMemory", {"agentId": "assistant", "messages": []}),),
    (("getMemoryThread", {"threadId": "t", "agentId": "assistant"}), ("clone", {})),
    (("getMemoryThread", {"threadId": "t", "agentId": "assistant"}), ("deleteMessages", ["m1"])),
    (("getMemoryThread", {"threadId": "t"}), ("transfer", {"resourceId": "x"})),
    (("listThreadMessages", "t", {"networkId": "n"}),),
    (("listAgentsModelProviders",),),
    (agent("enhanceInstructions", "be nice", "shorter")),
    (agent("streamUntilIdle", "hi")),
    (agent("network", "hi", {})),
    (agent("generateLegacy", {"messages": "hi"})),
    (("listWorkflows",),),
    (("getWorkflow", "w"), ("details",)),
    (("listScorers",),),
    (("getSystemPackages",),),
    (("listStoredAgents",),),
    (("getMcpServers",),),
]


async def test_mastra_routes_bastion_does_not_serve_are_a_clean_404() -> None:
    async with site() as s, mastra_client(s.origin, s.ana.token) as mastra:
        for chain in UNSERVED:
            error = await refused(lambda chain=chain: mastra.call(*chain))
            assert error.status == 404, (chain, error)
            assert isinstance(error.body, dict) and set(error.body) == {"error"}, (
                chain,
                error.body,
            )
