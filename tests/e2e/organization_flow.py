"""What the organization e2e tests share: one access-control setup for both servers, and
the normalisation that makes two servers' answers comparable.

ROLES and STATEMENTS are plain data, handed to TypeScript better-auth as JSON
(`ba-peer.mjs serve` with ORGANIZATION, which builds `createAccessControl` / `ac.newRole`
from them) and to Bastion through `create_access_control` / `ac.new_role`, so both servers
enforce the same roles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from bastion.identity import invitation_sender
from bastion.identity.email import Mailer
from bastion.identity.plugins.organization import (
    DEFAULT_STATEMENTS,
    OrganizationPlugin,
    create_access_control,
    organization,
)
from tests.e2e.js_client import JsClient
from tests.e2e.wire import compare_json

# The statements beside better-auth's defaults: a resource of the application's own.
STATEMENTS: dict[str, list[str]] = {"project": ["create", "read", "update", "delete"]}

_DEFAULT_OWNER = {
    "organization": ["update", "delete"],
    "member": ["create", "update", "delete"],
    "invitation": ["create", "cancel"],
    "team": ["create", "update", "delete"],
    "ac": ["create", "read", "update", "delete"],
}
# better-auth's owner/admin/member, each with a share of `project`.
ROLES: dict[str, dict[str, list[str]]] = {
    "owner": {**_DEFAULT_OWNER, "project": ["create", "read", "update", "delete"]},
    "admin": {
        **_DEFAULT_OWNER,
        "organization": ["update"],
        "project": ["create", "read", "update"],
    },
    "member": {"organization": [], "member": [], "invitation": [], "team": [], "ac": ["read"]}
    | {"project": ["read"]},
}

# organization() as both servers get it (better-auth's spelling; ba-peer turns statements
# and roles into `ac` and `roles`, and mails each invitation).
TS_ORGANIZATION = json.dumps(
    {
        "teams": {"enabled": True},
        "dynamicAccessControl": {"enabled": True},
        "statements": STATEMENTS,
        "roles": ROLES,
    }
)

PASSWORD = "correct-horse-battery"
OWNER = "olivia@example.com"
INVITEE = "ivan@example.com"
INVITATION_PATH = "/accept-invitation/"


def bastion_organization(mailer: Mailer) -> OrganizationPlugin:
    """organization() as TS_ORGANIZATION gives it to better-auth; each invitation mailed
    through `mailer` with the link better-auth's docs build (`<app>/accept-invitation/<id>`),
    as ba-peer does."""
    ac = create_access_control({**DEFAULT_STATEMENTS, **STATEMENTS})
    return organization(
        teams={"enabled": True},
        dynamic_access_control={"enabled": True},
        ac=ac,
        roles={name: ac.new_role(grants) for name, grants in ROLES.items()},
        send_invitation_email=invitation_sender(mailer),
    )


def invitation_id(url: str) -> str:
    """The invitation id from the link in an invitation mail (`…/accept-invitation/<id>`)."""
    path = urlsplit(url).path
    _, marker, found = path.rpartition(INVITATION_PATH)
    assert marker and found and "/" not in found, f"not an invitation link: {url}"
    return found


# --- the flow -------------------------------------------------------------------------

Step = tuple[str, Any, Any]
InvitationLink = Callable[[str], Awaitable[str]]


async def organization_flow(
    owner: JsClient,
    invitee: JsClient,
    invitation_link: InvitationLink,
    steps: list[Step] | None = None,
) -> list[Step]:
    """The life of one organization through two official clients; each step's
    (name, data, error), normalised. `invitation_link(to)` is the link in the next
    invitation mail to `to`. `steps` collects the raw steps as they happen (to compare what
    went before a step that failed)."""
    steps = [] if steps is None else steps

    async def step(
        name: str, client: JsClient, call: str, args: dict[str, Any] | None = None
    ) -> tuple[Any, Any]:
        data, error = await client.call(call, args)
        steps.append((name, data, error))
        return data, error

    async def ok(name: str, client: JsClient, call: str, args: dict[str, Any] | None = None) -> Any:
        data, error = await step(name, client, call, args)
        assert error is None, (name, error)
        return data

    async def refused(
        name: str,
        client: JsClient,
        call: str,
        args: dict[str, Any] | None,
        expected: str | tuple[int, str],
    ) -> None:
        """`expected`: the error code, or (status, message) where better-auth answers with a
        message and no code."""
        data, error = await step(name, client, call, args)
        assert data is None and error is not None, (name, data)
        if isinstance(expected, str):
            assert error.get("code") == expected, (name, error)
        else:
            got = (error.get("status"), error.get("message"), error.get("code"))
            assert got == (*expected, None), (name, error)

    owner_user = (await ok("owner signs up", owner, "signUp.email", _account(OWNER, "Olivia")))[
        "user"
    ]
    invitee_user = (
        await ok("invitee signs up", invitee, "signUp.email", _account(INVITEE, "Ivan"))
    )["user"]

    # --- the organization --------------------------------------------------------------
    assert await ok("slug free", owner, "organization.checkSlug", {"slug": "acme"}) == {
        "status": True
    }
    org = await ok(
        "create",
        owner,
        "organization.create",
        {"name": "Acme", "slug": "acme", "metadata": {"plan": "pro"}},
    )
    assert org["slug"] == "acme" and org["metadata"] == {"plan": "pro"}
    assert [m["role"] for m in org["members"]] == ["owner"]
    org_id = org["id"]
    await refused(
        "slug taken",
        owner,
        "organization.checkSlug",
        {"slug": "acme"},
        "ORGANIZATION_SLUG_ALREADY_TAKEN",
    )
    await refused(
        "create, slug taken",
        owner,
        "organization.create",
        {"name": "Acme 2", "slug": "acme"},
        "ORGANIZATION_ALREADY_EXISTS",
    )
    listed = await ok("list", owner, "organization.list")
    assert [o["slug"] for o in listed] == ["acme"]
    session = await ok("session has the active organization", owner, "getSession")
    assert session["session"]["activeOrganizationId"] == org_id
    full = await ok("full organization", owner, "organization.getFullOrganization")
    assert full["id"] == org_id and [m["user"]["email"] for m in full["members"]] == [OWNER]
    await ok(
        "update",
        owner,
        "organization.update",
        {"data": {"name": "Acme Inc", "metadata": {"plan": "team"}}},
    )

    # --- invitation by mail ------------------------------------------------------------
    await refused(
        "the invitee cannot list invitations",
        invitee,
        "organization.listInvitations",
        {"query": {"organizationId": org_id}},
        (403, "You are not a member of this organization"),
    )
    invitation = await ok(
        "invite", owner, "organization.inviteMember", {"email": INVITEE, "role": "member"}
    )
    assert invitation["status"] == "pending" and invitation["email"] == INVITEE
    lifetime = _when(invitation["expiresAt"]) - _when(invitation["createdAt"])
    assert abs(lifetime.total_seconds() - 48 * 3600) < 5, lifetime
    link = await invitation_link(INVITEE)
    assert invitation_id(link) == invitation["id"], link
    pending = await ok("list invitations", owner, "organization.listInvitations")
    assert [i["email"] for i in pending] == [INVITEE]
    opened = await ok(
        "open the invitation",
        invitee,
        "organization.getInvitation",
        {"query": {"id": invitation_id(link)}},
    )
    assert (opened["organizationName"], opened["inviterEmail"]) == ("Acme Inc", OWNER)
    await refused(
        "the owner cannot open another's invitation",
        owner,
        "organization.getInvitation",
        {"query": {"id": invitation_id(link)}},
        "YOU_ARE_NOT_THE_RECIPIENT_OF_THE_INVITATION",
    )
    await refused(
        "listing one's invitations needs a verified email",
        invitee,
        "organization.listUserInvitations",
        None,
        "EMAIL_VERIFICATION_REQUIRED_FOR_INVITATION",
    )
    accepted = await ok(
        "accept", invitee, "organization.acceptInvitation", {"invitationId": invitation_id(link)}
    )
    assert accepted["invitation"]["status"] == "accepted"
    assert accepted["member"]["role"] == "member" and accepted["member"]["organizationId"] == org_id
    member_id = accepted["member"]["id"]
    await refused(
        "accept again",
        invitee,
        "organization.acceptInvitation",
        {"invitationId": invitation_id(link)},
        "INVITATION_NOT_FOUND",
    )
    session = await ok("the invitee's session", invitee, "getSession")
    assert session["session"]["activeOrganizationId"] == org_id

    # --- members and roles -------------------------------------------------------------
    members = await ok("list members", owner, "organization.listMembers")
    assert members["total"] == 2
    assert sorted(m["user"]["email"] for m in members["members"]) == [INVITEE, OWNER]
    await ok(
        "list members, limited",
        owner,
        "organization.listMembers",
        {"query": {"organizationId": org_id, "limit": 1, "sortBy": "createdAt"}},
    )
    await refused(
        "a member may not change roles",
        invitee,
        "organization.updateMemberRole",
        {"memberId": member_id, "role": "admin"},
        "YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_MEMBER",
    )
    updated = await ok(
        "make the invitee admin",
        owner,
        "organization.updateMemberRole",
        {"memberId": member_id, "role": "admin"},
    )
    assert updated["role"] == "admin"
    active = await ok("active member", invitee, "organization.getActiveMember")
    assert active["role"] == "admin" and active["user"]["email"] == INVITEE
    assert await ok("active member role", invitee, "organization.getActiveMemberRole") == {
        "role": "admin"
    }

    # --- teams -------------------------------------------------------------------------
    teams = await ok("list teams (the default team)", owner, "organization.listTeams")
    team = await ok("create team", owner, "organization.createTeam", {"name": "Core"})
    assert team["name"] == "Core" and team["organizationId"] == org_id
    assert len(await ok("list teams", owner, "organization.listTeams")) == len(teams) + 1
    await ok(
        "add the invitee to the team",
        owner,
        "organization.addTeamMember",
        {"teamId": team["id"], "userId": invitee_user["id"]},
    )
    await ok(
        "rename the team",
        invitee,
        "organization.updateTeam",
        {"teamId": team["id"], "data": {"name": "Core team"}},
    )
    await refused(
        "the owner is not in the team",
        owner,
        "organization.setActiveTeam",
        {"teamId": team["id"]},
        "USER_IS_NOT_A_MEMBER_OF_THE_TEAM",
    )
    made_active = await ok(
        "set active team", invitee, "organization.setActiveTeam", {"teamId": team["id"]}
    )
    assert made_active["id"] == team["id"]
    session = await ok("the session has the active team", invitee, "getSession")
    assert session["session"]["activeTeamId"] == team["id"]
    user_teams = await ok("list user teams", invitee, "organization.listUserTeams")
    assert [t["name"] for t in user_teams] == ["Core team"]
    team_members = await ok("list team members", invitee, "organization.listTeamMembers")
    assert [m["userId"] for m in team_members] == [invitee_user["id"]]
    await ok("clear the active team", invitee, "organization.setActiveTeam", {"teamId": None})

    # --- dynamic access control --------------------------------------------------------
    await refused(
        "a role may not grant what its creator lacks",
        invitee,
        "organization.createRole",
        {"role": "Janitor", "permission": {"project": ["delete"]}},
        "YOU_ARE_NOT_ALLOWED_TO_CREATE_A_ROLE",
    )
    created = await ok(
        "create role",
        owner,
        "organization.createRole",
        {"role": "Reviewer", "permission": {"project": ["read", "update"]}},
    )
    assert created["roleData"]["role"] == "reviewer" and created["success"] is True
    await refused(
        "create role, unknown resource",
        owner,
        "organization.createRole",
        {"role": "ghost", "permission": {"spaceship": ["fly"]}},
        "INVALID_RESOURCE",
    )
    await refused(
        "create role, name of a static role",
        owner,
        "organization.createRole",
        {"role": "admin", "permission": {"project": ["read"]}},
        "ROLE_NAME_IS_ALREADY_TAKEN",
    )
    roles = await ok("list roles", owner, "organization.listRoles")
    assert [r["role"] for r in roles] == ["reviewer"]
    role = await ok(
        "get role", invitee, "organization.getRole", {"query": {"roleName": "reviewer"}}
    )
    assert role["permission"] == {"project": ["read", "update"]}
    await ok(
        "update role",
        owner,
        "organization.updateRole",
        {"roleName": "reviewer", "data": {"permission": {"project": ["read", "update", "create"]}}},
    )
    await ok(
        "give the invitee the dynamic role",
        owner,
        "organization.updateMemberRole",
        {"memberId": member_id, "role": ["reviewer"]},
    )
    for name, permissions, expected in [
        ("may update projects", {"project": ["update"]}, True),
        ("may create projects", {"project": ["create"]}, True),
        ("may not delete projects", {"project": ["delete"]}, False),
        ("may not invite", {"invitation": ["create"]}, False),
    ]:
        answer = await ok(name, invitee, "organization.hasPermission", {"permissions": permissions})
        assert answer == {"error": None, "success": expected}, (name, answer)
    await refused(
        "no longer an admin",
        invitee,
        "organization.inviteMember",
        {"email": "x@example.com", "role": "member"},
        "YOU_ARE_NOT_ALLOWED_TO_INVITE_USERS_TO_THIS_ORGANIZATION",
    )
    await refused(
        "the role is in use",
        owner,
        "organization.deleteRole",
        {"roleName": "reviewer"},
        "ROLE_IS_ASSIGNED_TO_MEMBERS",
    )

    # --- set active --------------------------------------------------------------------
    assert (
        await ok(
            "clear the active organization",
            owner,
            "organization.setActive",
            {"organizationId": None},
        )
        is None
    )
    await refused(
        "no active organization",
        owner,
        "organization.hasPermission",
        {"permissions": {"project": ["read"]}},
        "NO_ACTIVE_ORGANIZATION",
    )
    none = await ok("full organization, none active", owner, "organization.getFullOrganization")
    assert none is None
    again = await ok(
        "set active by slug", owner, "organization.setActive", {"organizationSlug": "acme"}
    )
    assert again["id"] == org_id
    answer = await ok(
        "the owner may delete it",
        owner,
        "organization.hasPermission",
        {"permissions": {"organization": ["delete"], "project": ["delete"]}},
    )
    assert answer["success"] is True

    # --- leave and delete --------------------------------------------------------------
    await refused(
        "the only owner cannot leave",
        owner,
        "organization.leave",
        {"organizationId": org_id},
        "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER",
    )
    left = await ok("leave", invitee, "organization.leave", {"organizationId": org_id})
    assert left["userId"] == invitee_user["id"]
    assert await ok("the invitee's organizations", invitee, "organization.list") == []
    await refused(
        "gone: leaving cleared the active organization",
        invitee,
        "organization.getActiveMember",
        None,
        "NO_ACTIVE_ORGANIZATION",
    )
    await ok("delete the role", owner, "organization.deleteRole", {"roleName": "reviewer"})
    await ok("delete", owner, "organization.delete", {"organizationId": org_id})
    assert await ok("no organizations", owner, "organization.list") == []
    session = await ok("the owner's session after delete", owner, "getSession")
    assert session["session"].get("activeOrganizationId") is None
    assert owner_user["email"] == OWNER

    return normalised(steps)


def normalised(steps: list[Step]) -> list[Step]:
    """The steps of one flow with `normalise` (one set of labels for the whole flow)."""
    labels: dict[str, str] = {}
    return [(n, normalise(data, labels), normalise(error, labels)) for n, data, error in steps]


def compare_steps(theirs: list[Step], ours: list[Step]) -> list[str]:
    """What differs between better-auth's normalised steps and ours, step by step."""
    problems = []
    if [name for name, _, _ in ours] != [name for name, _, _ in theirs][: len(ours)]:
        theirs_named = [n for n, _, _ in theirs]
        problems.append(f"steps: {[n for n, _, _ in ours]}, better-auth has {theirs_named}")
    # `ours` may stop early (a failed step): compared as far as it went.
    for (name, our_data, our_error), (_, their_data, their_error) in zip(
        ours, theirs, strict=False
    ):
        problems += compare_json(their_data, our_data, f"{name}: data")
        problems += compare_json(their_error, our_error, f"{name}: error")
    return problems


