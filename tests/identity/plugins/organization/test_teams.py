"""Teams through HTTP: create-team, update-team, remove-team, list-teams, list-user-teams,
list-team-members, add-team-member, remove-team-member and set-active-team, with better-auth
1.7.25's answers and refusals (each observed on 1.7.25 with the same requests; the table is
in /work/helpers/errata-teams.md), the limits, and the stored seat counter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bastion.identity import Identity
from bastion.identity.db import eq
from bastion.identity.plugins.organization._team_members import (
    membership_key,
    remove_from_organization_teams,
)
from tests.identity.plugins.organization.kit import Org, create_org, error, org_identity
from tests.identity.routes.helpers import SESSION_COOKIE, set_cookie

TEAMS: dict[str, Any] = {"teams": {"enabled": True}}


def teams(**options: Any) -> dict[str, Any]:
    return {"teams": {"enabled": True, **options}}


async def join(org: Org, client: httpx.AsyncClient, organization_id: str, role: str) -> None:
    """Make the client's user a member (add-member is another module's: a row suffices)."""
    data = {"organizationId": organization_id, "userId": uid(client), "role": role}
    await org.identity.store.db.create("member", {**data, "createdAt": _now()})


def _now() -> datetime:
    return datetime.now(UTC)


def uid(client: httpx.AsyncClient) -> str:
    return client.user["id"]  # type: ignore[attr-defined,no-any-return]


async def create_team(client: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/organization/create-team", json={"name": name, **extra})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def member_count(identity: Identity, team_id: str) -> int:
    row = await identity.store.db.find_one("team", eq("id", team_id))
    assert row is not None
    return int(row["memberCount"])


TEAM_KEYS = {"id", "name", "organizationId", "createdAt", "updatedAt"}
TEAM_MEMBER_KEYS = {"id", "teamId", "userId", "createdAt"}


async def test_the_default_team_and_the_life_of_a_team() -> None:
    async with org_identity(plugin_options=TEAMS) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        # A new organization has a team of its name holding its creator, and it is active.
        (default,) = (await ada.get("/organization/list-teams")).json()
        assert set(default) == TEAM_KEYS
        # (1.7.25 leaves the default team's updatedAt NULL: _orgs.py's create, see errata.)
        assert default["name"] == "Acme"
        session = (await ada.get("/get-session")).json()["session"]
        assert session["activeTeamId"] == default["id"]
        assert await member_count(org.identity, default["id"]) == 1

        team = await create_team(ada, "Support")
        assert set(team) == TEAM_KEYS and team["organizationId"] == acme["id"]
        assert team["createdAt"] == team["updatedAt"]
        assert await member_count(org.identity, team["id"]) == 0
        # 1.7.25's create-team takes an empty name; update-team does not.
        assert (await create_team(ada, ""))["name"] == ""
        empty = await ada.post(
            "/organization/update-team", json={"teamId": team["id"], "data": {"name": ""}}
        )
        assert empty.status_code == 400 and empty.json()["code"] == "VALIDATION_ERROR"
        assert "[body.data.name] Too small" in empty.json()["message"]

        renamed = await ada.post(
            "/organization/update-team", json={"teamId": team["id"], "data": {"name": "Help"}}
        )
        assert renamed.status_code == 200
        assert renamed.json()["name"] == "Help" and set(renamed.json()) == TEAM_KEYS
        assert renamed.json()["updatedAt"] >= team["updatedAt"]
        listed = (await ada.get("/organization/list-teams")).json()
        assert [t["name"] for t in listed] == ["Acme", "Help", ""]

        gone = await ada.post("/organization/remove-team", json={"teamId": team["id"]})
        assert gone.json() == {"message": "Team removed successfully."}
        again = await ada.post("/organization/remove-team", json={"teamId": team["id"]})
        assert error(again) == (400, "TEAM_NOT_FOUND")


async def test_remove_team_refusals_and_invitations() -> None:
    async with org_identity(plugin_options=TEAMS) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        (default,) = (await ada.get("/organization/list-teams")).json()
        # The caller's own active team cannot be removed; nor the last team.
        active = await ada.post("/organization/remove-team", json={"teamId": default["id"]})
        assert error(active) == (403, "YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_TEAM")
        cleared = await ada.post("/organization/set-active-team", json={"teamId": None})
        assert cleared.status_code == 200 and cleared.json() is None
        last = await ada.post("/organization/remove-team", json={"teamId": default["id"]})
        assert error(last) == (400, "UNABLE_TO_REMOVE_LAST_TEAM")

        support = await create_team(ada, "Support")
        db = org.identity.store.db
        invitation = {
            "organizationId": acme["id"],
            "role": "member",
            "status": "pending",
            "expiresAt": _now().replace(year=_now().year + 1),
            "inviterId": uid(ada),
        }
        both = await db.create(
            "invitation",
            {**invitation, "email": "a@x.com", "teamId": f"{support['id']},{default['id']}"},
        )
        only = await db.create(
            "invitation", {**invitation, "email": "b@x.com", "teamId": support["id"]}
        )
        response = await ada.post("/organization/remove-team", json={"teamId": support["id"]})
        assert response.status_code == 200
        assert (await db.find_one("invitation", eq("id", both["id"])))["teamId"] == default["id"]
        assert (await db.find_one("invitation", eq("id", only["id"])))["teamId"] is None
        assert await db.count("team", eq("id", support["id"])) == 0

        # With allow_removing_all_teams the last one may go.
    async with org_identity(plugin_options=teams(allow_removing_all_teams=True)) as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        (default,) = (await ada.get("/organization/list-teams")).json()
        await ada.post("/organization/set-active-team", json={"teamId": None})
        removed = await ada.post("/organization/remove-team", json={"teamId": default["id"]})
        assert removed.status_code == 200
        assert (await ada.get("/organization/list-teams")).json() == []


async def test_roles_decide_who_manages_teams() -> None:
    """team:create/update/delete and member:update/delete, as 1.7.25's default roles grant
    them; a member of another organization gets the answers of an unknown id."""
    async with org_identity(plugin_options=TEAMS) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        cy = await org.user("cy@example.com", "Cy")
        dee = await org.user("dee@example.com", "Dee")
        acme = await create_org(ada, "acme")
        await create_org(cy, "other")
        await join(org, bob, acme["id"], "member")
        await join(org, dee, acme["id"], "admin")
        team = await create_team(ada, "Support")
        scoped = {"organizationId": acme["id"]}

        async def answers(client: httpx.AsyncClient) -> list[tuple[int, str | None]]:
            calls = [
                ("/organization/create-team", {"name": "X", **scoped}),
                (
                    "/organization/update-team",
                    {"teamId": team["id"], "data": {"name": "Y", **scoped}},
                ),
                (
                    "/organization/add-team-member",
                    {"teamId": team["id"], "userId": uid(bob), **scoped},
                ),
                (
                    "/organization/remove-team-member",
                    {"teamId": team["id"], "userId": uid(bob), **scoped},
                ),
                ("/organization/remove-team", {"teamId": team["id"], **scoped}),
            ]
            return [error(await client.post(path, json=body)) for path, body in calls]

        assert await answers(bob) == [
            (403, "YOU_ARE_NOT_ALLOWED_TO_CREATE_TEAMS_IN_THIS_ORGANIZATION"),
            (403, "YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_TEAM"),
            (403, "YOU_ARE_NOT_ALLOWED_TO_CREATE_A_NEW_TEAM_MEMBER"),
            (403, "YOU_ARE_NOT_ALLOWED_TO_REMOVE_A_TEAM_MEMBER"),
            (403, "YOU_ARE_NOT_ALLOWED_TO_DELETE_TEAMS_IN_THIS_ORGANIZATION"),
        ]
        assert await answers(cy) == [
            (403, "YOU_ARE_NOT_ALLOWED_TO_INVITE_USERS_TO_THIS_ORGANIZATION"),  # sic, 1.7.25
            (403, "YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_TEAM"),
            (400, "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION"),
            (400, "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION"),
            (403, "YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_TEAM"),
        ]
        listed = await cy.get("/organization/list-teams", params=scoped)
        assert error(listed) == (403, "YOU_ARE_NOT_ALLOWED_TO_ACCESS_THIS_ORGANIZATION")
        assert (await bob.get("/organization/list-teams", params=scoped)).status_code == 200
        # The other organization's own team ids do not reach into acme, and the reverse.
        (others,) = (await cy.get("/organization/list-teams")).json()
        foreign = await ada.post(
            "/organization/update-team", json={"teamId": others["id"], "data": {"name": "Z"}}
        )
        assert error(foreign) == (400, "TEAM_NOT_FOUND")
        foreign = await ada.post("/organization/remove-team", json={"teamId": others["id"]})
        assert error(foreign) == (400, "TEAM_NOT_FOUND")
        # An admin may do all of it.
        assert [status for status, _ in await answers(dee)] == [200, 200, 200, 200, 200]

        # Signed out: create-team and remove-team answer 1.7.25's bare 401 (remove-team asks
        # for the organization first); the others the session guard's.
        anonymous = org.client()
        response = await anonymous.post("/organization/create-team", json={"name": "X"})
        assert (response.status_code, response.content) == (401, b"")
        response = await anonymous.post("/organization/remove-team", json={"teamId": "t"})
        assert error(response) == (400, "NO_ACTIVE_ORGANIZATION")
        response = await anonymous.post("/organization/remove-team", json={"teamId": "t", **scoped})
        assert (response.status_code, response.content) == (401, b"")
        for path in ("list-teams", "list-user-teams", "list-team-members"):
            assert error(await anonymous.get(f"/organization/{path}")) == (401, "UNAUTHORIZED")


async def test_add_and_remove_team_members() -> None:
    async with org_identity(plugin_options=TEAMS) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        acme = await create_org(ada, "acme")
        team = await create_team(ada, "Support")
        body = {"teamId": team["id"], "userId": uid(bob)}
        outsider = await ada.post("/organization/add-team-member", json=body)
        assert error(outsider) == (400, "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION")
        await join(org, bob, acme["id"], "member")

        added = await ada.post("/organization/add-team-member", json=body)
        assert added.status_code == 200 and set(added.json()) == TEAM_MEMBER_KEYS
        assert (added.json()["teamId"], added.json()["userId"]) == (team["id"], uid(bob))
        # Adding again answers the same row; one row, one seat.
        again = await ada.post("/organization/add-team-member", json=body)
        assert again.json() == added.json()
        db = org.identity.store.db
        (row,) = await db.find_many("teamMember", eq("teamId", team["id"]))
        assert row["membershipKey"] == membership_key(team["id"], uid(bob))
        assert await member_count(org.identity, team["id"]) == 1

        listed = await bob.get("/organization/list-team-members", params={"teamId": team["id"]})
        assert listed.json() == [added.json()]

        # userId is zod's coerce.string(): a number is a (non-member) id; none is refused.
        number = await ada.post(
            "/organization/add-team-member", json={"teamId": team["id"], "userId": 42}
        )
        assert error(number) == (400, "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION")
        missing = await ada.post("/organization/add-team-member", json={"teamId": team["id"]})
        assert missing.json() == {
            "message": "[body.userId] Invalid input: expected nonoptional, received undefined",
            "code": "VALIDATION_ERROR",
        }
        unknown = await ada.post("/organization/add-team-member", json={**body, "teamId": "nope"})
        assert error(unknown) == (400, "TEAM_NOT_FOUND")

        removed = await ada.post("/organization/remove-team-member", json=body)
        assert removed.json() == {"message": "Team member removed successfully."}
        assert await member_count(org.identity, team["id"]) == 0
        again = await ada.post("/organization/remove-team-member", json=body)
        assert error(again) == (400, "USER_IS_NOT_A_MEMBER_OF_THE_TEAM")


async def test_team_limits(database_url: str) -> None:
    """maximum_teams counts the organization's teams (the default one too; 0 is no limit);
    maximum_members_per_team is a seat counter taken atomically: concurrent adds never
    overfill a team, on any database."""
    async with org_identity(
        database_url, plugin_options=teams(maximum_teams=2, maximum_members_per_team=2)
    ) as org:
        ada = await org.user("ada@example.com")
        users = [await org.user(f"u{i}@example.com") for i in range(4)]
        acme = await create_org(ada, "acme")
        for user in users:
            await join(org, user, acme["id"], "member")
        team = await create_team(ada, "Support")
        full = await ada.post("/organization/create-team", json={"name": "Third"})
        assert error(full) == (400, "YOU_HAVE_REACHED_THE_MAXIMUM_NUMBER_OF_TEAMS")

        answers = await asyncio.gather(
            *(
                ada.post(
                    "/organization/add-team-member",
                    json={"teamId": team["id"], "userId": uid(user)},
                )
                for user in users
            )
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 200, 403, 403]
        refused = next(a for a in answers if a.status_code == 403)
        assert refused.json()["code"] == "TEAM_MEMBER_LIMIT_REACHED"
        db = org.identity.store.db
        assert await db.count("teamMember", eq("teamId", team["id"])) == 2
        assert await member_count(org.identity, team["id"]) == 2
        # Already in the team: its row, even when the team is full.
        inside = next(a.json() for a in answers if a.status_code == 200)
        again = await ada.post(
            "/organization/add-team-member",
            json={"teamId": team["id"], "userId": inside["userId"]},
        )
        assert again.json() == inside
        # A seat released is a seat free.
        await ada.post(
            "/organization/remove-team-member",
            json={"teamId": team["id"], "userId": inside["userId"]},
        )
        outside = next(u for u in users if uid(u) not in {r.json().get("userId") for r in answers})
        taken = await ada.post(
            "/organization/add-team-member", json={"teamId": team["id"], "userId": uid(outside)}
        )
        assert taken.status_code == 200


async def test_limits_given_as_functions() -> None:
    seen: list[dict[str, Any]] = []

    def maximum_teams(data: dict[str, Any], ctx: Any) -> int:
        seen.append(data)
        return 0  # better-auth reads 0 as no limit

    async def members_per_team(data: dict[str, Any]) -> int:
        seen.append(data)
        return 0  # and 0 seats as none

    options = teams(maximum_teams=maximum_teams, maximum_members_per_team=members_per_team)
    async with org_identity(plugin_options=options) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        team = await create_team(ada, "One")
        await create_team(ada, "Two")
        assert seen[0]["organization_id"] == acme["id"]
        assert seen[0]["session"]["user"]["id"] == uid(ada)
        response = await ada.post(
            "/organization/add-team-member", json={"teamId": team["id"], "userId": uid(ada)}
        )
        assert error(response) == (403, "TEAM_MEMBER_LIMIT_REACHED")
        assert {k: seen[-1][k] for k in ("team_id", "organization_id")} == {
            "team_id": team["id"],
            "organization_id": acme["id"],
        }


async def test_list_user_teams() -> None:
    async with org_identity(plugin_options=TEAMS) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        cy = await org.user("cy@example.com", "Cy")
        acme = await create_org(ada, "acme")
        beta = await create_org(ada, "beta")
        await join(org, bob, acme["id"], "member")
        await join(org, cy, beta["id"], "member")
        acme_team = await create_team(ada, "Support", organizationId=acme["id"])
        await ada.post(
            "/organization/add-team-member",
            json={"teamId": acme_team["id"], "userId": uid(bob), "organizationId": acme["id"]},
        )
        # Self: every organization, or the one asked for.
        mine = (await ada.get("/organization/list-user-teams")).json()
        assert sorted(t["name"] for t in mine) == ["Acme", "Beta"]
        assert all(set(t) == TEAM_KEYS for t in mine)
        only = await ada.get("/organization/list-user-teams", params={"organizationId": acme["id"]})
        assert [t["name"] for t in only.json()] == ["Acme"]
        theirs = await bob.get(
            "/organization/list-user-teams", params={"organizationId": beta["id"]}
        )
        assert error(theirs) == (403, "YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION")
        # Another user: member:update in the organization (the active one by default).
        other = await ada.get(
            "/organization/list-user-teams",
            params={"userId": uid(bob), "organizationId": acme["id"]},
        )
        assert [t["id"] for t in other.json()] == [acme_team["id"]]
        by_member = await bob.get(
            "/organization/list-user-teams",
            params={"userId": uid(ada), "organizationId": acme["id"]},
        )
        assert error(by_member) == (403, "YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_MEMBER")
        no_active = await bob.get("/organization/list-user-teams", params={"userId": uid(ada)})
        assert error(no_active) == (400, "NO_ACTIVE_ORGANIZATION")
        stranger = await ada.get(
            "/organization/list-user-teams",
            params={"userId": uid(cy), "organizationId": acme["id"]},
        )
        assert error(stranger) == (400, "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION")
        # Teams of an organization the user is no longer a member of are not listed.
        await org.identity.store.db.delete_many(
            "member", eq("userId", uid(bob)) & eq("organizationId", acme["id"])
        )
        assert (await bob.get("/organization/list-user-teams")).json() == []


async def test_list_team_members() -> None:
    async with org_identity(plugin_options=TEAMS) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        cy = await org.user("cy@example.com", "Cy")
        acme = await create_org(ada, "acme")
        await create_org(cy, "other")
        await join(org, bob, acme["id"], "member")
        (default,) = (await ada.get("/organization/list-teams")).json()
        # No teamId: the active team's members.
        members = (await ada.get("/organization/list-team-members")).json()
        assert [(m["userId"], m["teamId"]) for m in members] == [(uid(ada), default["id"])]
        assert all(set(m) == TEAM_MEMBER_KEYS for m in members)
        no_team = await bob.get("/organization/list-team-members")
        assert error(no_team) == (400, "YOU_DO_NOT_HAVE_AN_ACTIVE_TEAM")
        not_in = await bob.get("/organization/list-team-members", params={"teamId": default["id"]})
        assert error(not_in) == (400, "USER_IS_NOT_A_MEMBER_OF_THE_TEAM")
        unknown = await ada.get("/organization/list-team-members", params={"teamId": "nope"})
        assert error(unknown) == (400, "TEAM_NOT_FOUND")
        # Erratum: another organization's team answers as an unknown one (1.7.25:
        # USER_IS_NOT_A_MEMBER_OF_THE_TEAM, which tells that the id exists).
        foreign = await cy.get("/organization/list-team-members", params={"teamId": default["id"]})
        assert error(foreign) == (400, "TEAM_NOT_FOUND")


@pytest.mark.parametrize("cookie_cache", [False, True])
async def test_set_active_team(cookie_cache: bool) -> None:
    session_options = {"cookie_cache": {"enabled": True}} if cookie_cache else {}
    async with org_identity(plugin_options=TEAMS, session=session_options) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        cy = await org.user("cy@example.com", "Cy")
        acme = await create_org(ada, "acme")
        await create_org(cy, "other")
        # As on 1.7.25, create leaves a cookie cache without the new active organization:
        # set-active sets it again (and set-active-team below must, the same way).
        await ada.post("/organization/set-active", json={"organizationId": acme["id"]})
        await cy.post("/organization/set-active", json={"organizationId": None})
        (default,) = (await ada.get("/organization/list-teams")).json()
        team = await create_team(ada, "Support")

        async def active(client: httpx.AsyncClient) -> Any:
            return (await client.get("/get-session")).json()["session"].get("activeTeamId")

        not_in = await ada.post("/organization/set-active-team", json={"teamId": team["id"]})
        assert error(not_in) == (403, "USER_IS_NOT_A_MEMBER_OF_THE_TEAM")
        await ada.post(
            "/organization/add-team-member", json={"teamId": team["id"], "userId": uid(ada)}
        )
        switched = await ada.post("/organization/set-active-team", json={"teamId": team["id"]})
        assert switched.status_code == 200 and switched.json()["id"] == team["id"]
        assert set(switched.json()) == TEAM_KEYS
        assert set_cookie(switched, SESSION_COOKIE) is not None  # the cookie is set again
        assert await active(ada) == team["id"]
        # Left out: the active team is checked again and answered.
        same = await ada.post("/organization/set-active-team", json={})
        assert same.json()["id"] == team["id"]
        # null clears it; null again is a no-op.
        cleared = await ada.post("/organization/set-active-team", json={"teamId": None})
        assert cleared.status_code == 200 and cleared.json() is None
        assert await active(ada) is None
        again = await ada.post("/organization/set-active-team", json={"teamId": None})
        assert again.json() is None and set_cookie(again, SESSION_COOKIE) is None
        nothing = await ada.post("/organization/set-active-team", json={})
        assert nothing.status_code == 200 and nothing.json() is None

        (others,) = await org.identity.store.db.find_many("team", eq("name", "Other"))
        foreign = await ada.post("/organization/set-active-team", json={"teamId": others["id"]})
        assert error(foreign) == (400, "TEAM_NOT_FOUND")
        no_org = await bob.post("/organization/set-active-team", json={"teamId": default["id"]})
        assert error(no_org) == (400, "NO_ACTIVE_ORGANIZATION")
        number = await ada.post("/organization/set-active-team", json={"teamId": 5})
        assert error(number) == (400, "VALIDATION_ERROR")


async def test_memberships_written_without_a_key_or_a_count() -> None:
    """Rows of an older better-auth (no membershipKey, memberCount behind) are found by
    their pair, and the count is brought up to the rows before a seat is counted."""
    async with org_identity(plugin_options=teams(maximum_members_per_team=2)) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        cy = await org.user("cy@example.com", "Cy")
        acme = await create_org(ada, "acme")
        await join(org, bob, acme["id"], "member")
        await join(org, cy, acme["id"], "member")
        team = await create_team(ada, "Support")
        db = org.identity.store.db
        legacy = await db.create(
            "teamMember", {"teamId": team["id"], "userId": uid(bob), "createdAt": _now()}
        )
        await db.create(
            "teamMember", {"teamId": team["id"], "userId": uid(ada), "createdAt": _now()}
        )
        assert await member_count(org.identity, team["id"]) == 0
        found = await ada.post(
            "/organization/add-team-member", json={"teamId": team["id"], "userId": uid(bob)}
        )
        assert found.json()["id"] == legacy["id"]
        full = await ada.post(
            "/organization/add-team-member", json={"teamId": team["id"], "userId": uid(cy)}
        )
        assert error(full) == (403, "TEAM_MEMBER_LIMIT_REACHED")
        assert await member_count(org.identity, team["id"]) == 2


async def test_leaving_an_organization_releases_its_team_seats(database_url: str) -> None:
    """The primitive remove-member and leave use: every team row of the organization goes,
    and each team's count with it; other organizations' teams are untouched."""
    async with org_identity(database_url, plugin_options=TEAMS) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        beta = await create_org(ada, "beta")
        support = await create_team(ada, "Support", organizationId=acme["id"])
        await ada.post(
            "/organization/add-team-member",
            json={"teamId": support["id"], "userId": uid(ada), "organizationId": acme["id"]},
        )
        db = org.identity.store.db
        await remove_from_organization_teams(db, acme["id"], uid(ada))
        acme_teams = await db.find_many("team", eq("organizationId", acme["id"]))
        assert [t["memberCount"] for t in acme_teams] == [0, 0]
        assert await db.count("teamMember", eq("userId", uid(ada))) == 1  # beta's default
        (beta_team,) = await db.find_many("team", eq("organizationId", beta["id"]))
        assert beta_team["memberCount"] == 1


async def test_without_teams_there_are_no_team_endpoints() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        assert (await ada.post("/organization/create-team", json={"name": "X"})).status_code == 404
        assert (await ada.get("/organization/list-teams")).status_code == 404


async def test_hooks_and_server_calls() -> None:
    """before_create_team's data is written, before_update_team's replaces the update, the
    after-hooks see the results; `identity.api` without headers acts as the server, with
    no session and no permission check, as `auth.api` does."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def hook(name: str, answer: Any = None) -> Any:
        def run(data: dict[str, Any]) -> Any:
            seen.append((name, data))
            return answer

        return run

    hooks = {
        "before_create_team": hook("before_create_team", {"data": {"name": "Renamed"}}),
        "after_create_team": hook("after_create_team"),
        "before_update_team": hook("before_update_team", {"data": {"name": "Hooked"}}),
        "after_update_team": hook("after_update_team"),
        "before_add_team_member": hook("before_add_team_member", {"data": {"userId": "x"}}),
        "after_add_team_member": hook("after_add_team_member"),
        "before_remove_team_member": hook("before_remove_team_member"),
        "after_remove_team_member": hook("after_remove_team_member"),
        "before_delete_team": hook("before_delete_team"),
        "after_delete_team": hook("after_delete_team"),
    }
    options = {**TEAMS, "organization_hooks": hooks}
    async with org_identity(plugin_options=options) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        seen.clear()  # the default team's
        team = await create_team(ada, "Support")
        assert team["name"] == "Renamed"
        assert seen[0][1]["team"] == {"name": "Support", "organizationId": acme["id"]}
        assert seen[1][0] == "after_create_team" and seen[1][1]["team"]["id"] == team["id"]
        assert "memberCount" not in seen[1][1]["team"]
        updated = await ada.post(
            "/organization/update-team", json={"teamId": team["id"], "data": {"name": "Mine"}}
        )
        assert updated.json()["name"] == "Hooked"
        assert seen[2][1]["updates"] == {"name": "Mine"}
        body = {"teamId": team["id"], "userId": uid(ada)}
        added = await ada.post("/organization/add-team-member", json=body)
        assert added.json()["userId"] == uid(ada)  # the before-hook's data is ignored
        assert seen[5][1]["teamMember"]["id"] == added.json()["id"]
        assert "membershipKey" not in seen[5][1]["teamMember"]
        await ada.post("/organization/remove-team-member", json=body)
        await ada.post("/organization/remove-team", json={"teamId": team["id"]})
        assert [name for name, _ in seen] == [
            "before_create_team",
            "after_create_team",
            "before_update_team",
            "after_update_team",
            "before_add_team_member",
            "after_add_team_member",
            "before_remove_team_member",
            "after_remove_team_member",
            "before_delete_team",
            "after_delete_team",
        ]

        api = org.identity.api
        made = await api.create_team(body={"name": "Ops", "organizationId": acme["id"]})
        assert made["organizationId"] == acme["id"] and "memberCount" not in made
        gone = await api.remove_team(body={"teamId": made["id"], "organizationId": acme["id"]})
        assert gone == {"message": "Team removed successfully."}
        # With headers but no session, it is a request: 401.
        refused = await api.create_team(
            body={"name": "X", "organizationId": acme["id"]},
            headers={"user-agent": "x"},
            as_response=True,
        )
        assert refused.status == 401
