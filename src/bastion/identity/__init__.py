"""The self-hosted auth framework, wire-compatible with better-auth.

identity = Identity(email_and_password={"enabled": True}, plugins=[bearer()])
app = Starlette(routes=[Mount("/api/auth", identity.app)])
await identity.api.get_session(headers={"cookie": "..."})
result = await identity.get_session(request.headers)   # SessionResult, outside the endpoints
"""

from ._session_read import SessionResult, TrustCookieCache
from .app import API, Identity
from .context import AuthContext
from .cookies import CookieAttributes
from .db import DatabaseUnavailable
from .email import (
    ConsoleMailer,
    EmailDeliveryError,
    EmailLink,
    EmailMessage,
    EmailSender,
    Mailer,
    SMTPMailer,
    change_email_sender,
    delete_account_sender,
    reset_password_sender,
    verification_sender,
)
from .endpoint import JSON, JSON_OR_FORM, APIResponse, Ctx, Endpoint, RawResponse, Redirect
from .errors import APIError, Code, ErrorCode
from .options import (
    AccountLinking,
    AccountOptions,
    Advanced,
    ChangeEmail,
    CookieCache,
    DeleteUser,
    EmailAndPassword,
    EmailVerification,
    IdentityOptions,
    InsecureSecret,
    PasswordOptions,
    RateLimitOptions,
    SessionOptions,
    UserOptions,
)
from .plugins import EndpointHook, Plugin, SignInCheck
from .plugins.access import AccessControl, Role, create_access_control
from .plugins.bearer import bearer
from .plugins.email_otp import EmailOTP, EmailOTPCode, email_otp, otp_sender
from .plugins.generic_oauth import generic_oauth
from .plugins.magic_link import MagicLinkEmail, magic_link, magic_link_sender
from .plugins.open_api import open_api
from .plugins.organization import (
    InvitationEmail,
    OrganizationCode,
    invitation_sender,
    organization,
)
from .plugins.two_factor import TwoFactorCode, TwoFactorOTP, two_factor
from .plugins.username import UsernameCode, username
from .ratelimit import RateRule
from .sessions import (
    auth_cookie,
    clear_session_cookies,
    complete_sign_in,
    cookie_attributes,
    expire_auth_cookie,
    fresh_session,
    sensitive_session,
    session_required,
    set_session_cookie,
)
from .social import SocialProvider
from .storage import (
    MemoryStorage,
    RedisNotInstalled,
    RedisStorage,
    SecondaryStorage,
    StorageError,
    StorageUnavailable,
)
from .store import DatabaseHooks, SessionWithUser
from .validation import Body

__all__ = [
    "API",
    "JSON",
    "JSON_OR_FORM",
    "APIError",
    "APIResponse",
    "AccessControl",
    "AccountLinking",
    "AccountOptions",
    "Advanced",
    "AuthContext",
    "Body",
    "ChangeEmail",
    "Code",
    "ConsoleMailer",
    "CookieAttributes",
    "CookieCache",
    "Ctx",
    "DatabaseHooks",
    "DatabaseUnavailable",
    "DeleteUser",
    "EmailAndPassword",
    "EmailDeliveryError",
    "EmailLink",
    "EmailMessage",
    "EmailOTP",
    "EmailOTPCode",
    "EmailSender",
    "EmailVerification",
    "Endpoint",
    "EndpointHook",
    "ErrorCode",
    "Identity",
    "IdentityOptions",
    "InsecureSecret",
    "InvitationEmail",
    "MagicLinkEmail",
    "Mailer",
    "MemoryStorage",
    "OrganizationCode",
    "PasswordOptions",
    "Plugin",
    "RateLimitOptions",
    "RateRule",
    "RawResponse",
    "Redirect",
    "RedisNotInstalled",
    "RedisStorage",
    "Role",
    "SMTPMailer",
    "SecondaryStorage",
    "SessionOptions",
    "SessionResult",
    "SessionWithUser",
    "SignInCheck",
    "SocialProvider",
    "StorageError",
    "StorageUnavailable",
    "TrustCookieCache",
    "TwoFactorCode",
    "TwoFactorOTP",
    "UserOptions",
    "UsernameCode",
    "auth_cookie",
    "bearer",
    "change_email_sender",
    "clear_session_cookies",
    "complete_sign_in",
    "cookie_attributes",
    "create_access_control",
    "delete_account_sender",
    "email_otp",
    "expire_auth_cookie",
    "fresh_session",
    "generic_oauth",
    "invitation_sender",
    "magic_link",
    "magic_link_sender",
    "open_api",
    "organization",
    "otp_sender",
    "reset_password_sender",
    "sensitive_session",
    "session_required",
    "set_session_cookie",
    "two_factor",
    "username",
    "verification_sender",
]
