"""What the clients raise when the server says no, or says something they cannot read.

    ClientError          any answer a client refuses to hand back as a result
    ├── IdentityError    the identity server (better-auth protocol) answered 4xx/5xx:
    │                    `status`, `code` (e.g. "INVALID_EMAIL_OR_PASSWORD", None when the
    │                    body had none) and `message`
    ├── BastionError     the agent API answered 4xx/5xx: `status`, `message` (its "error"),
    │                    `detail` (the "message" beside it, e.g. the missing RBAC permission)
    └── ProtocolError    a 2xx/3xx answer that is not what the endpoint sends (not JSON, an
                         unexpected redirect, a stream that is not text/event-stream, a stream
                         event whose data is not the documented JSON)

Network failures are httpx's own exceptions (`httpx.ConnectError`, `httpx.TimeoutException`,
all `httpx.TransportError`), raised as they are.
"""

from __future__ import annotations

import httpx

__all__ = ["BastionError", "ClientError", "IdentityError", "ProtocolError"]


class ClientError(Exception):
    """The base of every error the clients raise for an answer (not for the network)."""

    def __init__(self, status: int, message: str, *, response: httpx.Response | None = None):
        super().__init__(status, message)
        self.status = status
        self.message = message
        # The answer itself, for headers such as X-Retry-After on a 429.
        self.response = response

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


class IdentityError(ClientError):
    """The identity server refused: better-auth's `{"message", "code"}` with its status."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        response: httpx.Response | None = None,
    ):
        super().__init__(status, message, response=response)
        self.code = code
        self.args = (status, code, message)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}" if self.code else super().__str__()


class BastionError(ClientError):
    """The agent API refused: its `{"error": message}` (plus `"message"` as `detail`)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        detail: str | None = None,
        response: httpx.Response | None = None,
    ):
        super().__init__(status, message, response=response)
        self.detail = detail

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.detail})" if self.detail else text


class ProtocolError(ClientError):
    """The server answered, without an error status, something this client cannot read."""
