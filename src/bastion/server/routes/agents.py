"""`/api/agents`: list and describe agents, run one (`generate`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from ...auth.context import RequestContext
from ..agents import Agent
from ..models import Message, ModelError
from .common import ApiError, merge_request_context, read_json_object
from .router import Router
from .tools import tool_json

__all__ = ["add_agent_routes", "agent_json", "parse_messages"]

logger = logging.getLogger("bastion.server")

_ROLES = ("user", "assistant", "system")


def agent_json(agent_id: str, agent: Agent) -> dict[str, Any]:
    return {
        "id": agent_id,
        "name": agent.name,
        "instructions": agent.instructions,
        "modelId": agent.model.id,
        "tools": {tool_id: tool_json(tool) for tool_id, tool in agent.tools.items()},
    }


def parse_messages(value: Any) -> list[Message]:
    """`messages` of a request: one string (a user message) or a list of
    `{"role": "user" | "assistant" | "system", "content": str}`."""
    if value is None:
        raise ApiError(400, "messages is required")
    if isinstance(value, str):
        return [Message(role="user", content=value)]
    if not isinstance(value, list):
        raise ApiError(400, "messages must be a string or a list of messages")
    if not value:
        raise ApiError(400, "messages must not be empty")
    messages: list[Message] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ApiError(400, f"messages[{index}] must be an object")
        role, content = item.get("role"), item.get("content")
        if role not in _ROLES:
            raise ApiError(400, f"messages[{index}].role must be one of: {', '.join(_ROLES)}")
        if not isinstance(content, str):
            raise ApiError(400, f"messages[{index}].content must be a string")
        messages.append(Message(role=role, content=content))
    return messages


def _max_steps(value: Any, agent: Agent) -> int | None:
    if value is None:
        return None
    # A client may lower the agent's step limit, never raise it (each step is a model call).
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= agent.max_steps:
        raise ApiError(400, f"maxSteps must be an integer from 1 to {agent.max_steps}")
    return value


def add_agent_routes(router: Router, agents: Mapping[str, Agent]) -> None:
    def find(agent_id: str) -> Agent:
        agent = agents.get(agent_id)
        if agent is None:
            raise ApiError(404, f"Agent {agent_id} not found")
        return agent

    async def list_agents(request: Request, context: RequestContext) -> Any:
        return {agent_id: agent_json(agent_id, agent) for agent_id, agent in agents.items()}

    async def get_agent(request: Request, context: RequestContext) -> Any:
        agent_id = request.path_params["agentId"]
        return agent_json(agent_id, find(agent_id))

    async def generate(request: Request, context: RequestContext) -> Any:
        agent = find(request.path_params["agentId"])
        body = await read_json_object(request)
        messages = parse_messages(body.get("messages"))
        max_steps = _max_steps(body.get("maxSteps"), agent)
        for key in ("threadId", "resourceId"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise ApiError(400, f"{key} must be a string")
        merge_request_context(context, body)
        try:
            generation = await agent.generate(messages, context=context, max_steps=max_steps)
        except ModelError as exc:
            logger.warning("model of agent %s failed: %s", agent.id, exc)
            raise ApiError(502, str(exc) or "The model failed") from None
        return generation.to_json()

    router.add("/api/agents", ["GET"], list_agents)
    router.add("/api/agents/{agentId}", ["GET"], get_agent)
    router.add("/api/agents/{agentId}/generate", ["POST"], generate)
