"""Schemathesis against both OpenAPI documents: what the servers answer is what they say.

The default app (`bastion.standalone`'s Identity options, demo agent, tools and memory, the
open-api plugin added) in-process on an in-memory SQLite database, loaded through
schemathesis' ASGI transport: nothing leaves the process. For every operation of
`GET /api/openapi.json` (the agent server) and `GET /api/auth/open-api/generate-schema`
(the identity), schemathesis generates requests from the document — valid ones and ones
the schemas refuse — sent as a signed-in user (bearer token, trusted Origin) so that they
get past the guards. Checked for every answer: no 5xx; its status declared for the
operation; its content type declared for that status; its body valid against the declared
schema.

Bounded for CI: a few examples per operation, derandomized (the same on every run), no
deadline, no example database.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from bastion.auth import IdentityAuth
from bastion.identity import Identity, bearer, open_api
from bastion.identity.email import ConsoleMailer, reset_password_sender, verification_sender
from bastion.server import Bastion, Memory, memory_plugin
from bastion.serving import serving
from bastion.standalone import demo_agent, get_time, whoami

BASE = "http://127.0.0.1:4111"
EMAIL, PASSWORD = "owner@example.com", "correct-horse-battery"
CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def build(database: str) -> Any:
    mailer = ConsoleMailer()
    identity = Identity(
        env={},
        secret="a-test-secret-that-is-long-enough-0123456789",
        database=database,
        base_url=BASE,
        email_and_password={"enabled": True, "send_reset_password": reset_password_sender(mailer)},
        email_verification={"send_verification_email": verification_sender(mailer)},
        plugins=[bearer(), memory_plugin(), open_api()],
        rate_limit={"enabled": False},
    )
    return serving(
        Bastion(
            agents=[demo_agent()],
            tools=[whoami, get_time],
            auth=IdentityAuth(identity),
            memory=Memory(identity.db),
        )
    )


# A file, not `sqlite://`: schemathesis ends the app's lifespan after each test, and an
# in-memory database would go with it.
FOLDER = tempfile.TemporaryDirectory(prefix="bastion-schemathesis-")
APP = build(f"sqlite:///{FOLDER.name}/bastion.db")
DOCUMENTS = {
    "agent-server": "/api/openapi.json",
    "identity": "/api/auth/open-api/generate-schema",
}


class Owner:
    """A signed-in user; signed in again when an example ended the session."""

    def __init__(self) -> None:
        self.client = asgi.get_client(APP)
        self.client.__enter__()
        self.client.headers["origin"] = BASE
        self.token = ""
        signed_up = self.client.post(
            f"{BASE}/api/auth/sign-up/email",
            json={"name": "Owner", "email": EMAIL, "password": PASSWORD},
        )
        assert signed_up.status_code == 200, signed_up.text
        self.token = signed_up.headers["set-auth-token"]

    def headers(self) -> dict[str, str]:
        session = self.client.get(
            f"{BASE}/api/auth/get-session", headers={"authorization": f"Bearer {self.token}"}
        )
        if session.status_code != 200 or session.json() is None:
            signed_in = self.client.post(
                f"{BASE}/api/auth/sign-in/email", json={"email": EMAIL, "password": PASSWORD}
            )
            assert signed_in.status_code == 200, signed_in.text
            self.token = signed_in.headers["set-auth-token"]
        return {"authorization": f"Bearer {self.token}", "origin": BASE}


@pytest.fixture(scope="module")
def owner() -> Iterator[Owner]:
    yield Owner()
    FOLDER.cleanup()


def operations(document: str) -> list[Any]:
    schema = schemathesis.openapi.from_asgi(DOCUMENTS[document], APP)
    return [(document, result.ok()) for result in schema.get_all_operations()]


@pytest.mark.parametrize(
    ("document", "operation"),
    [*operations("agent-server"), *operations("identity")],
    ids=lambda v: v if isinstance(v, str) else v.label,
)
def test_answers_conform_to_the_document(owner: Owner, document: str, operation: Any) -> None:
    # Requests the document allows, and requests it refuses (which must be refused with a
    # declared status, not a 5xx).
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @EXAMPLES
    @given(case=cases)
    def attempt(case: Any) -> None:
        response = case.call(headers=owner.headers(), allow_redirects=False)
        case.validate_response(response, checks=CHECKS)

    attempt()


# Schemathesis always sends the content type an operation declares, so the 415 both
# documents declare is never drawn above: each operation with a body gets a request of
# another type here, for things that exist (the demo's agent and tool).
EXISTING = {"agentId": demo_agent().id, "toolId": whoami.id}


def with_bodies(document: str) -> list[Any]:
    return [(d, op) for d, op in operations(document) if op.body is not None and len(op.body)]


@pytest.mark.parametrize(
    ("document", "operation"),
    [*with_bodies("agent-server"), *with_bodies("identity")],
    ids=lambda v: v if isinstance(v, str) else v.label,
)
def test_a_body_of_another_type_is_the_declared_415(
    owner: Owner, document: str, operation: Any
) -> None:
    assert "415" in operation.definition.raw["responses"]

    @settings(EXAMPLES, max_examples=1)
    @given(case=operation.as_strategy(GenerationMode.POSITIVE))
    def attempt(case: Any) -> None:
        case.path_parameters = {
            name: EXISTING.get(name, value) for name, value in (case.path_parameters or {}).items()
        }
        case.media_type, case.body = "text/plain", "{}"
        response = case.call(headers=owner.headers(), allow_redirects=False)
        assert response.status_code == 415, (response.status_code, response.text)
        case.validate_response(response, checks=CHECKS)

    attempt()
