"""Errors the identity endpoints answer with, as better-auth renders them.

An `ErrorCode` member's name is the wire `code` and its value the `message`; plugins
subclass `ErrorCode` for their own. Handlers raise `APIError(status, Code.X)`; the endpoint
runner renders it once as `{"message", "code"}`.
"""

from __future__ import annotations

from enum import Enum, unique
from typing import Any

__all__ = [
    "RETRY_AFTER_SECONDS",
    "STATUS_TEXT",
    "APIError",
    "Code",
    "ErrorCode",
    "service_unavailable",
    "too_many_requests",
]


class ErrorCode(Enum):
    @property
    def code(self) -> str:
        return self.name

    @property
    def message(self) -> str:
        return str(self.value)


@unique
class Code(ErrorCode):
    """better-auth's BASE_ERROR_CODES and the ad-hoc codes of its core routes (spec §2)."""

    USER_NOT_FOUND = "User not found"
    FAILED_TO_CREATE_USER = "Failed to create user"
    FAILED_TO_CREATE_SESSION = "Failed to create session"
    FAILED_TO_UPDATE_USER = "Failed to update user"
    FAILED_TO_GET_SESSION = "Failed to get session"
    INVALID_PASSWORD = "Invalid password"
    INVALID_EMAIL = "Invalid email"
    INVALID_EMAIL_OR_PASSWORD = "Invalid email or password"
    INVALID_USER = "Invalid user"
    SOCIAL_ACCOUNT_ALREADY_LINKED = "Social account already linked"
    PROVIDER_NOT_FOUND = "Provider not found"
    INVALID_TOKEN = "Invalid token"
    TOKEN_EXPIRED = "Token expired"
    ID_TOKEN_NOT_SUPPORTED = "id_token not supported"
    FAILED_TO_GET_USER_INFO = "Failed to get user info"
    USER_EMAIL_NOT_FOUND = "User email not found"
    EMAIL_NOT_VERIFIED = "Email not verified"
    PASSWORD_TOO_SHORT = "Password too short"
    PASSWORD_TOO_LONG = "Password too long"
    USER_ALREADY_EXISTS = "User already exists."
    USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL = "User already exists. Use another email."
    EMAIL_CAN_NOT_BE_UPDATED = "Email can not be updated"
    CHANGE_EMAIL_DISABLED = "Change email is disabled"
    CREDENTIAL_ACCOUNT_NOT_FOUND = "Credential account not found"
    FAILED_TO_UNLINK_LAST_ACCOUNT = "You can't unlink your last account"
    ACCOUNT_NOT_FOUND = "Account not found"
    LINKED_ACCOUNT_ALREADY_EXISTS = "Linked account already exists"
    SESSION_EXPIRED = "Session expired. Re-authenticate to perform this action."
    CROSS_SITE_NAVIGATION_LOGIN_BLOCKED = (
        "Cross-site navigation login blocked. This request appears to be a CSRF attack."
    )
    VERIFICATION_EMAIL_NOT_ENABLED = "Verification email isn't enabled"
    EMAIL_ALREADY_VERIFIED = "Email is already verified"
    EMAIL_MISMATCH = "Email mismatch"
    SESSION_NOT_FRESH = "Session is not fresh"
    INVALID_ORIGIN = "Invalid origin"
    INVALID_CALLBACK_URL = "Invalid callbackURL"
    INVALID_REDIRECT_URL = "Invalid redirectURL"
    INVALID_ERROR_CALLBACK_URL = "Invalid errorCallbackURL"
    INVALID_NEW_USER_CALLBACK_URL = "Invalid newUserCallbackURL"
    MISSING_OR_NULL_ORIGIN = "Missing or null Origin"
    CALLBACK_URL_REQUIRED = "callbackURL is required"
    FAILED_TO_CREATE_VERIFICATION = "Unable to create verification"
    FIELD_NOT_ALLOWED = "Field not allowed to be set"
    VALIDATION_ERROR = "Validation Error"
    MISSING_FIELD = "Field is required"
    METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED = (
        "POST method requires deferSessionRefresh to be enabled in session config"
    )
    BODY_MUST_BE_AN_OBJECT = "Body must be an object"
    EMAIL_PASSWORD_SIGN_UP_DISABLED = "Email and password sign up is not enabled"
    EMAIL_PASSWORD_DISABLED = "Email and password is not enabled"
    RESET_PASSWORD_DISABLED = "Reset password isn't enabled"
    # Ad-hoc codes of the social and account routes (better-auth 1.7.25's own words).
    OAUTH_LINK_ERROR = "unable to link account"
    LINKING_NOT_ALLOWED = "Account not linked - linking not allowed"
    LINKING_DIFFERENT_EMAILS_NOT_ALLOWED = "Account not linked - different emails not allowed"
    LINKING_FAILED = "Account not linked - unable to create account"
    PROVIDER_NOT_SUPPORTED = "Provider is not supported."
    PROVIDER_NOT_CONFIGURED = "Account is not associated with a configured social provider."
    TOKEN_REFRESH_NOT_SUPPORTED = "Provider does not support token refreshing."
    REFRESH_TOKEN_NOT_FOUND = "Refresh token not found"
    FAILED_TO_REFRESH_ACCESS_TOKEN = "Failed to refresh access token"
    FAILED_TO_GET_ACCESS_TOKEN = "Failed to get a valid access token"
    ACCESS_TOKEN_NOT_FOUND = "Access token not found"
    USER_ID_OR_SESSION_REQUIRED = "Either userId or session is required"
    UNAUTHORIZED = "Unauthorized"
    BAD_REQUEST = "Bad Request"
    UNSUPPORTED_MEDIA_TYPE = "Unsupported Media Type"
    INTERNAL_SERVER_ERROR = "Internal Server Error"
    SERVICE_UNAVAILABLE = "The database is unavailable. Try again later."
    REQUEST_TOO_LARGE = "Request body is too large"


