"""With $OPENAI_API_KEY the default app's demo agent talks to an OpenAI-compatible server
($OPENAI_BASE_URL, $OPENAI_MODEL): here a stand-in on 127.0.0.1, over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from bastion.server.local import LocalModel
from bastion.server.openai import OpenAIModel
from bastion.standalone import demo_agent, demo_model
from tests.e2e.default_server import serve_default
from tests.server.openai_standin import STANDIN_KEY, serve_standin

SECRET = "test-secret-0123456789abcdef0123456789abcdef"


def test_the_model_follows_the_environment() -> None:
    assert isinstance(demo_model({}), LocalModel)
    assert isinstance(demo_model({"OPENAI_API_KEY": "  "}), LocalModel)
    chosen = demo_model({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert isinstance(chosen, OpenAIModel)
    assert chosen.model == "gpt-4o-mini"
    named = demo_model({"OPENAI_API_KEY": "sk-x", "OPENAI_MODEL": "llama3.2"})
    assert isinstance(named, OpenAIModel) and named.model == "llama3.2"
    # demo_agent() alone stays on LocalModel, whatever the process environment says.
    assert isinstance(demo_agent().model, LocalModel)


async def test_the_default_app_uses_the_openai_compatible_server(tmp_path: Path) -> None:
    async with serve_standin() as standin:
        env = {
            "BASTION_SECRET": SECRET,
            "DATABASE_URL": f"sqlite:///{tmp_path}/bastion.db",
            "OPENAI_API_KEY": STANDIN_KEY,
            "OPENAI_BASE_URL": standin.base_url,
            "OPENAI_MODEL": "standin-model",
        }
        async with serve_default(env) as origin, httpx.AsyncClient(base_url=origin) as http:
            signed_up = await http.post(
                "/api/auth/sign-up/email",
                json={"name": "Ada", "email": "ada@example.com", "password": "horse battery"},
            )
            assert signed_up.status_code == 200, signed_up.text
            agents = (await http.get("/api/agents")).json()
            host = standin.base_url.split("//")[1].split("/")[0]
            assert agents["assistant"]["modelId"] == f"{host}/standin-model"

            # The stand-in calls the tool named in the message, then says what it returned.
            said = await http.post(
                "/api/agents/assistant/generate", json={"messages": "whoami please"}
            )
            assert said.status_code == 200, said.text
            body = said.json()
            assert body["toolResults"][0]["toolName"] == "whoami"
            assert body["toolResults"][0]["result"]["email"] == "ada@example.com"
            assert body["text"].startswith("Tool said:")
            assert "ada@example.com" in body["text"]

    first = standin.requests[0]
    assert first.headers["authorization"] == f"Bearer {STANDIN_KEY}"
    assert first.body["model"] == "standin-model"
    assert {t["function"]["name"] for t in first.body["tools"]} == {"whoami", "get_time"}
    assert len(standin.requests) == 2  # the tool call, then the answer
