"""Issue 11, item 4: no 500 for malformed input.

- About 970 levels of JSON nesting (a 2 KB unauthenticated body) made the parser raise
  RecursionError: a plain-text 500 with a traceback on every identity endpoint, a JSON 500
  on `/api`. The depth is now counted on the text before parsing (identity/_untrusted.py,
  shared by both servers): 400.
- Lone surrogates (`"\\ud800"`, valid JSON that JavaScript clients send) reached scrypt,
  the database drivers and the JSON encoders: 500 on sign-in, change-password,
  reset-password, verify-password, update-user, revoke-session, thread create and update,
  and generate; a stream ended in an error event; a tool's 400 quoted UnicodeEncodeError.
- A NUL answered 500 on PostgreSQL (which refuses it in text) and was stored on SQLite; in a
  path parameter or query value of the identity it reached the database the same way.

Each is now a clean 400 naming where the value was — identity: `{"message": "[body.<field>]
Invalid input: …", "code": "VALIDATION_ERROR"}`; agent server: `{"error": "<field> …"}` —
refused before anything runs, so nothing is half-written.

Security check S39, "no NUL or lone surrogate
stored": text that a database or an encoder would refuse is refused at the edge (body values
and keys, form fields, query values, path parameters), with a 400.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bastion.identity import APIError
from bastion.server import tool
from bastion.server.local import LocalModel
from bastion.server.models import Message, ToolSpec
from bastion.server.tools import ToolInputError
from bastion.standalone import default_identity
from tests.identity.conftest import running
from tests.robustness.hostile_kit import (
    PASSWORD,
    SECRET,
    bearer,
    default_app,
    nested,
    post_raw,
    raw_json,
    sign_up,
)

DEEP_ARRAY = "[" * 970 + "]" * 970  # about 2 KB
SURROGATE = "\ud800"
NOT_UNICODE = "is not valid Unicode (a lone surrogate)"


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def identity_paths() -> list[str]:
    """Every POST path the default app's Identity serves, parameters filled in."""
    identity = default_identity({"BASTION_SECRET": SECRET, "DATABASE_URL": "sqlite://"})
    return sorted(
        endpoint.path.replace("{token}", "some-token")
        for endpoint in identity.endpoints.values()
        if "POST" in endpoint.methods and not endpoint.server_only
    )


def invalid(where: str, reason: str) -> dict[str, str]:
    return {"message": f"[{where}] Invalid input: {reason}", "code": "VALIDATION_ERROR"}


# -- nesting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP_ARRAY, nested(970)], ids=["arrays", "objects"])
async def test_item04_deep_json_is_a_400_on_every_identity_endpoint(body: str) -> None:
    paths = identity_paths()
    assert "/sign-in/email" in paths and "/update-user" in paths
    async with default_app() as http:
        for path in paths:
            answer = await post_raw(http, f"/api/auth{path}", body)
            assert answer.status_code == 400, (path, answer.text)
            assert answer.headers["content-type"] == "application/json"
            assert answer.json() == invalid("body", "is nested more than 32 levels deep"), path


@pytest.mark.parametrize("body", [DEEP_ARRAY, nested(970)], ids=["arrays", "objects"])
async def test_item04_deep_json_is_a_400_on_the_agent_server(body: str) -> None:
    async with default_app() as http:
        token = await sign_up(http, "ada@example.com")
        thread = await http.post("/api/memory/threads", json={}, headers=bearer(token))
        for method, path in [
            ("POST", "/api/memory/threads"),
            ("PATCH", f"/api/memory/threads/{thread.json()['id']}"),
            ("POST", "/api/agents/assistant/generate"),
            ("POST", "/api/agents/assistant/stream"),
            ("POST", "/api/tools/whoami/execute"),
        ]:
            answer = await http.request(
                method,
                path,
                content=body,
                headers={"content-type": "application/json", **bearer(token)},
            )
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json() == {
                "error": "The request body is nested more than 32 levels deep"
            }, path


# -- lone surrogates ---------------------------------------------------------------------------


