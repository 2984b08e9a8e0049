"""Issue 11, item 2 (validation part): full-match semantics wherever a pattern validates input.

`_EMAIL.match` with a pattern ending in `$` accepted "victim@example.com\\n" (`$` also matches
before a final newline): a look-alike second account of the victim's address, whose reset
and verification requests then answered 500. better-auth 1.7.25 refuses that address at
sign-up with 400 `[body.email] Invalid email address`; every route that takes an address now
answers as it does. The other patterns that judged request input (the identity's dynamic
routes and error page, the agent server's routes, the auth pipeline's path patterns) match
whole strings too.

Security check S36, "full-match validation": a
pattern that validates input matches the whole value (`fullmatch`, or `\\Z`), never `$`.
"""

from __future__ import annotations

import httpx
import pytest

from bastion.auth.patterns import PatternSet, compile_path
from bastion.identity.validation import is_email
from tests.robustness.hostile_kit import PASSWORD, bearer, default_app, sign_up

VICTIM = "victim@example.com"
LOOK_ALIKE = VICTIM + "\n"
INVALID = {"message": "[body.email] Invalid email address", "code": "VALIDATION_ERROR"}


def test_item02_the_email_pattern_matches_the_whole_address() -> None:
    assert is_email(VICTIM)
    assert not is_email(LOOK_ALIKE)
    assert not is_email(VICTIM + "\r\n")
    assert not is_email("\n" + VICTIM)


async def test_item02_look_alike_sign_up_is_refused_as_better_auth_refuses_it() -> None:
    async with default_app() as http:
        await sign_up(http, VICTIM)
        answer = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Mallory", "email": LOOK_ALIKE, "password": PASSWORD},
        )
        assert answer.status_code == 400
        assert answer.json() == INVALID
        # Nothing was created: the victim's account is the only one with that address.
        again = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Mallory", "email": VICTIM, "password": PASSWORD},
        )
        assert again.status_code == 422
        assert again.json()["code"] == "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"


async def test_item02_every_route_answers_the_look_alike_as_better_auth() -> None:
    async with default_app() as http:
        token = await sign_up(http, VICTIM)
        answers: dict[str, httpx.Response] = {
            "sign-in": await http.post(
                "/api/auth/sign-in/email", json={"email": LOOK_ALIKE, "password": PASSWORD}
            ),
            "request-password-reset": await http.post(
                "/api/auth/request-password-reset", json={"email": LOOK_ALIKE}
            ),
            "send-verification-email": await http.post(
                "/api/auth/send-verification-email", json={"email": LOOK_ALIKE}
            ),
            "change-email": await http.post(
                "/api/auth/change-email", json={"newEmail": LOOK_ALIKE}, headers=bearer(token)
            ),
        }
        assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 400)
        # sign-in checks the address by hand (spec §3.2); the others with zod's z.email().
        assert answers["sign-in"].json() == {"message": "Invalid email", "code": "INVALID_EMAIL"}
        assert answers["request-password-reset"].json() == INVALID
        assert answers["send-verification-email"].json() == INVALID
        assert answers["change-email"].json() == {
            "message": "[body.newEmail] Invalid email address",
            "code": "VALIDATION_ERROR",
        }


async def test_item02_identity_error_page_takes_a_code_only_when_it_is_all_safe() -> None:
    async with default_app() as http:
        page = await http.get("/api/auth/error", params={"error": "ACCESS_DENIED\n"})
        assert page.status_code == 200
        assert "<code>UNKNOWN</code>" in page.text
        good = await http.get("/api/auth/error", params={"error": "ACCESS_DENIED"})
        assert "<code>ACCESS_DENIED</code>" in good.text


@pytest.mark.parametrize("pattern", ["/api/health", "/api/agents/:agentId/generate"])
def test_item02_path_patterns_match_whole_paths(pattern: str) -> None:
    path = pattern.replace(":agentId", "assistant")
    assert compile_path(pattern).match(path + "\n") is None
    assert not PatternSet([pattern]).matches(path + "\n", "POST")
    assert PatternSet([pattern]).matches(path, "POST")


async def test_item02_agent_routes_match_whole_paths() -> None:
    async with default_app() as http:
        token = await sign_up(http, VICTIM)
        # "%0A" arrives as a final "\n" in the path: no route ends that way.
        answer = await http.get("/api/memory/threads/abc/messages%0A", headers=bearer(token))
        assert answer.status_code == 404
        assert answer.json() == {"error": "Not found"}
