"""The agent server: agents, tools, models, memory and the HTTP API under /api."""

from ..errors import HTTPError
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
from .cors import CORS, trusted_cors
from .local import LocalModel
from .memory import (
    InvalidMemoryInput,
    Memory,
    MemoryStoreError,
    MemoryTablesMissing,
    StoredMessage,
    Thread,
    ThreadAccessDenied,
    ThreadExists,
    ThreadNotFound,
    memory_plugin,
)
from .models import (
    Finish,
    Message,
    Model,
    ModelError,
    ModelResponse,
    StreamChunk,
    TextDelta,
    ToolCall,
    ToolCallChunk,
    ToolSpec,
    Usage,
)
from .openai import OpenAIModel
from .routes import CustomRoute, route
from .tools import (
    FunctionTool,
    Tool,
    ToolInputError,
    ToolOutputError,
    ToolPermissionDenied,
    tool,
)

__all__ = [
    "CORS",
    "Agent",
    "AgentEvent",
    "AgentTool",
    "Bastion",
    "CustomRoute",
    "Finish",
    "FinishEvent",
    "FunctionTool",
    "Generation",
    "HTTPError",
    "InvalidMemoryInput",
    "LocalModel",
    "Memory",
    "MemoryStoreError",
    "MemoryTablesMissing",
    "Message",
    "Model",
    "ModelError",
    "ModelResponse",
    "OpenAIModel",
    "StoredMessage",
    "StreamChunk",
    "TextDelta",
    "TextDeltaEvent",
    "Thread",
    "ThreadAccessDenied",
    "ThreadExists",
    "ThreadNotFound",
    "Tool",
    "ToolCall",
    "ToolCallChunk",
    "ToolCallEvent",
    "ToolInputError",
    "ToolOutputError",
    "ToolPermissionDenied",
    "ToolResult",
    "ToolResultEvent",
    "ToolSpec",
    "Usage",
    "memory_plugin",
    "route",
    "tool",
    "trusted_cors",
]