STATUS_TEXT = {
    200: "OK",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    417: "Expectation Failed",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def too_many_requests(retry_after: int) -> APIError:
    """better-auth's 429, with the standard Retry-After beside its X-Retry-After (S5)."""
    seconds = str(max(retry_after, 0))
    return APIError(
        429,
        None,
        "Too many requests. Please try again later.",
        headers={"x-retry-after": seconds, "retry-after": seconds},
    )


RETRY_AFTER_SECONDS = 5  # what a 503 for a storage outage asks clients to wait
_SECONDARY_STORAGE_UNAVAILABLE = "The secondary storage is unavailable. Try again later."


def service_unavailable(*, secondary_storage: bool = False) -> APIError:
    """503 SERVICE_UNAVAILABLE for a storage that did not answer, with `Retry-After`. The
    message names the storage that is down: the database (the code's own message), or the
    secondary storage (Redis). better-auth has no such answer (an outage is its 500); the
    code and the shape are Bastion's."""
    return APIError(
        503,
        Code.SERVICE_UNAVAILABLE,
        _SECONDARY_STORAGE_UNAVAILABLE if secondary_storage else None,
        headers={"retry-after": str(RETRY_AFTER_SECONDS)},
    )


class APIError(Exception):
    """An error answer: `APIError(401, Code.INVALID_EMAIL_OR_PASSWORD)`.

    `message` overrides the code's message (better-auth sends e.g. "<field> is not allowed
    to be set" with FIELD_NOT_ALLOWED); `code=None` sends only a message; neither sends an
    empty body, as `APIError.fromStatus` does in better-auth.
    """

    def __init__(
        self,
        status: int,
        code: ErrorCode | None = None,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code  # the member until rendered: callers compare members, not text
        self.message = message if message is not None else (code.message if code else None)
        self.headers = headers or {}
        super().__init__(self.message or STATUS_TEXT.get(status, str(status)))

    def body(self) -> dict[str, Any] | None:
        if self.message is None and self.code is None:
            return None
        out: dict[str, Any] = {}
        if self.message is not None:
            out["message"] = self.message
        if self.code is not None:
            out["code"] = self.code.code
        return out

    def __repr__(self) -> str:
        return f"APIError({self.status}, code={self.code!r}, message={self.message!r})"
