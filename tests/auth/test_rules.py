"""The rules engine (spec §2.9): in order; a false condition hands over, not denies."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bastion.auth import AuthConfig, Rule
from bastion.auth.rules import check_rules, to_rules
from bastion.server import Bastion
from tests.auth.doubles import bearer, client

ADMIN = {"id": "a", "role": "admin"}
MEMBER = {"id": "m", "role": "member"}


async def allowed(
    rules: list[Any], path: str = "/api/agents", method: str = "GET", user: Any = ADMIN
) -> bool:
    return await check_rules(to_rules(rules), path, method, user)


async def test_no_rules_deny() -> None:
    assert not await allowed([])


async def test_condition_true_allows() -> None:
    assert await allowed([Rule(condition=lambda u: u["role"] == "admin")])


async def test_false_condition_hands_over_to_the_next_rule() -> None:
    rules = [Rule(condition=lambda u: False), Rule(path="/api/agents", allow=True)]
    assert await allowed(rules)
    assert not await allowed(rules[:1])


async def test_condition_wins_over_allow_on_the_same_rule() -> None:
    # A rule with a condition never allows through `allow` (the condition decides).
    assert not await allowed([Rule(condition=lambda u: False, allow=True)])


async def test_async_condition() -> None:
    async def is_admin(user: Any) -> bool:
        return bool(user["role"] == "admin")

    assert await allowed([Rule(condition=is_admin)])
    assert not await allowed([Rule(condition=is_admin)], user=MEMBER)


async def test_raising_condition_counts_as_false() -> None:
    def broken(user: Any) -> bool:
        raise RuntimeError("boom")

    assert not await allowed([Rule(condition=broken)])
    assert await allowed([Rule(condition=broken), Rule(allow=True)])


async def test_allow_false_without_condition_is_skipped_not_a_deny() -> None:
    assert await allowed([Rule(allow=False), Rule(allow=True)])
    assert not await allowed([Rule(allow=False)])


async def test_methods_are_compared_exactly() -> None:
    rules = [Rule(path="/api/agents", methods=["GET"], allow=True)]
    assert await allowed(rules, method="GET")
    assert not await allowed(rules, method="POST")
    assert not await allowed([Rule(methods=["ALL"], allow=True)], method="GET")


@pytest.mark.parametrize(
    ("path", "request_path", "expected"),
    [
        (None, "/anything", True),
        ("/api/agents/:id", "/api/agents/x", True),
        ("/api/agents/:id", "/api/tools/x", False),
        (re.compile(r"^/api/tools"), "/api/tools/x", True),
        (["/api/agents", "/api/tools/*"], "/api/tools/x", True),
        (["/api/agents", "/api/tools/*"], "/api/memory", False),
    ],
)
async def test_rule_paths(path: Any, request_path: str, expected: bool) -> None:
    assert await allowed([Rule(path=path, allow=True)], path=request_path) is expected


async def test_dicts_are_rules() -> None:
    assert await allowed([{"path": "/api/*", "methods": "GET", "allow": True}])
    with pytest.raises(TypeError):
        to_rules([{"paths": "/api/*"}])
    with pytest.raises(ValueError):
        Rule(path=[])


def rules_app(**config: Any) -> Bastion:
    users = {"admin": ADMIN, "member": MEMBER}
    return Bastion(auth=AuthConfig(authenticate_token=lambda t, r: users.get(t), **config))


async def test_rules_decide_over_http() -> None:
    app = rules_app(
        rules=[
            {"path": "/api/tools", "methods": ["GET"], "allow": True},
            {"condition": lambda user: user["role"] == "admin"},
        ]
    )
    async with client(app) as http:
        assert (await http.get("/api/agents", headers=bearer("admin"))).status_code == 200
        response = await http.get("/api/agents", headers=bearer("member"))
        assert response.status_code == 403
        assert response.json() == {"error": "Access denied"}
        assert (await http.get("/api/tools", headers=bearer("member"))).status_code == 200
        # Authentication still comes first: no user, no rules.
        assert (await http.get("/api/tools")).status_code == 401
