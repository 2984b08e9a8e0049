"""The agent server's error answers: one type, rendered one way.

    HTTPError                       {"error": message} with `status` and `headers()`
    └── bastion.auth.AuthError      the auth pipeline's refusals (401, 403, 503, …)

A handler raises `HTTPError(404, "Agent x not found")`; the router renders it, and whatever
the auth pipeline refuses with, as `{"error": ...}` with the status and headers. (The
identity endpoints answer better-auth's `{"message", "code"}` instead: `bastion.identity.
APIError`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

__all__ = ["HTTPError"]


class HTTPError(Exception):
    status: int = 500
    error: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        status: int | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.error)
        if status is not None:
            self.status = status
        self.message = message
        self._headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        return {"error": self.message or self.error}

    def headers(self) -> dict[str, str]:
        return dict(self._headers)