def _when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _account(email: str, name: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD, "name": name}


# --- normalisation --------------------------------------------------------------------

_ID_KEYS = re.compile(r"^(id|.+Id)$")
_SORT_KEYS = ("email", "slug", "name", "role")


def normalise(value: Any, labels: dict[str, str]) -> Any:
    """`value` with every id replaced by a label naming the order in which it was first
    seen (`<id 3>`), so that relations (a member's organizationId is the organization's id)
    survive while the random values go; lists of records in a stable order (by e-mail, slug,
    name or role), since neither server promises one when none is asked for.

    `labels` is carried from step to step of one flow. Dates stay (compare_json compares
    createdAt/updatedAt/expiresAt by type)."""
    if isinstance(value, list):
        records = all(isinstance(v, dict) for v in value)
        items = sorted(value, key=lambda r: _record_key(r, labels)) if records else value
        return [normalise(item, labels) for item in items]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key in sorted(value):
        item = value[key]
        if isinstance(item, str) and _ID_KEYS.match(key):
            # teamId may hold several ids, comma-separated
            out[key] = ",".join(_label(part, labels) for part in item.split(","))
        else:
            out[key] = normalise(item, labels)
    return out


def _label(value: str, labels: dict[str, str]) -> str:
    if value not in labels:
        labels[value] = f"<id {len(labels) + 1}>"
    return labels[value]


def _record_key(record: dict[str, Any], labels: dict[str, str]) -> tuple[str, ...]:
    """Natural keys first; then the labels of ids seen before (a team member's userId),
    never a raw id, whose order differs between the servers."""
    nested = record.get("user")
    user: dict[str, Any] = nested if isinstance(nested, dict) else {}
    found = [str(record.get(k) or user.get(k) or "") for k in _SORT_KEYS]
    for key in sorted(record):
        if _ID_KEYS.match(key) and isinstance(record[key], str):
            found.append(labels.get(record[key], ""))
    return tuple(found)
