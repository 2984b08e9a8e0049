"""`AuthClient` / `AsyncAuthClient`: the better-auth HTTP protocol, as the JS client speaks it.

    client = AuthClient("http://127.0.0.1:4111")           # → http://127.0.0.1:4111/api/auth
    client.sign_up.email(email="ada@example.com", password="…", name="Ada")
    client.get_session()                                    # {"session", "user"} or None

Requests are what `createAuthClient` sends (spec §1.5): the same paths under the base URL,
JSON bodies with the server's camelCase names (`{}` for a POST without arguments), and an
`Origin` header (better-auth refuses cookie-carrying POSTs without a trusted one). Answers
are the server's JSON, as plain dicts; refusals raise `IdentityError(status, code, message)`.

Credentials: the http client's cookie jar keeps the session cookie; every `set-auth-token`
header (the server's bearer plugin) is kept as `client.token` and sent back as
`Authorization: Bearer …`. Pass `token=` to start from a saved token instead of cookies.
"""

from __future__ import annotations

from typing import Any

import httpx

from .errors import IdentityError
from .operations import AsyncHandle, RootSection, Section, SyncHandle, operation
from .transport import Async, Driver, M, Sync
from .wire import JSON, Call, Wire, compact, json_object, text_or_none

__all__ = ["AsyncAuthClient", "AuthAPI", "AuthClient", "SignIn", "SignUp"]

DEFAULT_BASE_PATH = "/api/auth"


class SignUp(Section[M]):
    @operation
    def email(
        self,
        /,
        *,
        email: str,
        password: str,
        name: str,
        image: str | None = None,
        callback_url: str | None = None,
        remember_me: bool | None = None,
        **extra: Any,
    ) -> Call[JSON]:
        """`POST /sign-up/email` → `{"token", "user"}` (token None when the server wants the
        email verified first). `extra`: additional user fields, under the server's names."""
        named = compact(
            name=name,
            email=email,
            password=password,
            image=image,
            callbackURL=callback_url,
            rememberMe=remember_me,
        )
        return Call("POST", "/sign-up/email", body={**named, **extra})


class SignIn(Section[M]):
    @operation
    def email(
        self,
        /,
        *,
        email: str,
        password: str,
        callback_url: str | None = None,
        remember_me: bool | None = None,
        **extra: Any,
    ) -> Call[JSON]:
        """`POST /sign-in/email` → `{"redirect", "token", "url"?, "user"}`, or a plugin's
        answer such as two-factor's `{"twoFactorRedirect": true, ...}`."""
        named = compact(
            email=email, password=password, callbackURL=callback_url, rememberMe=remember_me
        )
        return Call("POST", "/sign-in/email", body={**named, **extra})


def _auth_error(response: httpx.Response) -> IdentityError:
    body = json_object(response)
    message = text_or_none(body.get("message")) or response.reason_phrase or "error"
    return IdentityError(
        response.status_code, text_or_none(body.get("code")), message, response=response
    )


def _auth_wire(base_url: str, token: str | None, origin: str | None) -> Wire:
    # As createAuthClient: a base URL without a path gets better-auth's default base path.
    return Wire.at(
        base_url,
        path=lambda path: path or DEFAULT_BASE_PATH,
        token=token,
        origin=origin,
        error=_auth_error,
        capture_token=True,
    )


def _session_or_none(data: Any) -> JSON | None:
    # better-auth answers `null` when signed out; `{session: null}` means the same (§1.5).
    if isinstance(data, dict) and data.get("session"):
        return data
    return None


