"""The Bastion app over HTTP: routes and shapes of docs/http-api.md, custom routes, errors,
the mounted Identity, mounting inside another app, the lifespan."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from bastion import __version__
from bastion.auth import AuthProvider, Forbidden, RequestContext, SimpleAuth
from bastion.identity import Identity
from bastion.server import Agent, Bastion, ModelError, route, tool
from tests.auth.doubles import Recording, ScriptedModel, bearer, calls, client, text

USER = {"id": "ana", "role": "admin"}
AUTH = {"Authorization": "Bearer good"}


@tool
async def whoami(context: RequestContext) -> dict[str, Any]:
    """Who is calling, and what the client put in the context."""
    return {"user": context.user, "resourceId": context.resource_id, "values": context.values}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
async def refuse() -> None:
    """Refuses everyone."""
    raise PermissionError("admins only")


@tool
async def crash() -> None:
    """Fails."""
    raise RuntimeError("secret internals")


def make_app(model: ScriptedModel | None = None, **kw: Any) -> Bastion:
    helper = Agent(
        name="Helper",
        instructions="Be brief.",
        model=model or ScriptedModel(text("hello")),
        tools=[whoami, add],
        max_steps=4,
    )
    kw.setdefault("auth", Recording({"good": USER}))
    return Bastion(agents=[helper], tools=[whoami, add, refuse, crash], **kw)


# -- built-in routes -----------------------------------------------------------------


async def test_welcome_and_health() -> None:
    async with client(make_app()) as http:
        assert (await http.get("/api")).json() == {"name": "bastion", "version": __version__}
        assert (await http.get("/health")).json() == {"status": "ok"}


async def test_list_and_get_agents() -> None:
    async with client(make_app()) as http:
        listing = (await http.get("/api/agents", headers=AUTH)).json()
        one = (await http.get("/api/agents/helper", headers=AUTH)).json()
        missing = await http.get("/api/agents/nope", headers=AUTH)
    assert listing == {"helper": one}
    assert one["id"] == "helper" and one["name"] == "Helper"
    assert one["instructions"] == "Be brief." and one["modelId"] == "scripted/test"
    assert one["tools"]["add"] == {
        "id": "add",
        "description": "Add two integers.",
        "inputSchema": add.input_schema,
    }
    assert missing.status_code == 404
    assert missing.json() == {"error": "Agent nope not found"}


async def test_agents_given_as_a_mapping_use_its_keys() -> None:
    agent = Agent(name="Helper", instructions="", model=ScriptedModel())
    async with client(Bastion(agents={"main": agent})) as http:
        assert (await http.get("/api/agents/main")).json()["id"] == "main"
        assert (await http.get("/api/agents/helper")).status_code == 404


async def test_tools() -> None:
    async with client(make_app()) as http:
        listing = (await http.get("/api/tools", headers=AUTH)).json()
        assert set(listing) == {"whoami", "add", "refuse", "crash"}
        assert (await http.get("/api/tools/add", headers=AUTH)).json() == listing["add"]
        missing = await http.get("/api/tools/nope", headers=AUTH)
        assert missing.status_code == 404
        assert missing.json() == {"error": "Tool nope not found"}
        result = await http.post(
            "/api/tools/add/execute", json={"data": {"a": 1, "b": 2}}, headers=AUTH
        )
        assert result.json() == {"result": 3}


async def test_tool_errors() -> None:
    async with client(make_app()) as http:
        bad = await http.post("/api/tools/add/execute", json={"data": {"a": "x"}}, headers=AUTH)
        assert bad.status_code == 400
        assert bad.json()["error"].startswith("a: Input should be a valid integer")
        not_object = await http.post("/api/tools/add/execute", json={"data": [1]}, headers=AUTH)
        assert not_object.status_code == 400
        assert not_object.json() == {"error": "data must be an object"}
        refused = await http.post("/api/tools/refuse/execute", json={}, headers=AUTH)
        assert refused.status_code == 403
        assert refused.json() == {"error": "admins only"}
        crashed = await http.post("/api/tools/crash/execute", json={}, headers=AUTH)
        assert crashed.status_code == 500
        assert crashed.json() == {"error": "Tool crash failed"}
        assert "secret" not in crashed.text and "Traceback" not in crashed.text


async def test_tool_sees_the_caller_and_reserved_keys_are_stripped() -> None:
    body = {
        "data": {},
        "requestContext": {
            "user": {"id": "mallory"},
            "resourceId": "victim",
            "resource_id": "victim",
            "roles": ["owner"],
            "bastion__user": "x",
            "locale": "fr",
        },
    }
    async with client(make_app()) as http:
        result = (await http.post("/api/tools/whoami/execute", json=body, headers=AUTH)).json()
        assert result == {"result": {"user": USER, "resourceId": "ana", "values": {"locale": "fr"}}}
        bad = await http.post(
            "/api/tools/whoami/execute", json={"requestContext": []}, headers=AUTH
        )
        assert bad.status_code == 400
        assert bad.json() == {"error": "requestContext must be an object"}


async def test_generate() -> None:
    model = ScriptedModel(calls(("c1", "whoami", {}), tokens=2), text("It is ana.", tokens=3))
    body = {"messages": [{"role": "user", "content": "who am I?"}], "requestContext": {"x": 1}}
    async with client(make_app(model)) as http:
        response = await http.post("/api/agents/helper/generate", json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "text": "It is ana.",
        "toolCalls": [{"toolCallId": "c1", "toolName": "whoami", "args": {}}],
        "toolResults": [
            {
                "toolCallId": "c1",
                "toolName": "whoami",
                "result": {"user": USER, "resourceId": "ana", "values": {"x": 1}},
            }
        ],
        "finishReason": "stop",
        "usage": {"inputTokens": 5, "outputTokens": 5, "totalTokens": 10},
    }


async def test_generate_accepts_a_string_and_max_steps() -> None:
    model = ScriptedModel(calls(("c", "add", {"a": 1, "b": 1})))
    async with client(make_app(model)) as http:
        response = await http.post(
            "/api/agents/helper/generate", json={"messages": "go", "maxSteps": 2}, headers=AUTH
        )
    assert response.json()["finishReason"] == "tool_calls"
    assert len(model.calls) == 2
    assert model.calls[0][0][-1].content == "go"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "messages is required"),
        ({"messages": 3}, "messages must be a string or a list of messages"),
        ({"messages": []}, "messages must not be empty"),
        ({"messages": ["hi"]}, "messages[0] must be an object"),
        (
            {"messages": [{"role": "tool", "content": "x"}]},
            "messages[0].role must be one of: user, assistant, system",
        ),
        ({"messages": [{"role": "user", "content": 1}]}, "messages[0].content must be a string"),
        ({"messages": "hi", "maxSteps": 0}, "maxSteps must be an integer from 1 to 4"),
        ({"messages": "hi", "maxSteps": 5}, "maxSteps must be an integer from 1 to 4"),
        ({"messages": "hi", "maxSteps": True}, "maxSteps must be an integer from 1 to 4"),
        ({"messages": "hi", "threadId": 1}, "threadId must be a string"),
    ],
)
async def test_generate_bad_requests(body: dict[str, Any], error: str) -> None:
    async with client(make_app()) as http:
        response = await http.post("/api/agents/helper/generate", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json() == {"error": error}


async def test_bad_bodies() -> None:
    async with client(make_app()) as http:
        url = "/api/agents/helper/generate"
        json_type = {**AUTH, "Content-Type": "application/json"}
        invalid = await http.post(url, content=b"{nope", headers=json_type)
        assert (invalid.status_code, invalid.json()) == (400, {"error": "Invalid JSON body"})
        array = await http.post(url, content=b"[1]", headers=json_type)
        assert array.json() == {"error": "The request body must be a JSON object"}
        # A form post (what a cross-site page can send with a cookie) is refused.
        form = await http.post(url, data={"messages": "hi"}, headers=AUTH)
        assert form.status_code == 415
        assert form.json() == {"error": "Content-Type must be application/json"}
        big = await http.post(url, content=b" " * (1024 * 1024 + 1), headers=json_type)
        assert (big.status_code, big.json()) == (413, {"error": "Request body too large"})
        # An empty JSON body is an empty object.
        empty = await http.post("/api/tools/add/execute", headers=json_type)
        assert empty.status_code == 400 and "a: Field required" in empty.json()["error"]


async def test_model_error_is_502() -> None:
    app = make_app(ScriptedModel(ModelError("upstream said 500")))
    async with client(app) as http:
        response = await http.post(
            "/api/agents/helper/generate", json={"messages": "hi"}, headers=AUTH
        )
    assert response.status_code == 502
    assert response.json() == {"error": "upstream said 500"}


async def test_unexpected_model_failure_is_a_500_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(ScriptedModel(KeyError("adapter bug")))
    with caplog.at_level(logging.ERROR):
        async with client(app) as http:
            response = await http.post(
                "/api/agents/helper/generate", json={"messages": "hi"}, headers=AUTH
            )
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error"}
    assert "KeyError" in caplog.text


async def test_not_found_and_method_not_allowed_are_json() -> None:
    async with client(make_app(auth=None)) as http:
        assert (await http.get("/api/nope")).json() == {"error": "Not found"}
        response = await http.put("/api/tools")
        assert (response.status_code, response.headers["allow"]) == (405, "GET")
        assert (await http.head("/api/tools")).status_code == 200


# -- custom routes -------------------------------------------------------------------


async def hello(request: Request) -> Any:
    return {"hello": request.path_params.get("name"), "user": request.state.context.user}


async def test_custom_routes_require_auth_by_default_even_on_public_paths() -> None:
    app = make_app(
        auth=Recording({"good": USER}, public=["/api/open/*"]),
        routes=[route("/open/{name}", hello)],
    )
    async with client(app) as http:
        assert (await http.get("/api/open/x")).status_code == 401
        response = await http.get("/api/open/x", headers=AUTH)
        assert response.json() == {"hello": "x", "user": USER}


async def test_requires_auth_false_and_none() -> None:
    app = make_app(
        routes=[
            route("/ping", hello, requires_auth=False),
            route("/patterned/{name}", hello, requires_auth=None),
        ],
        auth=Recording({"good": USER}, public=[("/api/patterned/:name", "GET")]),
    )
    async with client(app) as http:
        assert (await http.get("/api/ping")).json() == {"hello": None, "user": None}
        assert (await http.get("/api/patterned/x")).json() == {"hello": "x", "user": None}


async def test_custom_route_methods_params_and_responses() -> None:
    async def echo(request: Request) -> Any:
        return {"method": request.method, "body": await request.json()}

    def plain(request: Request) -> Any:
        return PlainTextResponse(f"{request.path_params['a']}-{request.path_params['b']}")

    async def refuse(request: Request) -> Any:
        raise Forbidden()

    app = make_app(
        routes=[
            route("/echo", echo, methods=["POST", "put"]),
            route("/pair/{a}/{b}", plain),
            route("/refuse", refuse),
        ]
    )
    async with client(app) as http:
        assert (await http.put("/api/echo", json=[1], headers=AUTH)).json() == {
            "method": "PUT",
            "body": [1],
        }
        assert (await http.get("/api/echo", headers=AUTH)).status_code == 405
        assert (await http.get("/api/pair/x/y", headers=AUTH)).text == "x-y"
        refused = await http.get("/api/refuse", headers=AUTH)
        assert (refused.status_code, refused.json()) == (403, {"error": "Access denied"})


async def test_static_route_wins_over_a_parameter() -> None:
    async def featured(request: Request) -> Any:
        return "featured"

    app = make_app(routes=[route("/agents/featured", featured)])
    async with client(app) as http:
        assert (await http.get("/api/agents/featured", headers=AUTH)).json() == "featured"
        assert (await http.get("/api/agents/helper", headers=AUTH)).json()["id"] == "helper"


@pytest.mark.parametrize(
    "make",
    [
        lambda: route("/api/me", hello),
        lambda: route("me", hello),
        lambda: route("/me/{bad-name}", hello),
        lambda: route("/me/{a}/{a}", hello),
        lambda: route("/me", hello, methods=[]),
        lambda: Bastion(routes=[route("/me", hello, methods=["FETCH"])]),
        lambda: Bastion(routes=[route("/agents/{id}", hello)]),  # clashes with {agentId}
        lambda: Bastion(routes=[route("/tools", hello)]),  # GET /api/tools exists
        lambda: Bastion(routes=[route("/x", hello, requires_permission=[])]),
    ],
)
def test_bad_routes_fail_at_construction(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


# -- the Identity, mounting, lifespan ------------------------------------------------


class IdentityProvider(AuthProvider):
    """Stands in for IdentityAuth: a provider that carries an in-process Identity."""

    def __init__(self, identity: Identity) -> None:
        super().__init__()
        self.identity = identity

    async def authenticate_token(self, token: str, request: Any) -> Any:
        return USER if token == "good" else None


def identity() -> Identity:
    return Identity(
        secret="test-secret-0123456789abcdef0123456789abcdef",
        base_url="http://testserver",
        database="sqlite://",
        env={},
    )


async def test_identity_of_the_provider_is_mounted() -> None:
    app = Bastion(auth=IdentityProvider(identity()))
    async with client(app) as http:
        ok = await http.get("/api/auth/ok")
        assert (ok.status_code, ok.json()) == (200, {"ok": True})
        assert (await http.get("/api/agents")).status_code == 401


async def test_identity_given_directly_is_mounted_and_checked() -> None:
    given = identity()
    async with client(Bastion(identity=given)) as http:
        assert (await http.get("/api/auth/ok")).json() == {"ok": True}
    with pytest.raises(ValueError):
        Bastion(auth=IdentityProvider(identity()), identity=given)
    with pytest.raises(ValueError):
        Bastion(identity=given, routes=[route("/auth/extra", hello)])


async def test_mounted_inside_starlette() -> None:
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("host app")

    bastion = make_app(auth=SimpleAuth({"good": USER}), routes=[route("/me", hello)])
    host = Starlette(routes=[Route("/", home), Mount("/agents-server", app=bastion)])
    async with client(host) as http:
        assert (await http.get("/")).text == "host app"
        assert (await http.get("/agents-server/api")).json()["name"] == "bastion"
        assert (await http.get("/agents-server/health")).json() == {"status": "ok"}
        assert (await http.get("/agents-server/api/agents")).status_code == 401
        agents = await http.get("/agents-server/api/agents", headers=bearer("good"))
        assert list(agents.json()) == ["helper"]
        me = await http.get("/agents-server/api/me", headers=bearer("good"))
        assert me.json() == {"hello": None, "user": USER}


async def test_identity_mounted_inside_starlette() -> None:
    bastion = Bastion(auth=IdentityProvider(identity()))
    host = Starlette(routes=[Mount("/srv", app=bastion)])
    async with client(host) as http:
        assert (await http.get("/srv/api/auth/ok")).json() == {"ok": True}


async def test_lifespan_closes_the_identity() -> None:
    closed: list[bool] = []
    given = identity()
    original = given.close

    async def close() -> None:
        closed.append(True)
        await original()

    given.close = close  # type: ignore[method-assign]
    app = Bastion(identity=given)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert closed == [True]

    closed.clear()
    host = Starlette(routes=[Mount("/", app=Bastion(identity=given))], lifespan=app.lifespan)
    async with host.router.lifespan_context(host):
        pass
    assert closed == [True]


async def test_answers_are_json_typed() -> None:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://x/api") as api:
        response = await api.get("/agents", headers=AUTH)
        assert response.headers["content-type"] == "application/json"
