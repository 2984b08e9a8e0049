"""The self-hosted auth framework, wire-compatible with better-auth.

identity = Identity(email_and_password={"enabled": True}, plugins=[bearer()])
app = Starlette(routes=[Mount("/api/auth", identity.app)])
await identity.api.get_session(headers={"cookie": "..."})
"""

from .app import API, Identity
from .context import AuthContext
from .cookies import CookieAttributes
from .endpoint import JSON, JSON_OR_FORM, APIResponse, Ctx, Endpoint, RawResponse, Redirect
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
from .plugins import EndpointHook, Plugin, SignInCheck
from .plugins.bearer import bearer
from .plugins.open_api import open_api
from .ratelimit import RateRule
from .sessions import (
    clear_session_cookies,
    complete_sign_in,
    fresh_session,
    sensitive_session,
    session_required,
    set_session_cookie,
)
from .store import DatabaseHooks, SessionWithUser
from .validation import Body

__all__ = [
    "API",
    "JSON",
    "JSON_OR_FORM",
    "APIError",
    "APIResponse",
    "Advanced",
    "AuthContext",
    "Body",
    "ChangeEmail",
    "Code",
    "CookieAttributes",
    "CookieCache",
    "Ctx",
    "DatabaseHooks",
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
    "RateRule",
    "RawResponse",
    "Redirect",
    "SessionOptions",
    "SessionWithUser",
    "SignInCheck",
    "UserOptions",
    "bearer",
    "clear_session_cookies",
    "complete_sign_in",
    "fresh_session",
    "open_api",
    "sensitive_session",
    "session_required",
    "set_session_cookie",
]