class AuthAPI(RootSection[M]):
    """The operations of `AuthClient` and `AsyncAuthClient` (one definition for both)."""

    sign_up: SignUp[M]
    sign_in: SignIn[M]
    _make_wire = staticmethod(_auth_wire)

    def _attach(self, driver: Driver[M]) -> None:
        super()._attach(driver)
        self.sign_up = SignUp(driver)
        self.sign_in = SignIn(driver)

    @operation
    def sign_out(self) -> Call[JSON]:
        """`POST /sign-out` → `{"success": true}`; the server clears the cookies and the
        client forgets its token."""
        return Call("POST", "/sign-out", body={}, ends_session=True)

    @operation
    def get_session(
        self, *, disable_cookie_cache: bool = False, disable_refresh: bool = False
    ) -> Call[JSON | None]:
        """`GET /get-session` → `{"session", "user"}`, or None when signed out."""
        params = {"disableCookieCache": "true"} if disable_cookie_cache else {}
        if disable_refresh:
            params["disableRefresh"] = "true"
        return Call("GET", "/get-session", params=params or None, read=_session_or_none)

    @operation
    def list_sessions(self) -> Call[list[JSON]]:
        """`GET /list-sessions` → the user's active sessions."""
        return Call("GET", "/list-sessions")

    @operation
    def revoke_session(self, token: str) -> Call[JSON]:
        """`POST /revoke-session` → `{"status": true}` (a session of this user, by token)."""
        return Call("POST", "/revoke-session", body={"token": token})

    @operation
    def revoke_sessions(self) -> Call[JSON]:
        """`POST /revoke-sessions`: every session of the user, this one included."""
        return Call("POST", "/revoke-sessions", body={}, ends_session=True)

    @operation
    def revoke_other_sessions(self) -> Call[JSON]:
        """`POST /revoke-other-sessions`: every session of the user but this one."""
        return Call("POST", "/revoke-other-sessions", body={})

    @operation
    def update_user(self, /, **fields: Any) -> Call[JSON]:
        """`POST /update-user` with `fields` as given (`name`, `image`, additional fields under
        the server's names; None is sent as null) → `{"status": true}`."""
        return Call("POST", "/update-user", body=fields)

    @operation
    def change_password(
        self, *, current_password: str, new_password: str, revoke_other_sessions: bool = False
    ) -> Call[JSON]:
        """`POST /change-password` → `{"token", "user"}`; with `revoke_other_sessions` the
        server ends every session and starts a new one (its cookie and token are kept)."""
        body = {
            "currentPassword": current_password,
            "newPassword": new_password,
            "revokeOtherSessions": revoke_other_sessions,
        }
        return Call("POST", "/change-password", body=body)

    @operation
    def change_email(self, *, new_email: str, callback_url: str | None = None) -> Call[JSON]:
        """`POST /change-email` → `{"status": true}` (what happens next is the server's
        change-email flow: a confirmation mail, or an immediate change)."""
        return Call(
            "POST", "/change-email", body=compact(newEmail=new_email, callbackURL=callback_url)
        )

    @operation
    def delete_user(
        self,
        *,
        password: str | None = None,
        token: str | None = None,
        callback_url: str | None = None,
    ) -> Call[JSON]:
        """`POST /delete-user` → `{"success": true, "message": "User deleted" | "Verification
        email sent"}`."""
        body = compact(password=password, token=token, callbackURL=callback_url)
        return Call("POST", "/delete-user", body=body)

    @operation
    def request_password_reset(self, *, email: str, redirect_to: str | None = None) -> Call[JSON]:
        """`POST /request-password-reset` → `{"status": true, "message"}`, whether or not the
        address is known; the mailed link leads to `redirect_to?token=…`."""
        body = compact(email=email, redirectTo=redirect_to)
        return Call("POST", "/request-password-reset", body=body)

    @operation
    def reset_password(self, *, new_password: str, token: str) -> Call[JSON]:
        """`POST /reset-password` with the token from the reset link → `{"status": true}`."""
        return Call("POST", "/reset-password", body={"newPassword": new_password, "token": token})

    @operation
    def send_verification_email(self, *, email: str, callback_url: str | None = None) -> Call[JSON]:
        """`POST /send-verification-email` → `{"status": true}`."""
        body = compact(email=email, callbackURL=callback_url)
        return Call("POST", "/send-verification-email", body=body)

    @operation
    def verify_email(self, *, token: str) -> Call[JSON]:
        """`GET /verify-email?token=…` → `{"status": true, "user": null}` (the link of the
        verification mail, followed without a callbackURL)."""
        return Call("GET", "/verify-email", params={"token": token})


class AuthClient(SyncHandle, AuthAPI[Sync]):
    """A better-auth client: `AuthClient(base_url, *, token=None, cookies=None, origin=None,
    http_client=None, timeout=...)`.

    `base_url`: the server's URL (`/api/auth` is added when it has no path) or the auth base
    URL itself; `token`: a saved bearer token; `cookies`: cookies to start with; `origin`: the
    Origin header (default: `base_url`'s origin); `http_client`: an `httpx.Client` to use
    (then `close()` leaves it open); `timeout`: for the client it makes.
    """


class AsyncAuthClient(AsyncHandle, AuthAPI[Async]):
    """`AuthClient` for asyncio: the same operations, awaited; `http_client` is an
    `httpx.AsyncClient`."""
