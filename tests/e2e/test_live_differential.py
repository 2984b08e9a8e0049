"""The same requests to TypeScript better-auth 1.7.25 and to Bastion; the answers compared.

A live complement to the golden transcripts (1.7.1, memory adapter): the real better-auth
server (`ba-peer.mjs serve`, bearer plugin, cookie cache on, delete-user on) and a Bastion
Identity configured alike, each on its own SQLite database, get one scripted sequence of core
requests — the same emails, passwords and bodies; the tokens each server mails are used on
that server. Each step is its own test, compared with `tests/e2e/wire.py` (status, content
type, headers, Set-Cookie names and attributes, JSON keys, types and non-volatile values).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bastion.identity import Identity, bearer
from bastion.identity.email import EmailLink
from tests.e2e.client_flow import MailKind
from tests.e2e.node_peer import BetterAuthServer, better_auth_server
from tests.e2e.wire import Answer, compare_answers
from tests.services import scratch_database

pytestmark = pytest.mark.e2e

SECRET = "live-differential-secret-0123456789abcdef0123"
BASTION = "http://127.0.0.1:4111"  # in-process: never listened on
EMAIL = "dana@example.com"
PASSWORD = "password123"
_LOGIN = {"email": EMAIL, "password": PASSWORD}


@dataclass(frozen=True)
class Case:
    """One request. `{name}` in the path or a body string is the server's own value of
    `name` (a token it mailed). `cookies`: the jar to send; `absorb`: the jar to update.
    `origin=False` sends no Origin header. `mail`: after the answer, take the token of the
    newest mail of that kind as the variable of the same name ("reset-password" → `reset`)."""

    label: str
    method: str
    path: str
    body: Any = None  # JSON; bytes are sent as they are
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: str | None = None
    absorb: str | None = None
    origin: bool = True
    mail: MailKind | None = None


def post(label: str, path: str, body: Any = None, **kw: Any) -> Case:
    return Case(label, "POST", path, body, **kw)


def get(label: str, path: str, **kw: Any) -> Case:
    return Case(label, "GET", path, **kw)


JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
CASES = (
    post("sign-up", "/sign-up/email", {"name": "Dana", **_LOGIN}, absorb="main"),
    post("sign-up-duplicate", "/sign-up/email", {"name": "Dana", **_LOGIN}),
    post(
        "sign-up-invalid-email", "/sign-up/email", {"name": "D", "email": "x", "password": "p" * 8}
    ),
    post(
        "sign-up-empty-password", "/sign-up/email", {"name": "D", "email": "e@x.io", "password": ""}
    ),
    post(
        "sign-up-long-password",
        "/sign-up/email",
        {"name": "D", "email": "l@x.io", "password": "p" * 129},
    ),
    post(
        "sign-up-name-number",
        "/sign-up/email",
        {"name": 42, "email": "n@x.io", "password": "p" * 8},
    ),
    post(
        "sign-up-form",
        "/sign-up/email",
        b"name=F&email=f%40x.io&password=password123",
        headers=FORM,
    ),
    post(
        "sign-up-image",
        "/sign-up/email",
        {"name": "I", "email": "i@x.io", "password": "p" * 8, "image": "https://x.io/i.png"},
    ),
    post(
        "sign-up-input-false-field",
        "/sign-up/email",
        {"name": "V", "email": "v@x.io", "password": "p" * 8, "emailVerified": True},
    ),
    # Erratum 17: sign-up's body is an object-or-record union, refused by both branches.
    post("sign-up-array-body", "/sign-up/email", [1]),
    post("sign-up-null-body", "/sign-up/email", b"null", headers=JSON),
    post("sign-up-string-body", "/sign-up/email", "name"),
    post("sign-up-empty-json-body", "/sign-up/email", b"", headers=JSON),
    post("sign-up-no-content-type", "/sign-up/email", b'{"name":"A"}'),
    post("sign-in-invalid-email", "/sign-in/email", {"email": "x", "password": PASSWORD}),
    post("sign-in-empty-password", "/sign-in/email", {"email": EMAIL, "password": ""}),
    post("sign-in-long-password", "/sign-in/email", {"email": EMAIL, "password": "p" * 129}),
    post(
        "sign-in-wrong-password", "/sign-in/email", {"email": EMAIL, "password": "wrong-password"}
    ),
    post("sign-in-no-content-type", "/sign-in/email", b'{"email":"a@b.io","password":"x"}'),
    post("sign-in-empty-json-body", "/sign-in/email", b"", headers=JSON),
    post("sign-in-empty-text-body", "/sign-in/email", b"", headers={"content-type": "text/plain"}),
    post("sign-in-empty-form-body", "/sign-in/email", b"", headers=FORM),
    post("sign-in-blank-json-body", "/sign-in/email", b"  ", headers=JSON),
    post("sign-in-array-body", "/sign-in/email", [1]),
    post(
        "sign-in-remember-me-false",
        "/sign-in/email",
        {**_LOGIN, "rememberMe": False},
        absorb="short",
    ),
    post("sign-in-callback", "/sign-in/email", {**_LOGIN, "callbackURL": "/dashboard"}),
    post(
        "sign-in-evil-callback", "/sign-in/email", {**_LOGIN, "callbackURL": "https://evil.example"}
    ),
    post(
        "sign-in-cross-site-navigate",
        "/sign-in/email",
        _LOGIN,
        headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"},
    ),
    # Issue 11 item 10: a CLI that always sends its (even garbage) token can sign in and up;
    # Node's fetch (`sec-fetch-mode: cors`, no Origin) is refused by both.
    post(
        "item10-sign-in-garbage-bearer",
        "/sign-in/email",
        _LOGIN,
        headers={"authorization": "Bearer garbage"},
        origin=False,
    ),
    post(
        "item10-sign-in-garbage-signed-bearer",
        "/sign-in/email",
        _LOGIN,
        headers={"authorization": "Bearer garbage.c2lnbmF0dXJl"},
        origin=False,
    ),
    post(
        "item10-sign-up-garbage-bearer",
        "/sign-up/email",
        {"name": "B", "email": "bearer@x.io", "password": "p" * 8},
        headers={"authorization": "Bearer garbage"},
        origin=False,
    ),
    post(
        "item10-sign-up-node-fetch-without-origin",
        "/sign-up/email",
        {"name": "N", "email": "node@x.io", "password": "p" * 8},
        headers={"sec-fetch-mode": "cors", "accept": "*/*", "user-agent": "node"},
        origin=False,
    ),
    post(
        "item02-sign-up-email-with-trailing-newline",
        "/sign-up/email",
        {"name": "Dana", "email": EMAIL + "\n", "password": PASSWORD},
    ),
    get("get-session-cached", "/get-session", cookies="main"),
    get("get-session-uncached", "/get-session?disableCookieCache=true", cookies="main"),
    get(
        "get-session-garbage-cookie",
        "/get-session",
        headers={"cookie": "better-auth.session_token=garbage"},
    ),
    get("get-session-garbage-bearer", "/get-session", headers={"authorization": "Bearer garbage"}),
    get("get-session-dont-remember", "/get-session?disableCookieCache=true", cookies="short"),
    post("get-session-post", "/get-session", cookies="main"),
    get("list-sessions", "/list-sessions", cookies="main"),
    get("list-sessions-signed-out", "/list-sessions"),
    post("update-user", "/update-user", {"name": "Dana B"}, cookies="main", absorb="main"),
    post("update-user-nothing", "/update-user", {}, cookies="main"),
    post("update-user-email", "/update-user", {"email": "new@x.io"}, cookies="main"),
    post("update-user-signed-out", "/update-user", {"name": "X"}),
    post(
        "update-user-evil-origin",
        "/update-user",
        {"name": "X"},
        cookies="main",
        headers={"origin": "https://evil.example"},
    ),
    post("update-user-no-origin", "/update-user", {"name": "X"}, cookies="main", origin=False),
    post("update-session-nothing", "/update-session", {"x": 1}, cookies="main"),
    post(
        "change-email-disabled", "/change-email", {"newEmail": "dana2@example.com"}, cookies="main"
    ),
    post(
        "change-password-wrong",
        "/change-password",
        {"currentPassword": "wrong-password", "newPassword": "p" * 10},
        cookies="main",
    ),
    post(
        "change-password-short",
        "/change-password",
        {"currentPassword": PASSWORD, "newPassword": "short"},
        cookies="main",
    ),
    post("verify-password", "/verify-password", {"password": PASSWORD}, cookies="main"),
    post("revoke-session-unknown", "/revoke-session", {"token": "unknown"}, cookies="main"),
    post(
        "send-verification-mismatch",
        "/send-verification-email",
        {"email": "other@x.io"},
        cookies="main",
    ),
    post(
        "send-verification",
        "/send-verification-email",
        {"email": EMAIL},
        cookies="main",
        mail="verify-email",
    ),
    get("verify-email", "/verify-email?token={verify}"),
    get("verify-email-again", "/verify-email?token={verify}"),
    get("verify-email-bad-token", "/verify-email?token=bad"),
    get("verify-email-bad-token-callback", "/verify-email?token=bad&callbackURL=/done"),
    post(
        "request-password-reset",
        "/request-password-reset",
        {"email": EMAIL, "redirectTo": "/reset"},
        mail="reset-password",
    ),
    post("request-password-reset-unknown", "/request-password-reset", {"email": "nobody@x.io"}),
    post(
        "request-password-reset-evil-redirect",
        "/request-password-reset",
        {"email": EMAIL, "redirectTo": "https://evil.example"},
    ),
    get("reset-password-link", "/reset-password/{reset}?callbackURL=/reset"),
    get("reset-password-link-bad-token", "/reset-password/bad?callbackURL=/reset"),
    get("reset-password-link-no-callback", "/reset-password/bad"),
    post("reset-password-short", "/reset-password", {"newPassword": "short", "token": "{reset}"}),
    post("reset-password-no-token", "/reset-password", {"newPassword": "p" * 10}),
    post("reset-password", "/reset-password", {"newPassword": PASSWORD, "token": "{reset}"}),
    post(
        "reset-password-used-token",
        "/reset-password",
        {"newPassword": PASSWORD, "token": "{reset}"},
    ),
    post("sign-in", "/sign-in/email", _LOGIN, absorb="main"),
    post(
        "change-password-revoking",
        "/change-password",
        {"currentPassword": PASSWORD, "newPassword": PASSWORD, "revokeOtherSessions": True},
        cookies="main",
        absorb="main",
    ),
    post("revoke-other-sessions", "/revoke-other-sessions", cookies="main"),
    post("revoke-sessions", "/revoke-sessions", cookies="main"),
    post("revoke-sessions-again", "/revoke-sessions", cookies="main"),
    get("delete-user-callback-signed-out", "/delete-user/callback?token=x"),
    post(
        "sign-up-to-delete",
        "/sign-up/email",
        {"name": "Del", "email": "del@x.io", "password": PASSWORD},
        absorb="del",
    ),
    post(
        "delete-user-wrong-password", "/delete-user", {"password": "wrong-password"}, cookies="del"
    ),
    post("delete-user", "/delete-user", {}, cookies="del"),
    post("sign-out-deleted", "/sign-out", cookies="del"),
    post("sign-out-signed-out", "/sign-out"),
    post("sign-out-empty-json-body", "/sign-out", b"", headers=JSON),
    get("ok", "/ok"),
    get("error-page", "/error?error=SOME_CODE"),
    get("unknown-path", "/does-not-exist"),
    get("wrong-method", "/sign-in/email"),
    get("trailing-slash", "/ok/"),
)

# Differences reported and not fixed yet: label -> bug, expected to fail (strict: once fixed
# the test passes, and its entry must go).
# Differences still open, each an xfail(strict=True) that fails once fixed. None now.
KNOWN_DIFFERENCES: dict[str, str] = {}


# --- running the script on both servers -----------------------------------------------------


class Side:
    """One server, its cookie jars and the tokens it mailed."""

    def __init__(self, base_url: str, send: Callable[[httpx.Request], Any]) -> None:
        self.base_url = base_url
        self.origin = base_url.removesuffix("/api/auth")
        self._send = send
        self.jars: dict[str, dict[str, str]] = {}
        self.vars: dict[str, str] = {}

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{(\w+)\}", lambda m: self.vars[m.group(1)], value)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    async def run(self, case: Case) -> Answer:
        headers = {"origin": self.origin} if case.origin else {}
        headers.update(case.headers)
        jar = self.jars.get(case.cookies or "", {})
        if jar:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        url = self.base_url + self.fill(case.path)
        if isinstance(case.body, bytes):
            request = httpx.Request(case.method, url, headers=headers, content=case.body)
        else:
            body = self.fill(case.body)
            request = httpx.Request(case.method, url, headers=headers, json=body)
        response = await self._send(request)
        await response.aread()
        answer = Answer.of(response)
        if case.absorb:
            jar = self.jars.setdefault(case.absorb, {})
            for line in answer.set_cookies:
                name, value = line.split(";", 1)[0].split("=", 1)
                if value and not re.search(r"Max-Age=0\b", line):
                    jar[name] = value
                else:
                    jar.pop(name, None)
        return answer


@dataclass
class Played:
    answers: dict[str, tuple[Answer, Answer] | BaseException]
    location: Callable[[str], str]  # better-auth's Location, in Bastion's terms


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def played() -> AsyncIterator[Played]:
    mails: list[tuple[str, EmailLink]] = []

    def mailer(kind: str) -> Any:
        async def send(link: EmailLink, request: Any) -> None:
            mails.append((kind, link))

        return send

    async with (
        scratch_database("sqlite") as ts_database,
        scratch_database("sqlite") as our_database,
        better_auth_server(
            ts_database,
            BETTER_AUTH_SECRET=SECRET,
            COOKIE_CACHE="1",
            BA_OPTIONS='{"user": {"deleteUser": {"enabled": true}}}',
        ) as server,
        httpx.AsyncClient(timeout=30) as client,
    ):
        identity = Identity(
            env={},
            secret=SECRET,
            base_url=BASTION,
            database=our_database,
            email_and_password={"enabled": True, "send_reset_password": mailer("reset-password")},
            email_verification={"send_verification_email": mailer("verify-email")},
            session={"cookie_cache": {"enabled": True}},
            user={"delete_user": {"enabled": True}},
            plugins=[bearer()],
        )
        await identity.migrate()
        transport = httpx.ASGITransport(app=identity.app)
        theirs = Side(server.base_url, client.send)
        ours = Side(f"{BASTION}/api/auth", transport.handle_async_request)
        answers: dict[str, tuple[Answer, Answer] | BaseException] = {}
        try:
            for case in CASES:
                try:
                    answers[case.label] = (await theirs.run(case), await ours.run(case))
                    if case.mail:
                        await _take_mail(case.mail, server, theirs, mails, ours)
                except Exception as exc:  # reported by that case's test
                    answers[case.label] = exc
        finally:
            await identity.close()
        yield Played(answers, _location_map(theirs, ours))


async def _take_mail(
    kind: MailKind, server: BetterAuthServer, theirs: Side, mails: list[Any], ours: Side
) -> None:
    name = "reset" if kind == "reset-password" else "verify"
    theirs.vars[name] = str((await server.next_mail(kind, EMAIL))["token"])
    ours.vars[name] = next(link.token for k, link in reversed(mails) if k == kind)


def _location_map(theirs: Side, ours: Side) -> Callable[[str], str]:
    def location(url: str) -> str:
        url = url.replace(theirs.origin, ours.origin)
        for name, value in theirs.vars.items():
            url = url.replace(value, ours.vars[name])
        return url

    return location


def _cases() -> list[Any]:
    params = []
    for case in CASES:
        known = KNOWN_DIFFERENCES.get(case.label)
        marks = [pytest.mark.xfail(strict=True, reason=known)] if known else []
        params.append(pytest.param(case.label, id=case.label, marks=marks))
    return params


@pytest.mark.parametrize("label", _cases())
def test_same_answer(played: Played, label: str) -> None:
    pair = played.answers[label]
    if isinstance(pair, BaseException):
        raise pair
    theirs, ours = pair
    problems = compare_answers(theirs, ours, location=played.location)
    assert not problems, (
        f"{label}\n  "
        + "\n  ".join(problems)
        + f"\nours: {ours.status} {ours.set_cookies}\n      {ours.text[:400]}"
        + f"\nbetter-auth: {theirs.status} {theirs.set_cookies}\n      {theirs.text[:400]}"
    )


def test_labels_are_unique_and_known_differences_exist() -> None:
    labels = [case.label for case in CASES]
    assert len(labels) == len(set(labels))
    assert set(KNOWN_DIFFERENCES) <= set(labels)
