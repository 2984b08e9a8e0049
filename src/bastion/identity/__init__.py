"""The self-hosted auth framework, wire-compatible with better-auth.

identity = Identity(email_and_password={"enabled": True}, plugins=[bearer()])
app = Starlette(routes=[Mount("/api/auth", identity.app)])
await identity.api.get_session(headers={"cookie": "..."})
"""

from .app import API, Identity
from .endpoint import APIResponse, Ctx, Endpoint
from .errors import APIError, Code, ErrorCode
from .options import (
    Advanced,
    ChangeEmail,
    CookieCache,
    DeleteUser,
    EmailAndPassword,
    EmailVerification,
    IdentityOptions,
    InsecureSecret,
    RateLimitOptions,
    SessionOptions,
    UserOptions,
)
from .plugins import Hook, Plugin
from .plugins.bearer import bearer
from .plugins.open_api import open_api

__all__ = [
    "API",
    "APIError",
    "APIResponse",
    "Advanced",
    "ChangeEmail",
    "Code",
    "CookieCache",
    "Ctx",
    "DeleteUser",
    "EmailAndPassword",
    "EmailVerification",
    "Endpoint",
    "ErrorCode",
    "Hook",
    "Identity",
    "IdentityOptions",
    "InsecureSecret",
    "Plugin",
    "RateLimitOptions",
    "SessionOptions",
    "UserOptions",
    "bearer",
    "open_api",
]
