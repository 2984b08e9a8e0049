"""`/api/tools`: list and describe tools, run one (`execute`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from ..._openapi import Doc
from ...auth.context import RequestContext
from ...auth.errors import PermissionDenied
from ..agents import AgentTool
from ..tools import ToolInputError, ToolPermissionDenied, authorize_tool
from .bodies import ExecuteBody
from .common import HTTPError, merge_request_context, read_json_object
from .router import Router

__all__ = ["add_tool_routes", "tool_json"]

logger = logging.getLogger("bastion.server")


def tool_json(tool: AgentTool) -> dict[str, Any]:
    return {"id": tool.id, "description": tool.description, "inputSchema": tool.input_schema}


def add_tool_routes(router: Router, tools: Mapping[str, AgentTool]) -> None:
    def find(tool_id: str) -> AgentTool:
        tool = tools.get(tool_id)
        if tool is None:
            raise HTTPError(404, f"Tool {tool_id} not found")
        return tool

    async def list_tools(request: Request, context: RequestContext) -> Any:
        return {tool_id: tool_json(tool) for tool_id, tool in tools.items()}

    async def get_tool(request: Request, context: RequestContext) -> Any:
        return tool_json(find(request.path_params["toolId"]))

    async def execute(request: Request, context: RequestContext) -> Any:
        tool = find(request.path_params["toolId"])
        try:  # before the body is read: a refused caller learns nothing of the input
            authorize_tool(tool, context)
        except ToolPermissionDenied as exc:  # the pipeline's own 403 for a missing grant
            raise PermissionDenied(exc.required) from None
        body = await read_json_object(request)
        args = body.get("data", {})
        if not isinstance(args, dict):
            raise HTTPError(400, "data must be an object")
        merge_request_context(context, body)
        try:
            result = await tool.execute(args, context)
        except ToolInputError as exc:
            raise HTTPError(400, str(exc)) from None
        except ToolPermissionDenied as exc:
            raise PermissionDenied(exc.required) from None
        except PermissionError as exc:  # the tool refused this caller
            raise HTTPError(403, str(exc) or "Access denied") from None
        except Exception as exc:
            logger.exception("tool %s raised %s", tool.id, type(exc).__name__)
            raise HTTPError(500, f"Tool {tool.id} failed") from None
        return {"result": result}

    tags = ("Tools",)
    router.add("/api/tools", ["GET"], list_tools, doc=Doc("List the tools", tags))
    router.add("/api/tools/{toolId}", ["GET"], get_tool, doc=Doc("A tool", tags, errors=(404,)))
    router.add(
        "/api/tools/{toolId}/execute",
        ["POST"],
        execute,
        # 400: input the tool's schema refuses; 403: the caller lacks the tool's
        # requires_permission, or the tool refused the caller.
        doc=Doc("Run a tool", tags, body=ExecuteBody, errors=(400, 403, 404)),
    )
