"""The organization plugin and a client's mistakes (issue 15, "Bad input"), through HTTP.

- An organization id or a team id that belongs to another organization gets the same answer
  as one that does not exist (status, code and message), and changes nothing there. (Slugs
  are not covered: check-slug tells anyone whether a slug is taken, as in better-auth.)
- Wrong JSON types answer better-auth's 400 VALIDATION_ERROR (observed on 1.7.25).
- Huge values (megabyte names, deep metadata, numbers past 2^64 in queries) are refused or
  stored and read back; never a 5xx — where better-auth 1.7.25 answers 500 too (a
  membersLimit or limit past 2^53, an unknown sortBy or filterField: errata-matrix.md).

On every dialect (tests/conftest.py's database_url).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bastion.identity.plugins.organization import default_ac
from tests.identity.plugins.organization.kit import Org, create_org, org_identity

PLUGIN = {"teams": {"enabled": True}, "dynamic_access_control": {"enabled": True}, "ac": default_ac}
UNKNOWN = "Z" * 32  # the shape of an id, and no row's


@dataclass
class Two:
    """Ada owns A (team TA, role `auditor`); Bob owns B (team TB holding him, role
    `auditor`, a pending invitation for dora@); Carl is a member of B."""

    org: Org
    ada: httpx.AsyncClient
    bob: httpx.AsyncClient
    a: dict[str, Any]
    b: dict[str, Any]
    team_a: dict[str, Any]
    team_b: dict[str, Any]
    carl_id: str


async def _ok(client: httpx.AsyncClient, path: str, body: Any = None, **query: Any) -> Any:
    response = await (
        client.post(path, json=body) if body is not None else client.get(path, params=query)
    )
    assert response.status_code == 200, f"{path}: {response.text}"
    return response.json()


async def two_organizations(org: Org) -> Two:
    ada = await org.user("ada@example.com", "Ada")
    bob = await org.user("bob@example.com", "Bob")
    carl = await org.user("carl@example.com", "Carl")
    a = await create_org(ada, "org-a")
    b = await create_org(bob, "org-b")
    teams = []
    for client, o in ((ada, a), (bob, b)):
        teams.append(
            await _ok(client, "/organization/create-team", {"organizationId": o["id"], "name": "T"})
        )
        await _ok(
            client,
            "/organization/create-role",
            {"organizationId": o["id"], "role": "auditor", "permission": {"team": ["update"]}},
        )
    invitation = await _ok(
        bob,
        "/organization/invite-member",
        {"organizationId": b["id"], "email": "carl@example.com", "role": "member"},
    )
    await _ok(carl, "/organization/accept-invitation", {"invitationId": invitation["id"]})
    await _ok(
        bob,
        "/organization/invite-member",
        {"organizationId": b["id"], "email": "dora@example.com", "role": "member"},
    )
    await _ok(
        bob,
        "/organization/add-team-member",
        {"organizationId": b["id"], "teamId": teams[1]["id"], "userId": bob.user["id"]},  # type: ignore[attr-defined]
    )
    await _ok(bob, "/organization/set-active", {"organizationId": b["id"]})
    return Two(org, ada, bob, a, b, teams[0], teams[1], carl.user["id"])  # type: ignore[attr-defined]


def answer(response: httpx.Response) -> tuple[int, Any]:
    """The status and the whole JSON body (an error's code and message)."""
    assert response.status_code < 500, response.text
    return response.status_code, response.json() if response.content else None


Args = Callable[[str], Mapping[str, Any]]  # the organization (or team) id -> body or query

# Every endpoint that takes an organization id, called by Ada (active in A) with B's id.
ORGANIZATION_CALLS: list[tuple[str, str, Args]] = [
    ("POST", "/organization/update", lambda o: {"organizationId": o, "data": {"name": "Mine"}}),
    ("POST", "/organization/delete", lambda o: {"organizationId": o}),
    ("GET", "/organization/get-organization", lambda o: {"organizationId": o}),
    ("GET", "/organization/get-full-organization", lambda o: {"organizationId": o}),
    ("POST", "/organization/set-active", lambda o: {"organizationId": o}),
    ("POST", "/organization/has-permission", lambda o: {"organizationId": o, "permissions": {}}),
    (
        "POST",
        "/organization/remove-member",
        lambda o: {"organizationId": o, "memberIdOrEmail": "carl@example.com"},
    ),
    (
        "POST",
        "/organization/update-member-role",
        lambda o: {"organizationId": o, "memberId": UNKNOWN, "role": "admin"},
    ),
    ("GET", "/organization/get-active-member-role", lambda o: {"organizationId": o}),
    ("POST", "/organization/leave", lambda o: {"organizationId": o}),
    ("GET", "/organization/list-members", lambda o: {"organizationId": o}),
    (
        "POST",
        "/organization/invite-member",
        lambda o: {"organizationId": o, "email": "eve@example.com", "role": "member"},
    ),
    ("GET", "/organization/list-invitations", lambda o: {"organizationId": o}),
    ("POST", "/organization/create-team", lambda o: {"organizationId": o, "name": "Mine"}),
    ("GET", "/organization/list-teams", lambda o: {"organizationId": o}),
    ("GET", "/organization/list-user-teams", lambda o: {"organizationId": o}),
    (
        "POST",
        "/organization/create-role",
        lambda o: {"organizationId": o, "role": "mine", "permission": {"team": ["update"]}},
    ),
    (
        "POST",
        "/organization/update-role",
        lambda o: {
            "organizationId": o,
            "roleName": "auditor",
            "data": {"permission": {"team": ["create"]}},
        },
    ),
    ("POST", "/organization/delete-role", lambda o: {"organizationId": o, "roleName": "auditor"}),
    ("GET", "/organization/get-role", lambda o: {"organizationId": o, "roleName": "auditor"}),
    ("GET", "/organization/list-roles", lambda o: {"organizationId": o}),
]

# Every endpoint that takes a team id, called by Ada (active in A) with B's team's id.
TEAM_CALLS: list[tuple[str, str, Args]] = [
    ("POST", "/organization/update-team", lambda t: {"teamId": t, "data": {"name": "Mine"}}),
    ("POST", "/organization/remove-team", lambda t: {"teamId": t}),
    ("POST", "/organization/set-active-team", lambda t: {"teamId": t}),
    ("GET", "/organization/list-team-members", lambda t: {"teamId": t}),
    ("POST", "/organization/add-team-member", lambda t: {"teamId": t, "userId": "{ada}"}),
    ("POST", "/organization/remove-team-member", lambda t: {"teamId": t, "userId": "{ada}"}),
    (
        "POST",
        "/organization/invite-member",
        lambda t: {"email": "fay@example.com", "role": "member", "teamId": t},
    ),
]


async def _call(client: httpx.AsyncClient, method: str, path: str, args: Any) -> httpx.Response:
    if method == "GET":
        return await client.get(path, params=args)
    return await client.post(path, json=args)


async def _b_as_bob_sees_it(two: Two) -> Any:
    """What Bob can read of B: to check that Ada's attempts changed nothing."""
    where = {"organizationId": two.b["id"]}
    full = await _ok(two.bob, "/organization/get-full-organization", **where)
    teams = await _ok(two.bob, "/organization/list-teams", **where)
    roles = await _ok(two.bob, "/organization/list-roles", **where)
    members = await _ok(two.bob, "/organization/list-team-members", teamId=two.team_b["id"])
    for row in [*teams, *roles]:
        row.pop("updatedAt", None)
    return full, teams, roles, members


@pytest.mark.parametrize(
    ("method", "path", "args"), ORGANIZATION_CALLS, ids=[p for _, p, _ in ORGANIZATION_CALLS]
)
async def test_another_organizations_id_answers_as_an_unknown_one(
    database_url: str, method: str, path: str, args: Args
) -> None:
    async with org_identity(database_url, plugin_options=PLUGIN) as org:
        two = await two_organizations(org)
        before = await _b_as_bob_sees_it(two)
        foreign = answer(await _call(two.ada, method, path, args(two.b["id"])))
        unknown = answer(await _call(two.ada, method, path, args(UNKNOWN)))
        assert foreign == unknown
        assert foreign[0] >= 400, foreign
        assert await _b_as_bob_sees_it(two) == before
        # Ada's own organization is still hers and active
        session = await _ok(two.ada, "/get-session")
        assert session["session"]["activeOrganizationId"] in (two.a["id"], None)


@pytest.mark.parametrize(("method", "path", "args"), TEAM_CALLS, ids=[p for _, p, _ in TEAM_CALLS])
async def test_another_organizations_team_id_answers_as_an_unknown_one(
    database_url: str, method: str, path: str, args: Args
) -> None:
    async with org_identity(database_url, plugin_options=PLUGIN) as org:
        two = await two_organizations(org)
        await _ok(two.ada, "/organization/set-active", {"organizationId": two.a["id"]})
        before = await _b_as_bob_sees_it(two)

        def filled(team_id: str) -> Any:
            text = json.dumps(args(team_id)).replace("{ada}", two.ada.user["id"])  # type: ignore[attr-defined]
            return json.loads(text)

        foreign = answer(await _call(two.ada, method, path, filled(two.team_b["id"])))
        unknown = answer(await _call(two.ada, method, path, filled(UNKNOWN)))
        assert foreign == unknown
        assert foreign[0] >= 400, foreign
        assert await _b_as_bob_sees_it(two) == before


# (path, body) -> better-auth 1.7.25's message (all 400 VALIDATION_ERROR), observed.
WRONG_TYPES: list[tuple[str, dict[str, Any], str]] = [
    (
        "/organization/update",
        {"organizationId": 123, "data": {"name": "x"}},
        "[body.organizationId] Invalid input: expected string, received number",
    ),
    (
        "/organization/update",
        {"organizationId": ["a"], "data": {"name": "x"}},
        "[body.organizationId] Invalid input: expected string, received array",
    ),
    (
        "/organization/update",
        {"organizationId": "{a}", "data": "x"},
        "[body.data] Invalid input: expected object, received string",
    ),
    (
        "/organization/update",
        {"organizationId": "{a}", "data": {"name": 5}},
        "[body.data.name] Invalid input: expected string, received number",
    ),
    (
        "/organization/update",
        {"organizationId": "{a}", "data": {"metadata": [1]}},
        "[body.data.metadata] Invalid input: expected record, received array",
    ),
    (
        "/organization/delete",
        {"organizationId": None},
        "[body.organizationId] Invalid input: expected string, received null",
    ),
    (
        "/organization/delete",
        {"organizationId": True},
        "[body.organizationId] Invalid input: expected string, received boolean",
    ),
    (
        "/organization/create",
        {"name": "A", "slug": 5},
        "[body.slug] Invalid input: expected string, received number",
    ),
    (
        "/organization/create",
        {"name": "A", "slug": "s", "metadata": "x"},
        "[body.metadata] Invalid input: expected record, received string",
    ),
    (
        "/organization/set-active",
        {"organizationId": 5},
        "[body.organizationId] Invalid input: expected string, received number",
    ),
    (
        "/organization/has-permission",
        {"organizationId": "{a}", "permissions": ["member"]},
        "[body] Invalid input",
    ),
    (
        "/organization/has-permission",
        {"organizationId": "{a}", "permissions": {"member": "delete"}},
        "[body] Invalid input",
    ),
    ("/organization/has-permission", {"organizationId": "{a}"}, "[body] Invalid input"),
    (
        "/organization/has-permission",
        {"permission": {"member": ["delete"]}, "permissions": {"member": ["delete"]}},
        "[body] Invalid input: more than one option matched",
    ),
    (
        "/organization/invite-member",
        {"organizationId": "{a}", "email": "b@example.com", "role": 5},
        "[body.role] Invalid input",
    ),
    (
        "/organization/invite-member",
        {"organizationId": "{a}", "email": 5, "role": "member"},
        "[body.email] Invalid input: expected string, received number",
    ),
    (
        "/organization/update-team",
        {"teamId": 5, "data": {"name": "x"}},
        "[body.teamId] Invalid input: expected string, received number",
    ),
    (
        "/organization/create-team",
        {"name": ["x"]},
        "[body.name] Invalid input: expected string, received array",
    ),
    (
        "/organization/create-role",
        {"role": "r", "permission": {"team": "update"}},
        "[body.permission.team] Invalid input: expected array, received string",
    ),
    (
        "/organization/create-role",
        {"role": 5, "permission": {"team": ["update"]}},
        "[body.role] Invalid input: expected string, received number",
    ),
    (
        "/organization/update-member-role",
        {"memberId": 5, "role": "admin"},
        "[body.memberId] Invalid input: expected string, received number",
    ),
    (
        "/organization/remove-member",
        {"memberIdOrEmail": 5},
        "[body.memberIdOrEmail] Invalid input: expected string, received number",
    ),
    (
        "/organization/leave",
        {"organizationId": 5},
        "[body.organizationId] Invalid input: expected string, received number",
    ),
    (
        "/organization/check-slug",
        {"slug": 5},
        "[body.slug] Invalid input: expected string, received number",
    ),
    (
        "/organization/accept-invitation",
        {"invitationId": 5},
        "[body.invitationId] Invalid input: expected string, received number",
    ),
    (
        "/organization/set-active-team",
        {"teamId": 5},
        "[body.teamId] Invalid input: expected string, received number",
    ),
]


async def test_wrong_types_are_validation_errors(database_url: str) -> None:
    async with org_identity(database_url, plugin_options=PLUGIN) as org:
        ada = await org.user("ada@example.com")
        a = await create_org(ada, "org-a")
        problems = []
        for path, body, message in WRONG_TYPES:
            sent = json.loads(json.dumps(body).replace('"{a}"', json.dumps(a["id"])))
            response = await ada.post(path, json=sent)
            got = (response.status_code, response.json() if response.content else None)
            if got != (400, {"message": message, "code": "VALIDATION_ERROR"}):
                problems.append(f"{path} {body}: {got}, better-auth: 400 {message!r}")
        assert not problems, "\n".join(problems)
        # None of it changed A.
        full = await _ok(ada, "/organization/get-full-organization", organizationId=a["id"])
        assert (full["name"], full["slug"], full["metadata"]) == ("Org-A", "org-a", None)


async def test_huge_values_never_fail_and_read_back(database_url: str) -> None:
    async with org_identity(database_url, plugin_options=PLUGIN) as org:
        ada = await org.user("ada@example.com")
        a = await create_org(ada, "org-a")
        where = {"organizationId": a["id"]}
        deep: Any = "leaf"
        for _ in range(200):
            deep = {"a": deep}
        huge = "x" * 1_000_000
        bodies: list[tuple[str, dict[str, Any]]] = [
            ("/organization/create", {"name": huge, "slug": "huge-name"}),
            ("/organization/create", {"name": "H", "slug": huge}),
            ("/organization/create", {"name": "H", "slug": "deep", "metadata": deep}),
            ("/organization/create", {"name": "H", "slug": "wide", "metadata": {"k": huge}}),
            ("/organization/update", {**where, "data": {"name": huge}}),
            ("/organization/update", {**where, "data": {"metadata": deep}}),
            ("/organization/check-slug", {"slug": huge}),
            ("/organization/set-active", {"organizationId": huge}),
            ("/organization/delete", {"organizationId": huge}),
            ("/organization/has-permission", {**where, "permissions": {"member": ["x"] * 10_000}}),
            ("/organization/has-permission", {**where, "permissions": {huge: ["delete"]}}),
            (
                "/organization/invite-member",
                {**where, "email": f"{huge}@example.com", "role": "member"},
            ),
            ("/organization/invite-member", {**where, "email": "i@example.com", "role": [huge]}),
            (
                "/organization/invite-member",
                {**where, "email": "j@example.com", "role": "member", "teamId": [huge] * 3},
            ),
            ("/organization/create-team", {**where, "name": huge}),
            ("/organization/update-team", {"teamId": huge, "data": {"name": huge}}),
            ("/organization/set-active-team", {"teamId": huge}),
            (
                "/organization/create-role",
                {**where, "role": huge, "permission": {"team": ["update"]}},
            ),
            (
                "/organization/create-role",
                {**where, "role": "wide", "permission": {"team": ["update"] * 10_000}},
            ),
            (
                "/organization/create-role",
                {**where, "role": "many", "permission": {f"r{i}": ["a"] for i in range(5_000)}},
            ),
            ("/organization/update-member-role", {**where, "memberId": huge, "role": "admin"}),
            (
                "/organization/update-member-role",
                {**where, "memberId": a["members"][0]["id"], "role": [huge]},
            ),
            ("/organization/remove-member", {**where, "memberIdOrEmail": huge}),
            ("/organization/accept-invitation", {"invitationId": huge}),
            ("/organization/leave", {"organizationId": huge}),
        ]
        failures = []
        for path, body in bodies:
            response = await ada.post(path, json=body)
            if response.status_code >= 500:
                shown = {k: v[:20] if isinstance(v, str) else str(v)[:40] for k, v in body.items()}
                failures.append(f"POST {path} {shown}: {response.status_code}")
        big = str(2**70)
        queries: list[tuple[str, dict[str, Any]]] = [
            ("/organization/get-full-organization", {**where, "membersLimit": big}),
            ("/organization/get-full-organization", {**where, "membersLimit": "-1"}),
            ("/organization/get-full-organization", {"organizationId": "x" * 20_000}),
            ("/organization/list-members", {**where, "limit": big, "offset": big}),
            ("/organization/list-members", {**where, "limit": "-5", "offset": "abc"}),
            ("/organization/list-members", {**where, "sortBy": "nope", "sortDirection": "up"}),
            (
                "/organization/list-members",
                {**where, "filterField": "nope", "filterOperator": "eq", "filterValue": "1"},
            ),
            ("/organization/get-role", {**where, "roleName": "x" * 20_000}),
            ("/organization/get-invitation", {"id": "x" * 20_000}),
            ("/organization/list-team-members", {"teamId": "x" * 20_000}),
            ("/organization/get-active-member-role", {**where, "userId": "x" * 20_000}),
        ]
        for path, query in queries:
            response = await ada.get(path, params=query)
            if response.status_code >= 500:
                failures.append(f"GET {path} {query}"[:300] + f": {response.status_code}")
        assert not failures, "\n".join(failures)
        # Whatever was stored reads back.
        for listed in await _ok(ada, "/organization/list"):
            one = {"organizationId": listed["id"]}
            await _ok(ada, "/organization/get-full-organization", **one)
            await _ok(ada, "/organization/list-members", **one)
            await _ok(ada, "/organization/list-invitations", **one)
            await _ok(ada, "/organization/list-teams", **one)
            await _ok(ada, "/organization/list-roles", **one)
        await _ok(ada, "/organization/list-user-teams")
        await _ok(ada, "/get-session")
