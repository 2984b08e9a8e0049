"""`/api/agents`: list and describe agents, run one (`generate`, or `stream` as server-sent
events), with a memory thread when the request names one (runs.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from ..._openapi import Doc
from ...auth.context import RequestContext
from ..agents import Agent
from ..memory import Memory
from ..models import ModelError
from .bodies import RunBody
from .common import HTTPError
from .mastra_stream import stream_encoder
from .router import Router
from .runs import parse_messages, read_run
from .sse import EventStream
from .stream import run_events
from .tools import tool_json

__all__ = ["add_agent_routes", "agent_json", "parse_messages"]

logger = logging.getLogger("bastion.server")


def agent_json(agent_id: str, agent: Agent) -> dict[str, Any]:
    return {
        "id": agent_id,
        "name": agent.name,
        "instructions": agent.instructions,
        "modelId": agent.model.id,
        "tools": {tool_id: tool_json(tool) for tool_id, tool in agent.tools.items()},
    }


def add_agent_routes(
    router: Router, agents: Mapping[str, Agent], memory: Memory | None = None
) -> None:
    def find(agent_id: str) -> Agent:
        agent = agents.get(agent_id)
        if agent is None:
            raise HTTPError(404, f"Agent {agent_id} not found")
        return agent

    async def list_agents(request: Request, context: RequestContext) -> Any:
        return {agent_id: agent_json(agent_id, agent) for agent_id, agent in agents.items()}

    async def get_agent(request: Request, context: RequestContext) -> Any:
        agent_id = request.path_params["agentId"]
        return agent_json(agent_id, find(agent_id))

    async def generate(request: Request, context: RequestContext) -> Any:
        agent = find(request.path_params["agentId"])
        run = await read_run(request, context, agent, memory)
        try:
            generation = await agent.generate(
                run.transcript, context=context, max_steps=run.max_steps
            )
        except ModelError as exc:
            logger.warning("model of agent %s failed: %s", agent.id, exc)
            raise HTTPError(502, str(exc) or "The model failed") from None
        await run.save(generation.messages)
        return {**generation.to_json(), **run.thread_json()}

    async def stream(request: Request, context: RequestContext) -> Any:
        agent = find(request.path_params["agentId"])
        encode = stream_encoder(request)  # Bastion's events, or Mastra's chunks
        run = await read_run(request, context, agent, memory)
        return EventStream(run_events(agent, run, context, encode), encode)

    tags = ("Agents",)
    run_errors = (400, 403, 404, 502, 503)  # the body, a thread's owner, the model, memory
    router.add("/api/agents", ["GET"], list_agents, doc=Doc("List the agents", tags))
    router.add(
        "/api/agents/{agentId}", ["GET"], get_agent, doc=Doc("An agent", tags, errors=(404,))
    )
    router.add(
        "/api/agents/{agentId}/generate",
        ["POST"],
        generate,
        doc=Doc("Run an agent", tags, body=RunBody, errors=run_errors),
    )
    router.add(
        "/api/agents/{agentId}/stream",
        ["POST"],
        stream,
        doc=Doc(
            "Run an agent, its events as server-sent events",
            tags,
            body=RunBody,
            media_type="text/event-stream",
            errors=run_errors,
        ),
    )
