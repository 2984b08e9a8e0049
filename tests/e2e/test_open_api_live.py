"""The open-api plugin's document, compared live with better-auth 1.7.25's own generator
(`openAPI()` on the real TypeScript server, tests/e2e/node/ba-peer.mjs) for the same
configuration: email and password, bearer, two-factor, magic link, email OTP, username,
organization with teams and dynamic roles, and generic OAuth with one provider (1.7.25's
generic OAuth adds no endpoint of its own: its providers sign in through `/sign-in/social`
and `/callback/{id}`, so neither document may gain an operation for it).

What must agree is what a client or a code generator reads: the document's frame, and for
every operation better-auth documents, the path, the method, the operation id (or its
absence) and the tags. Schemas are derived from each side's own declarations (zod there,
pydantic here) and are not compared; their validity is tests/identity/routes/test_open_api.py's.

Deliberately different: security. better-auth requires a cookie scheme named `apiKeyCookie`
and bearer together on every operation, sign-up included; Bastion names the session cookie
and says which operations need a session at all (tests/identity/routes/test_open_api.py).
The top-level tag list names every tag the operations use, where better-auth lists
`Default` only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bastion.identity import (
    bearer,
    email_otp,
    generic_oauth,
    magic_link,
    open_api,
    organization,
    two_factor,
    username,
)
from bastion.identity.plugins.organization import DEFAULT_STATEMENTS, create_access_control
from tests.e2e.node_peer import better_auth_server
from tests.identity.conftest import running
from tests.services import scratch_database

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PATH = "/open-api/generate-schema"
METHODS = ("get", "post", "put", "patch", "delete")

# Operations Bastion documents and better-auth 1.7.25 does not: the plugin's own endpoint
# (better-auth leaves its generate-schema out of the document it generates).
ONLY_BASTION: frozenset[tuple[str, str]] = frozenset({("get", PATH)})


ORGANIZATION = '{"teams": {"enabled": true}, "dynamicAccessControl": {"enabled": true}}'
# Endpoints given outright: neither server fetches a discovery document to start.
GENERIC_OAUTH = {
    "providerId": "acme",
    "authorizationUrl": "http://127.0.0.1:9/authorize",
    "tokenUrl": "http://127.0.0.1:9/token",
    "clientId": "acme-client",
    "clientSecret": "acme-secret",
}


async def _unsent(*args: Any, **kwargs: Any) -> None:
    """No mail is sent: the document is all these tests read."""


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): item[method]
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def theirs() -> AsyncIterator[dict[str, Any]]:
    async with (
        scratch_database("sqlite") as database_url,
        better_auth_server(
            database_url,
            PLUGINS="magic-link,email-otp,username,open-api",
            TWO_FACTOR="{}",
            ORGANIZATION=ORGANIZATION,
            GENERIC_OAUTH=json.dumps([GENERIC_OAUTH]),
        ) as server,
        httpx.AsyncClient() as client,
    ):
        response = await client.get(server.base_url + PATH)
        assert response.status_code == 200, response.text
        yield response.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ours() -> AsyncIterator[dict[str, Any]]:
    plugins = [
        bearer(),
        two_factor(),
        magic_link(send_magic_link=_unsent),
        email_otp(send_verification_otp=_unsent),
        username(),
        organization(
            ac=create_access_control(DEFAULT_STATEMENTS),
            teams={"enabled": True},
            dynamic_access_control={"enabled": True},
        ),
        generic_oauth(
            config=[
                {
                    "provider_id": GENERIC_OAUTH["providerId"],
                    "authorization_url": GENERIC_OAUTH["authorizationUrl"],
                    "token_url": GENERIC_OAUTH["tokenUrl"],
                    "client_id": GENERIC_OAUTH["clientId"],
                    "client_secret": GENERIC_OAUTH["clientSecret"],
                }
            ]
        ),
        open_api(),
    ]
    async with running(plugins=plugins) as (_, client):
        response = await client.get(PATH)
        assert response.status_code == 200, response.text
        yield response.json()


async def test_the_frame_is_better_auths(theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["openapi"] == theirs["openapi"] == "3.1.1"
    assert set(ours) == set(theirs)
    assert ours["info"]["description"] == theirs["info"]["description"]
    assert set(ours["components"]["schemas"]) >= set(theirs["components"]["schemas"])


async def test_every_operation_is_documented_as_better_auth_documents_it(
    theirs: dict[str, Any], ours: dict[str, Any]
) -> None:
    their_operations, our_operations = operations(theirs), operations(ours)
    assert set(our_operations) - set(their_operations) == ONLY_BASTION
    assert set(their_operations) - set(our_operations) == set()
    for key, theirs_op in their_operations.items():
        ours_op = our_operations[key]
        assert ours_op.get("operationId") == theirs_op.get("operationId"), key
        assert ours_op.get("tags") == theirs_op.get("tags"), key


async def test_the_tags_list_holds_better_auths_and_every_operations(
    theirs: dict[str, Any], ours: dict[str, Any]
) -> None:
    listed = [t["name"] for t in ours["tags"]]
    assert listed[: len(theirs["tags"])] == [t["name"] for t in theirs["tags"]]
    used = {tag for operation in operations(ours).values() for tag in operation["tags"]}
    assert set(listed) == used