async def test_item04_lone_surrogates_are_a_400_on_the_identity(dialect: str) -> None:
    async with default_app(dialect) as http:
        token = await sign_up(http, "ada@example.com")
        signed_in = bearer(token)
        cases: list[tuple[str, dict[str, Any], dict[str, str], dict[str, str]]] = [
            (
                "/sign-in/email",
                {"email": "ada@example.com", "password": SURROGATE},
                {},
                invalid("body.password", NOT_UNICODE),
            ),
            (
                "/sign-in/email",
                {"email": f"{SURROGATE}@example.com", "password": PASSWORD},
                {},
                invalid("body.email", NOT_UNICODE),
            ),
            (
                "/sign-up/email",
                {"name": SURROGATE, "email": "bob@example.com", "password": PASSWORD},
                {},
                invalid("body.name", NOT_UNICODE),
            ),
            (
                "/change-password",
                {"currentPassword": PASSWORD, "newPassword": SURROGATE * 8},
                signed_in,
                invalid("body.newPassword", NOT_UNICODE),
            ),
            (
                "/reset-password",
                {"newPassword": SURROGATE * 8, "token": "some-token"},
                {},
                invalid("body.newPassword", NOT_UNICODE),
            ),
            (
                "/verify-password",
                {"password": SURROGATE},
                signed_in,
                invalid("body.password", NOT_UNICODE),
            ),
            ("/update-user", {"name": SURROGATE}, signed_in, invalid("body.name", NOT_UNICODE)),
            (
                "/update-user",
                {SURROGATE: "x", "name": "Eve"},
                signed_in,
                invalid("body", f"has a key that {NOT_UNICODE}"),
            ),
            (
                "/revoke-session",
                {"token": SURROGATE},
                signed_in,
                invalid("body.token", NOT_UNICODE),
            ),
        ]
        for path, body, headers, expected in cases:
            answer = await post_raw(http, f"/api/auth{path}", raw_json(body), headers)
            assert (answer.status_code, answer.json()) == (400, expected), path
        # Nothing was half-written: the user, the password and the session are as they were.
        session = await http.get("/api/auth/get-session", headers=signed_in)
        assert session.json()["user"]["name"] == "Ada"
        again = await http.post(
            "/api/auth/sign-in/email", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert again.status_code == 200
        bob = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Bob", "email": "bob@example.com", "password": PASSWORD},
        )
        assert bob.status_code == 200


async def test_item04_lone_surrogates_are_a_400_on_the_agent_server(dialect: str) -> None:
    async with default_app(dialect) as http:
        token = await sign_up(http, "ada@example.com")
        headers = {"content-type": "application/json", **bearer(token)}
        thread = await http.post("/api/memory/threads", json={"title": "kept"}, headers=headers)
        thread_id = thread.json()["id"]
        cases: list[tuple[str, str, dict[str, Any], str]] = [
            ("POST", "/api/memory/threads", {"title": SURROGATE}, f"title {NOT_UNICODE}"),
            (
                "POST",
                "/api/memory/threads",
                {"metadata": {"k": [SURROGATE]}},
                f"metadata.k[0] {NOT_UNICODE}",
            ),
            (
                "PATCH",
                f"/api/memory/threads/{thread_id}",
                {"title": SURROGATE},
                "title " + NOT_UNICODE,
            ),
            (
                "POST",
                "/api/agents/assistant/generate",
                {"messages": SURROGATE, "threadId": thread_id},
                f"messages {NOT_UNICODE}",
            ),
            (
                "POST",
                "/api/agents/assistant/stream",
                {"messages": [{"role": "user", "content": SURROGATE}]},
                f"messages[0].content {NOT_UNICODE}",
            ),
            (
                "POST",
                "/api/tools/whoami/execute",
                {"data": {"x": SURROGATE}},
                f"data.x {NOT_UNICODE}",
            ),
        ]
        for method, path, body, message in cases:
            answer = await http.request(method, path, content=raw_json(body), headers=headers)
            assert answer.status_code == 400, (path, answer.text)
            assert answer.headers["content-type"] == "application/json"  # not a stream
            assert answer.json() == {"error": message}, path
        # Written into a `use` message the arguments reach the tool through the model: the
        # demo model refuses them as a body would be refused, and the thread stays readable.
        used = await http.post(
            "/api/agents/assistant/generate",
            json={"messages": f'use whoami {{"x": "{chr(92)}ud800"}}', "threadId": thread_id},
            headers=bearer(token),
        )
        assert used.status_code == 200, used.text
        assert used.json()["text"] == f"Cannot call whoami: x {NOT_UNICODE}."
        listed = await http.get(f"/api/memory/threads/{thread_id}/messages", headers=headers)
        assert listed.status_code == 200
        assert [m["role"] for m in listed.json()["messages"]] == ["user", "assistant"]
        threads = await http.get("/api/memory/threads", headers=headers)
        assert [t["title"] for t in threads.json()] == ["kept"]


