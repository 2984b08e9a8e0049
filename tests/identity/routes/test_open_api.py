"""GET /open-api/generate-schema (the open-api plugin): a valid OpenAPI 3.1 document made
from the running Identity's endpoint declarations, a plugin's included.

The answers' conformance to it is tests/server/test_openapi_schemathesis.py's.
"""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import Field

from bastion.identity import Ctx, Endpoint, Plugin, bearer, open_api
from bastion.identity.db import Field as DbField
from bastion.identity.sessions import session_required
from bastion.identity.validation import Body
from tests.identity.conftest import BASE, running

PATH = "/open-api/generate-schema"


class NoteBody(Body):
    text: str = Field(max_length=100)
    pinned_at: str | None = Field(None, alias="pinnedAt")


async def add_note(ctx: Ctx[NoteBody]) -> dict[str, Any]:
    return {"text": ctx.body.text}


async def get_note(ctx: Ctx[Any]) -> dict[str, Any]:
    return {"id": ctx.params["id"]}


def notes() -> Plugin:
    """A plugin as an application writes one: two endpoints, one with a path parameter."""
    return Plugin(
        id="notes",
        endpoints=(
            Endpoint("/notes", ("POST",), add_note, name="add_note", body=NoteBody),
            Endpoint(
                "/notes/{id}",
                ("GET",),
                get_note,
                name="get_note",
                openapi_tags=("Notes", "Reading"),
                use=(session_required,),
            ),
            Endpoint("/notes/hidden", ("GET",), get_note, name="hidden", server_only=True),
        ),
    )


async def document(**options: Any) -> dict[str, Any]:
    async with running(**options) as (_, client):
        response = await client.get(PATH)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        found: dict[str, Any] = response.json()
        return found


async def test_the_document_is_valid_openapi_of_every_endpoint() -> None:
    doc = await document(plugins=[bearer(), open_api()])
    validate(doc)  # the OpenAPI 3.1 meta-schema
    assert doc["openapi"] == "3.1.1"
    assert doc["servers"] == [{"url": f"{BASE}/api/auth"}]
    assert {"/sign-up/email", "/get-session", "/reset-password/{token}", PATH} <= set(doc["paths"])
    assert set(doc["paths"]["/get-session"]) == {"get", "post"}
    assert doc["paths"]["/get-session"]["post"]["operationId"] == "getSessionPost"
    assert doc["paths"]["/sign-in/email"]["post"]["operationId"] == "signInEmail"
    assert doc["paths"][PATH]["get"]["tags"] == ["Open-api"]  # better-auth's plugin tag
    assert {"User", "Session", "Account", "Verification"} <= set(doc["components"]["schemas"])
    # Fields the API never returns are not in the models.
    assert "password" not in doc["components"]["schemas"]["Account"]["properties"]


async def test_bodies_and_queries_carry_the_wire_names() -> None:
    doc = await document(plugins=[bearer(), open_api()])
    sign_up = doc["paths"]["/sign-up/email"]["post"]["requestBody"]
    # JSON and the HTML form, as the endpoint accepts both.
    assert list(sign_up["content"]) == ["application/json", "application/x-www-form-urlencoded"]
    ref = sign_up["content"]["application/json"]["schema"]["$ref"]
    body = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"callbackURL", "rememberMe"} <= set(body["properties"])
    assert "callback_url" not in body["properties"]
    assert sorted(body["required"]) == ["email", "name", "password"]
    query = doc["paths"]["/get-session"]["get"]["parameters"]
    assert [(p["name"], p["in"]) for p in query] == [
        ("disableCookieCache", "query"),
        ("disableRefresh", "query"),
    ]
    token = doc["paths"]["/reset-password/{token}"]["get"]["parameters"][0]
    assert token["name"] == "token" and token["in"] == "path" and token["required"] is True
    error_page = doc["paths"]["/error"]["get"]["responses"]["200"]["content"]
    assert list(error_page) == ["text/html"]  # the handler returns an HTML page


async def test_a_plugins_endpoints_are_in_it_under_their_tags() -> None:
    doc = await document(plugins=[notes(), open_api()])
    validate(doc)
    add = doc["paths"]["/notes"]["post"]
    assert add["tags"] == ["Notes"]  # none declared: the plugin's id
    ref = add["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["pinnedAt"]
    get = doc["paths"]["/notes/{id}"]["get"]
    assert get["tags"] == ["Notes", "Reading"]
    assert get["parameters"][0]["name"] == "id"
    assert "/notes/hidden" not in doc["paths"]  # server-only: no URL
    assert {"Notes", "Reading"} <= {tag["name"] for tag in doc["tags"]}


@pytest.mark.parametrize("with_bearer", [True, False])
async def test_security_follows_the_configuration(with_bearer: bool) -> None:
    plugins = [notes(), open_api(), *([bearer()] if with_bearer else [])]
    doc = await document(plugins=plugins, advanced={"cookie_prefix": "app"})
    schemes = doc["components"]["securitySchemes"]
    assert schemes["sessionCookie"]["name"] == "app.session_token"
    assert ("bearerAuth" in schemes) is with_bearer
    guarded = doc["paths"]["/notes/{id}"]["get"]["security"]
    assert {} not in guarded  # a session is required
    assert {} in doc["paths"]["/sign-up/email"]["post"]["security"]  # optional there
    assert ({"bearerAuth": []} in guarded) is with_bearer


async def test_without_the_plugin_there_is_no_document() -> None:
    async with running() as (_, client):
        assert (await client.get(PATH)).status_code == 404


async def test_additional_fields_are_in_the_bodies_that_take_them() -> None:
    doc = await document(
        plugins=[open_api()],
        user={
            "additional_fields": {
                "nickname": DbField(type="string"),
                "role": DbField(type="string", required=False, input=False),
            }
        },
        session={"additional_fields": {"device": DbField(type="string", required=False)}},
    )
    validate(doc)
    sign_up = doc["paths"]["/sign-up/email"]["post"]["requestBody"]["content"]
    ref, extra = sign_up["application/json"]["schema"]["allOf"]
    assert ref["$ref"].endswith("/SignUpBody")
    assert extra["properties"] == {"nickname": {"type": "string"}}  # `role` is not input
    assert extra["required"] == ["nickname"]  # required on create
    update = doc["paths"]["/update-user"]["post"]["requestBody"]["content"]
    assert "required" not in update["application/json"]["schema"]
    session = doc["paths"]["/update-session"]["post"]["requestBody"]["content"]
    assert session["application/json"]["schema"]["properties"] == {"device": {"type": "string"}}
    # The model of what the API returns has both, `role` read-only.
    user = doc["components"]["schemas"]["User"]["properties"]
    assert user["role"] == {"type": "string", "readOnly": True}
