"""The end-to-end account flow, driven through the official better-auth JS client.

`run_client_flow` knows nothing about which server it talks to: it takes a client (see
`tests/e2e/js_client.py`) and a mailbox that hands over the URL of the next email of a given
kind. The reference run is against the TypeScript better-auth server
(`test_js_client_against_better_auth.py`); the same function can be pointed at Bastion.

Every expectation below was observed on better-auth 1.7.25 in both client modes (cookie jar
and bearer token).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

MailKind = Literal["reset-password", "verify-email"]


class AuthClient(Protocol):
    async def call(self, path: str, args: dict[str, Any] | None = None) -> tuple[Any, Any]:
        """`client.<path>(args)` on the official client; its `(data, error)`."""
        ...


class MailBox(Protocol):
    async def next_url(self, kind: MailKind, to: str) -> str:
        """The link in the next (not yet handed out) email of `kind` sent to `to`."""
        ...


@dataclass
class FlowStep:
    name: str
    call: str
    seconds: float
    data: Any
    error: Any


@dataclass
class FlowResult:
    steps: list[FlowStep] = field(default_factory=list)
    mail_urls: dict[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    def timings(self) -> str:
        lines = [f"{step.seconds * 1000:8.1f} ms  {step.name}" for step in self.steps]
        lines.append(f"{self.seconds * 1000:8.1f} ms  total ({len(self.steps)} client calls)")
        return "\n".join(lines)


def reset_token_from_url(url: str) -> tuple[str, str | None]:
    """(token, callbackURL) from `{baseURL}/reset-password/<token>?callbackURL=<enc>`."""
    parts = urlsplit(url)
    _, marker, token = parts.path.rpartition("/reset-password/")
    assert marker and token and "/" not in token, f"not a reset-password link: {url}"
    callback = parse_qs(parts.query).get("callbackURL", [None])[0]
    return unquote(token), callback


def verify_token_from_url(url: str) -> str:
    """The token from `{baseURL}/verify-email?token=<jwt>&callbackURL=<enc>`."""
    parts = urlsplit(url)
    assert parts.path.endswith("/verify-email"), f"not a verify-email link: {url}"
    tokens = parse_qs(parts.query).get("token", [])
    assert len(tokens) == 1 and tokens[0], f"no token in {url}"
    return tokens[0]


async def run_client_flow(
    client: AuthClient, mails: MailBox, *, email: str, password: str
) -> FlowResult:
    """Sign-up → … → sign-out through the client; asserts every answer. `email` must be new
    (lower case) and `password` valid (8-128 characters)."""
    result = FlowResult()

    async def call(name: str, path: str, args: dict[str, Any] | None = None) -> Any:
        """Run one call, which must succeed; its data."""
        started = time.perf_counter()
        data, error = await client.call(path, args)
        result.steps.append(FlowStep(name, path, time.perf_counter() - started, data, error))
        assert error is None, f"{name}: {path}({args}) failed: {error}"
        return data

    async def call_error(name: str, path: str, args: dict[str, Any] | None = None) -> Any:
        """Run one call, which must fail; its error."""
        started = time.perf_counter()
        data, error = await client.call(path, args)
        result.steps.append(FlowStep(name, path, time.perf_counter() - started, data, error))
        assert error is not None, f"{name}: {path}({args}) should fail, got {data}"
        assert data is None, f"{name}: data beside the error: {data}"
        return error

    async def session(name: str) -> dict[str, Any]:
        data = await call(name, "getSession")
        assert isinstance(data, dict), f"{name}: signed out: {data}"
        assert set(data) >= {"session", "user"}, data
        assert data["session"]["userId"] == data["user"]["id"], data
        return data

    async def signed_out(name: str) -> None:
        data = await call(name, "getSession")
        assert data is None, f"{name}: still signed in: {data}"

    async def session_tokens(name: str) -> list[str]:
        data = await call(name, "listSessions")
        assert isinstance(data, list), f"{name}: {data}"
        for row in data:
            assert row["userId"] == user_id, row
        return sorted(row["token"] for row in data)

    new_password = password + "-changed"
    reset_password = password + "-reset"

    # 1. sign-up signs in at once
    data = await call(
        "sign-up", "signUp.email", {"email": email, "password": password, "name": "Flow User"}
    )
    user = data["user"]
    user_id = user["id"]
    assert user["email"] == email and user["name"] == "Flow User", user
    assert user["emailVerified"] is False, user
    assert isinstance(data["token"], str) and data["token"], data
    assert "password" not in user, user

    current = await session("get-session after sign-up")
    assert current["user"]["id"] == user_id
    assert current["session"]["token"] == data["token"], (current, data)

    # 2. sign-out, sign-in
    assert await call("sign-out", "signOut") == {"success": True}
    await signed_out("get-session after sign-out")

    data = await call("sign-in", "signIn.email", {"email": email, "password": password})
    assert data["redirect"] is False and data["user"]["id"] == user_id, data
    assert "url" not in data, data
    signed_in_token = data["token"]
    current = await session("get-session after sign-in")
    assert current["session"]["token"] == signed_in_token

    # 3. update-user
    assert await call("update-user", "updateUser", {"name": "Renamed User"}) == {"status": True}
    current = await session("get-session after update-user")
    assert current["user"]["name"] == "Renamed User", current

    # 4. change-password, revoking every other session: a new session replaces the old one
    data = await call(
        "change-password",
        "changePassword",
        {"currentPassword": password, "newPassword": new_password, "revokeOtherSessions": True},
    )
    changed_token = data["token"]
    assert isinstance(changed_token, str) and changed_token != signed_in_token, data
    assert data["user"]["id"] == user_id and data["user"]["name"] == "Renamed User", data
    current = await session("get-session after change-password")
    assert current["session"]["token"] == changed_token, current

    assert await session_tokens("list-sessions after change-password") == [changed_token]

    # 5. a second sign-in (old password refused) makes two sessions; revoke-other-sessions
    #    keeps only the current one
    error = await call_error(
        "sign-in with the old password", "signIn.email", {"email": email, "password": password}
    )
    assert (error["status"], error["code"]) == (401, "INVALID_EMAIL_OR_PASSWORD"), error
    data = await call(
        "sign-in with the new password", "signIn.email", {"email": email, "password": new_password}
    )
    second_token = data["token"]
    assert await session_tokens("list-sessions with two sessions") == sorted(
        [changed_token, second_token]
    )
    assert await call("revoke-other-sessions", "revokeOtherSessions") == {"status": True}
    assert await session_tokens("list-sessions after revoke-other-sessions") == [second_token]
    current = await session("get-session after revoke-other-sessions")
    assert current["session"]["token"] == second_token

    # 6. password reset by email
    data = await call(
        "request-password-reset", "requestPasswordReset", {"email": email, "redirectTo": "/reset"}
    )
    assert data["status"] is True, data
    url = await mails.next_url("reset-password", email)
    result.mail_urls["reset-password"] = url
    token, callback = reset_token_from_url(url)
    assert callback == "/reset", url
    data = await call(
        "reset-password", "resetPassword", {"newPassword": reset_password, "token": token}
    )
    assert data == {"status": True}, data
    error = await call_error(
        "reset-password with a used token",
        "resetPassword",
        {"newPassword": reset_password, "token": token},
    )
    assert (error["status"], error["code"]) == (400, "INVALID_TOKEN"), error

    error = await call_error(
        "sign-in with the replaced password",
        "signIn.email",
        {"email": email, "password": new_password},
    )
    assert (error["status"], error["code"]) == (401, "INVALID_EMAIL_OR_PASSWORD"), error
    data = await call(
        "sign-in after reset", "signIn.email", {"email": email, "password": reset_password}
    )
    assert data["user"]["id"] == user_id
    current = await session("get-session after reset")
    assert current["session"]["token"] == data["token"]
    assert current["user"]["emailVerified"] is False, current

    # 7. email verification
    data = await call("send-verification-email", "sendVerificationEmail", {"email": email})
    assert data == {"status": True}, data
    url = await mails.next_url("verify-email", email)
    result.mail_urls["verify-email"] = url
    token = verify_token_from_url(url)
    data = await call("verify-email", "verifyEmail", {"query": {"token": token}})
    assert data == {"status": True, "user": None}, data
    current = await session("get-session after verify-email")
    assert current["user"]["emailVerified"] is True, current
    assert current["user"]["name"] == "Renamed User", current

    # 8. sign-out ends it
    assert await call("final sign-out", "signOut") == {"success": True}
    await signed_out("get-session after the final sign-out")
    return result