async def test_item04_a_tools_input_error_names_the_value_not_the_encoder() -> None:
    @tool
    def echo(text: str) -> str:
        """Says it back."""
        return text

    with pytest.raises(ToolInputError) as refused:
        await echo.execute({"text": SURROGATE})
    assert str(refused.value) == f"text: {NOT_UNICODE.capitalize()}"
    assert "UnicodeEncodeError" not in str(refused.value)


# -- NUL ---------------------------------------------------------------------------------------


async def test_item04_nul_is_a_400_in_identity_bodies_queries_and_paths(dialect: str) -> None:
    nul = "contains a NUL character"
    async with default_app(dialect) as http:
        answer = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada\x00", "email": "ada@example.com", "password": PASSWORD},
        )
        assert (answer.status_code, answer.json()) == (400, invalid("body.name", nul))
        answer = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD, "x\x00": 1},
        )
        assert (answer.status_code, answer.json()) == (
            400,
            invalid("body", f"has a key that {nul}"),
        )
        answer = await http.post(
            "/api/auth/sign-in/email",
            content="email=ada%40example.com&password=pass%00word",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert (answer.status_code, answer.json()) == (400, invalid("body.password", nul))
        token = await sign_up(http, "ada@example.com")  # nothing of the above was stored
        answer = await http.post(
            "/api/auth/update-user", json={"image": "https://x.example/\x00"}, headers=bearer(token)
        )
        assert (answer.status_code, answer.json()) == (400, invalid("body.image", nul))
        # A path parameter and a query value that the handlers look up in the database.
        answer = await http.get("/api/auth/reset-password/abc%00def", params={"callbackURL": "/"})
        assert (answer.status_code, answer.json()) == (400, invalid("params.token", nul))
        answer = await http.get("/api/auth/verify-email", params={"token": "a\x00b"})
        assert (answer.status_code, answer.json()) == (400, invalid("query.token", nul))
        session = await http.get("/api/auth/get-session", headers=bearer(token))
        assert session.json()["user"]["image"] is None


# -- a `use` message with a long run of spaces --------------------------------------------------


def test_item04_local_model_reads_a_long_use_message_in_linear_time() -> None:
    """`use <tool> {` + 300,000 spaces + `}`: the pattern that read it took time quadratic
    in the spaces (about five minutes); it answers at once now. Run in a thread only so a
    regression fails the test instead of hanging it."""
    model = LocalModel()
    message = Message(role="user", content="use echo {" + " " * 300_000 + "}")
    spec = ToolSpec("echo", "Says it back.", {"type": "object"})
    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(model.respond([message], [spec])))
    worker.daemon = True
    worker.start()
    worker.join(timeout=60)
    assert answers, "LocalModel.respond did not finish"
    assert answers[0].tool_calls[0].arguments == {}


async def test_item04_an_identity_error_never_answers_text() -> None:
    """What escaped parse_body answered text/plain: every answer is JSON now."""
    async with default_app() as http:
        answer = await post_raw(http, "/api/auth/sign-in/email", DEEP_ARRAY)
        assert answer.headers["content-type"] == "application/json"
        answer = await http.post(
            "/api/auth/sign-in/email",
            content=b'{"email": NaN}',
            headers={"content-type": "application/json"},
        )
        assert (answer.status_code, answer.json()["message"]) == (
            400,
            "Invalid JSON in request body",
        )


async def test_item04_in_process_calls_are_checked_as_bodies_are() -> None:
    """`identity.api.<endpoint>(body=...)` never went through the parser: its values are
    walked the same way (without recursion, however deep a Python value nests)."""
    deep: dict[str, Any] = {}
    for _ in range(5000):
        deep = {"a": deep}
    async with running() as (identity, _):
        for body, expected in [
            ({"email": "ada@example.com", "password": "pass\x00word"}, "[body.password]"),
            ({"email": "ada@example.com", "password": SURROGATE}, "[body.password]"),
            ({"email": "ada@example.com", "password": PASSWORD, "x": deep}, "[body]"),
        ]:
            with pytest.raises(APIError) as refused:
                await identity.api.sign_in_email(body=body)
            assert refused.value.status == 400
            assert refused.value.body()["message"].startswith(f"{expected} Invalid input: ")
