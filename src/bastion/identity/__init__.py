"""The self-hosted auth framework, wire-compatible with better-auth.

identity = Identity(email_and_password={"enabled": True}, plugins=[bearer()])
app = Starlette(routes=[Mount("/api/auth", identity.app)])
await identity.api.get_session(headers={"cookie": "..."})
result = await identity.get_session(request.headers)   # SessionResult, outside the endpoints
"""

from .app import API, Identity
from .db import DatabaseUnavailable
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
from .plugins import EndpointHook, Plugin
from .plugins.bearer import bearer
from .session_read import SessionResult, TrustCookieCache
from .storage import StorageUnavailable

__all__ = [
    "API",
    "APIError",
    "APIResponse",
    "Advanced",
    "ChangeEmail",
    "Code",
    "CookieCache",
    "Ctx",
    "DatabaseUnavailable",
    "DeleteUser",
    "EmailAndPassword",
    "EmailVerification",
    "Endpoint",
    "EndpointHook",
    "ErrorCode",
    "Identity",
    "IdentityOptions",
    "InsecureSecret",
    "Plugin",
    "RateLimitOptions",
    "SessionOptions",
    "SessionResult",
    "StorageUnavailable",
    "TrustCookieCache",
    "UserOptions",
    "bearer",
]
