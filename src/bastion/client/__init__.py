"""Python clients for Bastion: the identity server (better-auth protocol) and the agent API.

    from bastion.client import AuthClient, BastionClient

    with AuthClient("http://127.0.0.1:4111") as auth:
        auth.sign_in.email(email="ada@example.com", password="correct horse battery")
        with BastionClient("http://127.0.0.1:4111", token=auth.token) as bastion:
            print(bastion.agents.generate("weather", "Rain in Paris?")["text"])

`AsyncAuthClient` and `AsyncBastionClient` have the same operations, awaited. See
docs/client.md.
"""

from .agents import Agents, AsyncBastionClient, BastionAPI, BastionClient, Threads, Tools
from .auth import AsyncAuthClient, AuthAPI, AuthClient, SignIn, SignUp
from .errors import BastionError, ClientError, IdentityError, ProtocolError
from .events import (
    AgentEvent,
    ErrorEvent,
    FinishEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    UnknownEvent,
    parse_event,
)
from .sse import ServerSentEvent, SSEDecoder, aiter_sse, iter_sse
from .transport import AsyncEventStream, EventStream

__all__ = [
    "AgentEvent",
    "Agents",
    "AsyncAuthClient",
    "AsyncBastionClient",
    "AsyncEventStream",
    "AuthAPI",
    "AuthClient",
    "BastionAPI",
    "BastionClient",
    "BastionError",
    "ClientError",
    "ErrorEvent",
    "EventStream",
    "FinishEvent",
    "IdentityError",
    "ProtocolError",
    "SSEDecoder",
    "ServerSentEvent",
    "SignIn",
    "SignUp",
    "TextDeltaEvent",
    "Threads",
    "ToolCallEvent",
    "ToolResultEvent",
    "Tools",
    "UnknownEvent",
    "aiter_sse",
    "iter_sse",
    "parse_event",
]
