"""The agent server: agents, tools, memory and the HTTP API under /api."""

from .models import Message, Model, ModelResponse, ToolCall, ToolSpec

__all__ = ["Message", "Model", "ModelResponse", "ToolCall", "ToolSpec"]
