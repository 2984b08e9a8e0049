"""GET /api/openapi.json: a valid OpenAPI 3.1 document of the agent server's route table,
with the configured auth and the public routes as the pipeline decides them.

The answers' conformance to it is test_openapi_schemathesis.py's.
"""

from __future__ import annotations

from typing import Any

import httpx
from openapi_spec_validator import validate

from bastion.auth import IdentityAuth, SimpleAuth
from bastion.identity import Identity
from bastion.server import Bastion, Memory, memory_plugin, route
from bastion.standalone import demo_agent, get_time, whoami
from tests.auth.doubles import client

PATH = "/api/openapi.json"
SECURED = {"bearerAuth", "apiKeyQuery"}


async def me(request: Any) -> dict[str, Any]:
    """The signed-in user."""
    return {"user": request.state.context.user}


async def status(request: Any) -> dict[str, Any]:
    return {"ok": True}


async def document(app: Bastion, base_url: str = "http://testserver") -> dict[str, Any]:
    async with client(app, base_url) as http:
        response = await http.get(PATH)  # no credential: the document is public
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    found: dict[str, Any] = response.json()
    validate(found)  # the OpenAPI 3.1 meta-schema
    return found


def schemes_of(operation: dict[str, Any]) -> set[str]:
    return {name for requirement in operation["security"] for name in requirement}


async def test_every_route_is_in_it_with_its_body_query_and_statuses() -> None:
    app = Bastion(
        agents=[demo_agent()],
        tools=[whoami, get_time],
        auth=SimpleAuth({"key": {"id": "ana"}}),
        memory=Memory("sqlite://"),
        routes=[route("/me", me), route("/status", status, requires_auth=False)],
    )
    doc = await document(app)
    served = {
        (template, method.lower())
        for template, methods in app.router.routes.items()
        for method in methods
        if method != "HEAD"
    }
    listed = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert listed == served
    generate = doc["paths"]["/api/agents/{agentId}/generate"]["post"]
    ref = generate["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"messages", "maxSteps", "threadId", "requestContext"} <= set(body["properties"])
    assert {"200", "400", "401", "404", "413", "415", "502"} <= set(generate["responses"])
    stream = doc["paths"]["/api/agents/{agentId}/stream"]["post"]["responses"]["200"]
    assert list(stream["content"]) == ["text/event-stream"]
    created = doc["paths"]["/api/memory/threads"]["post"]["responses"]
    assert "201" in created and "200" not in created and "409" in created
    listing = doc["paths"]["/api/memory/threads"]["get"]["parameters"]
    assert [p["name"] for p in listing] == ["resourceId", "limit", "offset", "page", "perPage"]
    agent = doc["paths"]["/api/agents/{agentId}"]["get"]["parameters"][0]
    assert agent["in"] == "path" and agent["schema"]["pattern"].startswith("^")
    custom = doc["paths"]["/api/me"]["get"]
    assert custom["summary"] == "The signed-in user." and custom["tags"] == ["Custom"]
    assert custom["operationId"] == "me"


async def test_public_routes_have_no_security_and_protected_ones_the_credentials() -> None:
    app = Bastion(
        agents=[demo_agent()],
        auth=SimpleAuth({"key": {"id": "ana"}}),
        routes=[route("/status", status, requires_auth=False)],
    )
    doc = await document(app)
    schemes = doc["components"]["securitySchemes"]
    assert set(schemes) == {*SECURED, "sessionCookie"}
    assert schemes["sessionCookie"]["name"] == "bastion-token"  # SimpleAuth reads it too
    for path in ("/api", "/health", PATH, "/api/status"):
        assert doc["paths"][path]["get"]["security"] == [], path
        assert "401" not in doc["paths"][path]["get"]["responses"]
    agents = doc["paths"]["/api/agents"]["get"]
    assert schemes_of(agents) == set(schemes)
    assert {"401", "403"} <= set(agents["responses"])


async def test_an_identity_adds_its_session_cookie() -> None:
    identity = Identity(
        env={},
        secret="test-secret-0123456789abcdef0123456789abcdef",
        database="sqlite://",
        email_and_password={"enabled": True},
        plugins=[memory_plugin()],
    )
    doc = await document(Bastion(agents=[demo_agent()], auth=IdentityAuth(identity)))
    cookie = doc["components"]["securitySchemes"]["sessionCookie"]
    assert cookie == {"type": "apiKey", "in": "cookie", "name": "better-auth.session_token"}
    assert schemes_of(doc["paths"]["/api/agents"]["get"]) == {*SECURED, "sessionCookie"}


async def test_without_auth_everything_is_public() -> None:
    doc = await document(Bastion(agents=[demo_agent()]))
    assert "securitySchemes" not in doc["components"]
    assert all(op["security"] == [] for item in doc["paths"].values() for op in item.values())


async def test_the_server_url_is_the_mount_point() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Bastion(agents=[demo_agent()])
    host = Starlette(routes=[Mount("/agents-service", app)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=host), base_url="http://testserver"
    ) as http:
        response = await http.get("/agents-service" + PATH)
    assert response.json()["servers"] == [{"url": "/agents-service"}]


async def test_it_can_be_turned_off() -> None:
    async with client(Bastion(agents=[demo_agent()], openapi=False)) as http:
        assert (await http.get(PATH)).status_code == 404
