"""The agent server: agents, tools, memory and the HTTP API under /api."""

from .agents import (
    Agent,
    AgentEvent,
    AgentTool,
    FinishEvent,
    Generation,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResult,
    ToolResultEvent,
)
from .app import Bastion
from .models import Message, Model, ModelError, ModelResponse, ToolCall, ToolSpec
from .routes import CustomRoute, route
from .tools import Tool, ToolInputError, tool

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentTool",
    "Bastion",
    "CustomRoute",
    "FinishEvent",
    "Generation",
    "Message",
    "Model",
    "ModelError",
    "ModelResponse",
    "TextDeltaEvent",
    "Tool",
    "ToolCall",
    "ToolCallEvent",
    "ToolInputError",
    "ToolResult",
    "ToolResultEvent",
    "ToolSpec",
    "route",
    "tool",
]
