"""Invitations through HTTP: invite-member, accept, reject, cancel, get-invitation,
list-invitations, list-user-invitations, with better-auth 1.7.25's answers and refusals
(each observed on the TypeScript package: /work/helpers/errata-invitations.md), concurrent
accepts, and invitation mails through a real SMTP server and the console mailer."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import datetime
from typing import Any

import httpx
import pytest

from bastion.identity import (
    ConsoleMailer,
    InvitationEmail,
    invitation_sender,
    organization,
)
from bastion.identity.errors import APIError
from bastion.identity.plugins.organization import OrganizationCode
from tests.identity.mailbox import SMTPMailbox
from tests.identity.plugins.organization.kit import Org, create_org, error, org_identity
from tests.identity.routes.helpers import Clock

INVITATION_KEYS = {
    "id",
    "organizationId",
    "email",
    "role",
    "status",
    "expiresAt",
    "createdAt",
    "inviterId",
}


async def invite(
    client: httpx.AsyncClient, email: str, role: Any = "member", **extra: Any
) -> httpx.Response:
    return await client.post(
        "/organization/invite-member", json={"email": email, "role": role, **extra}
    )


async def invited(client: httpx.AsyncClient, email: str, role: Any = "member", **extra: Any) -> Any:
    response = await invite(client, email, role, **extra)
    assert response.status_code == 200, response.text
    return response.json()


async def accept(client: httpx.AsyncClient, invitation_id: str) -> httpx.Response:
    return await client.post(
        "/organization/accept-invitation", json={"invitationId": invitation_id}
    )


async def reject(client: httpx.AsyncClient, invitation_id: str) -> httpx.Response:
    return await client.post(
        "/organization/reject-invitation", json={"invitationId": invitation_id}
    )


async def cancel(client: httpx.AsyncClient, invitation_id: str) -> httpx.Response:
    return await client.post(
        "/organization/cancel-invitation", json={"invitationId": invitation_id}
    )


async def verify(org: Org, client: httpx.AsyncClient) -> None:
    await org.identity.store.update_user(client.user["id"], {"emailVerified": True})  # type: ignore[attr-defined]


async def add_member(org: Org, organization_id: str, client: httpx.AsyncClient, role: str) -> None:
    await org.identity.db.create(
        "member",
        {
            "organizationId": organization_id,
            "userId": client.user["id"],  # type: ignore[attr-defined]
            "role": role,
            "createdAt": datetime.now(),
        },
    )


def message(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


# -- the whole life of an invitation --------------------------------------------------------------


async def test_invite_get_list_accept(database_url: str) -> None:
    async with org_identity(database_url) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        acme = await create_org(ada, "acme")
        # The address is stored lower-cased; a role list is stored comma-separated, trimmed.
        invitation = await invited(ada, "Bob@Example.com", ["member", " admin"])
        assert set(invitation) == INVITATION_KEYS  # no teamId without teams
        assert invitation["email"] == "bob@example.com"
        assert invitation["role"] == "member,admin"
        assert invitation["status"] == "pending"
        assert invitation["organizationId"] == acme["id"]
        assert invitation["inviterId"] == ada.user["id"]  # type: ignore[attr-defined]
        created = datetime.fromisoformat(invitation["createdAt"])
        expires = datetime.fromisoformat(invitation["expiresAt"])
        assert abs((expires - created).total_seconds() - 48 * 3600) < 2

        got = await bob.get("/organization/get-invitation", params={"id": invitation["id"]})
        assert got.status_code == 200
        assert got.json() == {
            **invitation,
            "organizationName": "Acme",
            "organizationSlug": "acme",
            "inviterEmail": "ada@example.com",
        }
        listed = await ada.get("/organization/list-invitations")
        assert listed.json() == [invitation]
        await verify(org, bob)
        mine = await bob.get("/organization/list-user-invitations")
        assert mine.json() == [{**invitation, "organizationName": "Acme"}]

        accepted = await accept(bob, invitation["id"])
        assert accepted.status_code == 200, accepted.text
        body = accepted.json()
        assert body["invitation"] == {**invitation, "status": "accepted"}
        member = body["member"]
        assert set(member) == {"id", "organizationId", "userId", "role", "createdAt"}
        assert (member["userId"], member["role"]) == (bob.user["id"], "member,admin")  # type: ignore[attr-defined]
        # The new organization is the session's active one, in the database and the cookie.
        assert "better-auth.session_token" in accepted.headers.get("set-cookie", "")
        session = (await bob.get("/get-session")).json()["session"]
        assert session["activeOrganizationId"] == acme["id"]
        members = (await ada.get("/organization/get-full-organization")).json()["members"]
        assert sorted(m["user"]["email"] for m in members) == ["ada@example.com", "bob@example.com"]
        # Accepted: no longer pending, anywhere.
        assert error(await accept(bob, invitation["id"])) == (400, "INVITATION_NOT_FOUND")
        assert (await bob.get("/organization/list-user-invitations")).json() == []
        again = await bob.get("/organization/get-invitation", params={"id": invitation["id"]})
        assert error(again) == (400, "INVITATION_NOT_FOUND")
        # list-invitations keeps every status
        assert [i["status"] for i in (await ada.get("/organization/list-invitations")).json()] == [
            "accepted"
        ]
        await bob.aclose()
        await ada.aclose()


# -- invite-member refusals -----------------------------------------------------------------------


async def test_invite_member_refusals() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        eve = await org.user("eve@example.com", "Eve")
        acme = await create_org(ada, "acme")
        other = await create_org(eve, "other")
        await add_member(org, acme["id"], bob, "member")

        assert error(await invite(org.client(), "x@example.com")) == (401, "UNAUTHORIZED")
        missing = await ada.post("/organization/invite-member", json={"email": "x@example.com"})
        assert message(missing) == (
            400,
            {"message": "[body.role] Invalid input", "code": "VALIDATION_ERROR"},
        )
        assert error(await invite(ada, "x@example.com", 5)) == (400, "VALIDATION_ERROR")
        assert error(await invite(ada, "x@example.com", teamId=5)) == (400, "VALIDATION_ERROR")
        assert error(await invite(ada, "not-an-email")) == (400, "INVALID_EMAIL")
        # No organization named and none active
        carl = await org.user("carl@example.com", "Carl")
        assert error(await invite(carl, "x@example.com")) == (400, "ORGANIZATION_NOT_FOUND")
        # An organization that does not exist, or one the caller is not in: the same answer
        for organization_id in ("nope", other["id"]):
            response = await invite(ada, "x@example.com", organizationId=organization_id)
            assert error(response) == (400, "MEMBER_NOT_FOUND")
        # A plain member may not invite
        refused = await invite(bob, "x@example.com", organizationId=acme["id"])
        assert error(refused) == (403, "YOU_ARE_NOT_ALLOWED_TO_INVITE_USERS_TO_THIS_ORGANIZATION")
        # Roles: none, unknown (better-auth's own message, without a code)
        assert error(await invite(ada, "x@example.com", " , ")) == (400, "ROLE_NOT_FOUND")
        assert message(await invite(ada, "x@example.com", ["foo", "member", "bar"])) == (
            400,
            {"message": "ROLE_NOT_FOUND: foo, bar"},
        )
        # Already a member, whatever the casing
        await add_member(org, acme["id"], carl, "member")
        assert error(await invite(ada, "CARL@example.com")) == (
            400,
            "USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION",
        )
        # Already invited
        await invited(ada, "dan@example.com")
        assert error(await invite(ada, "dan@example.com", "admin")) == (
            400,
            "USER_IS_ALREADY_INVITED_TO_THIS_ORGANIZATION",
        )
        assert await org.identity.db.count("invitation") == 1
        for client in (ada, bob, eve, carl):
            await client.aclose()


async def test_only_the_creator_role_may_invite_or_see_an_owner() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        adam = await org.user("adam@example.com", "Adam")
        acme = await create_org(ada, "acme")
        await add_member(org, acme["id"], adam, "admin")
        refused = await invite(
            adam, "o@example.com", ["member", "owner"], organizationId=acme["id"]
        )
        assert error(refused) == (403, "YOU_ARE_NOT_ALLOWED_TO_INVITE_USER_WITH_THIS_ROLE")
        owner_invitation = await invited(ada, "o@example.com", "owner")
        admin_invitation = await invited(adam, "m@example.com", "member", organizationId=acme["id"])
        # An admin lists invitations without those granting the creator role; the owner all.
        query = {"organizationId": acme["id"]}
        seen = (await adam.get("/organization/list-invitations", params=query)).json()
        assert [i["id"] for i in seen] == [admin_invitation["id"]]
        seen = (await ada.get("/organization/list-invitations", params=query)).json()
        assert {i["id"] for i in seen} == {owner_invitation["id"], admin_invitation["id"]}
        # Nor may an admin renew an owner's invitation
        resent = await invite(
            adam, "o@example.com", "member", organizationId=acme["id"], resend=True
        )
        assert error(resent) == (403, "YOU_ARE_NOT_ALLOWED_TO_INVITE_USER_WITH_THIS_ROLE")
        await ada.aclose()
        await adam.aclose()


async def test_custom_and_stored_roles_may_be_invited() -> None:
    from bastion.identity import create_access_control
    from bastion.identity.plugins.organization import DEFAULT_STATEMENTS

    ac = create_access_control(DEFAULT_STATEMENTS)
    roles = {
        "owner": ac.new_role({"invitation": ["create", "cancel"]}),
        "editor": ac.new_role({"invitation": ["create"]}),
    }
    options = {"ac": ac, "roles": roles, "dynamic_access_control": {"enabled": True}}
    async with org_identity(plugin_options=options) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        # The default role names stay valid beside custom ones, as in better-auth.
        assert (await invited(ada, "a@example.com", "editor"))["role"] == "editor"
        assert (await invited(ada, "b@example.com", "member"))["role"] == "member"
        assert message(await invite(ada, "c@example.com", "auditor")) == (
            400,
            {"message": "ROLE_NOT_FOUND: auditor"},
        )
        await org.identity.db.create(
            "organizationRole",
            {
                "organizationId": acme["id"],
                "role": "auditor",
                "permission": '{"member":["read"]}',
                "createdAt": datetime.now(),
            },
        )
        assert (await invited(ada, "c@example.com", "auditor"))["role"] == "auditor"
        await ada.aclose()


# -- re-invites and limits ------------------------------------------------------------------------


async def test_resend_renews_the_pending_invitation_and_mails_it_again() -> None:
    sent: list[InvitationEmail] = []
    clock = Clock()
    options = {"send_invitation_email": lambda data, request: sent.append(data)}
    async with org_identity(plugin_options=options, clock=clock) as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        first = await invited(ada, "bob@example.com", "member")
        clock.advance(3600)
        # resend renews the invitation as it is: its role stays, whatever this one asks
        again = await invite(ada, "bob@example.com", "admin", resend=True)
        assert again.status_code == 200
        renewed = again.json()
        assert renewed["id"] == first["id"] and renewed["role"] == "member"
        delta = datetime.fromisoformat(renewed["expiresAt"]) - datetime.fromisoformat(
            first["expiresAt"]
        )
        assert delta.total_seconds() == 3600
        assert [d.id for d in sent] == [first["id"], first["id"]]
        assert sent[1].invitation["expiresAt"] == datetime.fromisoformat(renewed["expiresAt"])
        assert await org.identity.db.count("invitation") == 1
        # resend with nothing pending: a new invitation
        fresh = await invited(ada, "new@example.com", resend=True)
        assert fresh["id"] != first["id"]
        await ada.aclose()


async def test_cancel_pending_invitations_on_re_invite() -> None:
    options = {"cancel_pending_invitations_on_re_invite": True}
    async with org_identity(plugin_options=options) as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        first = await invited(ada, "bob@example.com", "member")
        second = await invited(ada, "bob@example.com", "admin")
        assert second["id"] != first["id"] and second["role"] == "admin"
        statuses = {
            i["id"]: i["status"] for i in (await ada.get("/organization/list-invitations")).json()
        }
        assert statuses == {first["id"]: "canceled", second["id"]: "pending"}
        await ada.aclose()


async def test_invitation_limit_counts_pending_unexpired_invitations() -> None:
    clock = Clock()
    async with org_identity(plugin_options={"invitation_limit": 2}, clock=clock) as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        await invited(ada, "a@example.com")
        second = await invited(ada, "b@example.com")
        assert error(await invite(ada, "c@example.com")) == (403, "INVITATION_LIMIT_REACHED")
        await cancel(ada, second["id"])  # a canceled one no longer counts
        await invited(ada, "c@example.com")
        clock.advance(48 * 3600 + 1)  # nor do expired ones
        await invited(ada, "d@example.com")
        await invited(ada, "e@example.com")
        await ada.aclose()
    seen: list[Any] = []

    async def limit(data: dict[str, Any]) -> int:
        seen.append(data)
        return 0

    async with org_identity(plugin_options={"invitation_limit": limit}) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        assert error(await invite(ada, "a@example.com")) == (403, "INVITATION_LIMIT_REACHED")
        assert seen[0]["organization"]["id"] == acme["id"]
        assert seen[0]["member"]["role"] == "owner"
        await ada.aclose()


async def test_membership_limit_is_checked_on_accept() -> None:
    async with org_identity(plugin_options={"membership_limit": 2}) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        carl = await org.user("carl@example.com", "Carl")
        await create_org(ada, "acme")
        to_bob = await invited(ada, "bob@example.com")
        to_carl = await invited(ada, "carl@example.com")
        assert (await accept(bob, to_bob["id"])).status_code == 200
        refused = await accept(carl, to_carl["id"])
        assert error(refused) == (403, "ORGANIZATION_MEMBERSHIP_LIMIT_REACHED")
        # still pending: it may be accepted once a seat is free
        got = await carl.get("/organization/get-invitation", params={"id": to_carl["id"]})
        assert got.json()["status"] == "pending"
        for client in (ada, bob, carl):
            await client.aclose()


# -- accept, reject, cancel: who and when ---------------------------------------------------------


async def test_only_the_recipient_may_accept_reject_or_view() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        eve = await org.user("eve@example.com", "Eve")
        await create_org(ada, "acme")
        invitation = await invited(ada, "bob@example.com")
        code = (403, "YOU_ARE_NOT_THE_RECIPIENT_OF_THE_INVITATION")
        assert error(await accept(eve, invitation["id"])) == code
        assert error(await reject(eve, invitation["id"])) == code
        got = await eve.get("/organization/get-invitation", params={"id": invitation["id"]})
        assert error(got) == code
        assert error(await accept(org.client(), invitation["id"])) == (401, "UNAUTHORIZED")
        assert await org.identity.db.count("member") == 1
        await ada.aclose()
        await eve.aclose()


async def test_expired_canceled_and_rejected_invitations() -> None:
    clock = Clock()
    async with org_identity(clock=clock) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        await create_org(ada, "acme")
        expired = await invited(ada, "bob@example.com")
        clock.advance(48 * 3600 + 1)
        assert error(await accept(bob, expired["id"])) == (400, "INVITATION_NOT_FOUND")
        got = await bob.get("/organization/get-invitation", params={"id": expired["id"]})
        assert error(got) == (400, "INVITATION_NOT_FOUND")
        # An expired invitation no longer blocks a new one (and may still be rejected,
        # as better-auth has no expiry check there).
        fresh = await invited(ada, "bob@example.com")
        rejected = await reject(bob, expired["id"])
        assert rejected.status_code == 200
        assert rejected.json() == {"invitation": {**expired, "status": "rejected"}, "member": None}
        # Rejected or canceled: neither may be accepted nor rejected again.
        not_found = {"message": "Invitation not found!", "code": "INVITATION_NOT_FOUND"}
        assert message(await reject(bob, expired["id"])) == (400, not_found)
        assert (await cancel(ada, fresh["id"])).json()["status"] == "canceled"
        assert error(await accept(bob, fresh["id"])) == (400, "INVITATION_NOT_FOUND")
        assert message(await reject(bob, fresh["id"])) == (400, not_found)
        assert message(await reject(bob, "nope")) == (400, not_found)
        assert error(await accept(bob, "nope")) == (400, "INVITATION_NOT_FOUND")
        missing = await bob.post("/organization/accept-invitation", json={})
        assert message(missing) == (
            400,
            {
                "message": "[body.invitationId] Invalid input: expected string, received undefined",
                "code": "VALIDATION_ERROR",
            },
        )
        assert await org.identity.db.count("member") == 1
        await ada.aclose()
        await bob.aclose()


async def test_email_verification_on_invitation() -> None:
    options = {"require_email_verification_on_invitation": True}
    async with org_identity(plugin_options=options) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        await create_org(ada, "acme")
        first = await invited(ada, "bob@example.com")
        code = (403, "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION")
        assert error(await accept(bob, first["id"])) == code
        assert error(await reject(bob, first["id"])) == code
        got = await bob.get("/organization/get-invitation", params={"id": first["id"]})
        assert error(got) == (403, "EMAIL_VERIFICATION_REQUIRED_FOR_INVITATION")
        await verify(org, bob)
        assert (
            await bob.get("/organization/get-invitation", params={"id": first["id"]})
        ).status_code == 200
        assert (await accept(bob, first["id"])).status_code == 200
        await ada.aclose()
        await bob.aclose()
    # Off by default (invitation ids are random here): an unverified address may accept,
    # but list-user-invitations always wants a verified one.
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        await create_org(ada, "acme")
        invitation = await invited(ada, "bob@example.com")
        listed = await bob.get("/organization/list-user-invitations")
        assert error(listed) == (403, "EMAIL_VERIFICATION_REQUIRED_FOR_INVITATION")
        assert (await accept(bob, invitation["id"])).status_code == 200
        await ada.aclose()
        await bob.aclose()


async def test_accepting_while_already_a_member_is_refused() -> None:
    """better-auth 1.7.25 makes a second member row here (errata); Bastion refuses and
    leaves the invitation pending."""
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        acme = await create_org(ada, "acme")
        invitation = await invited(ada, "bob@example.com")
        await add_member(org, acme["id"], bob, "member")
        refused = await accept(bob, invitation["id"])
        assert error(refused) == (400, "USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION")
        assert await org.identity.db.count("member") == 2
        got = await bob.get("/organization/get-invitation", params={"id": invitation["id"]})
        assert got.json()["status"] == "pending"
        await ada.aclose()
        await bob.aclose()


async def test_cancel_invitation() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        eve = await org.user("eve@example.com", "Eve")
        acme = await create_org(ada, "acme")
        await create_org(eve, "other")
        await add_member(org, acme["id"], bob, "member")
        invitation = await invited(ada, "carl@example.com")
        assert error(await cancel(ada, "nope")) == (400, "INVITATION_NOT_FOUND")
        assert error(await cancel(eve, invitation["id"])) == (400, "MEMBER_NOT_FOUND")
        refused = await cancel(bob, invitation["id"])
        assert error(refused) == (403, "YOU_ARE_NOT_ALLOWED_TO_CANCEL_THIS_INVITATION")
        assert error(await cancel(org.client(), invitation["id"])) == (401, "UNAUTHORIZED")
        canceled = await cancel(ada, invitation["id"])
        assert canceled.status_code == 200
        assert canceled.json() == {**invitation, "status": "canceled"}
        # better-auth checks no status: cancelling again answers the same
        assert (await cancel(ada, invitation["id"])).json()["status"] == "canceled"
        for client in (ada, bob, eve):
            await client.aclose()


# -- the reads -------------------------------------------------------------------------------------


async def test_get_invitation_refusals() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        adam = await org.user("adam@example.com", "Adam")
        bob = await org.user("bob@example.com", "Bob")
        acme = await create_org(ada, "acme")
        await add_member(org, acme["id"], adam, "admin")
        invitation = await invited(adam, "bob@example.com", organizationId=acme["id"])
        anonymous = await org.anonymous.get(
            "/organization/get-invitation", params={"id": invitation["id"]}
        )
        assert message(anonymous) == (401, {"message": "Not authenticated"})
        no_id = await bob.get("/organization/get-invitation")
        assert message(no_id) == (
            400,
            {
                "message": "[query.id] Invalid input: expected string, received undefined",
                "code": "VALIDATION_ERROR",
            },
        )
        assert error(await bob.get("/organization/get-invitation", params={"id": "x"})) == (
            400,
            "INVITATION_NOT_FOUND",
        )
        # The inviter has left the organization
        await org.identity.db.delete_many("member", {"userId": adam.user["id"]})  # type: ignore[attr-defined]
        gone = await bob.get("/organization/get-invitation", params={"id": invitation["id"]})
        assert error(gone) == (400, "INVITER_IS_NO_LONGER_A_MEMBER_OF_THE_ORGANIZATION")
        for client in (ada, adam, bob):
            await client.aclose()


async def test_list_invitations_refusals() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        eve = await org.user("eve@example.com", "Eve")
        acme = await create_org(ada, "acme")
        await add_member(org, acme["id"], bob, "member")
        unauthorized = await org.anonymous.get("/organization/list-invitations")
        assert error(unauthorized) == (401, "UNAUTHORIZED")
        assert message(await eve.get("/organization/list-invitations")) == (
            400,
            {"message": "Organization ID is required"},
        )
        query = {"organizationId": acme["id"]}
        assert message(await eve.get("/organization/list-invitations", params=query)) == (
            403,
            {"message": "You are not a member of this organization"},
        )
        unknown = await eve.get("/organization/list-invitations", params={"organizationId": "x"})
        assert unknown.status_code == 403
        refused = await bob.get("/organization/list-invitations", params=query)
        assert error(refused) == (403, "YOU_ARE_NOT_ALLOWED_TO_LIST_INVITATIONS")
        for client in (ada, bob, eve):
            await client.aclose()


async def test_list_user_invitations() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        acme = await create_org(ada, "acme")
        beta = await create_org(ada, "beta")
        one = await invited(ada, "bob@example.com", organizationId=acme["id"])
        two = await invited(ada, "bob@example.com", organizationId=beta["id"])
        await cancel(ada, one["id"])
        await verify(org, bob)
        listed = (await bob.get("/organization/list-user-invitations")).json()
        assert listed == [{**two, "organizationName": "Beta"}]
        # The email query is for server calls only
        by_email = await bob.get("/organization/list-user-invitations", params={"email": "x@y.z"})
        assert message(by_email) == (
            400,
            {"message": "User email cannot be passed for client side API calls."},
        )
        nobody = await org.anonymous.get("/organization/list-user-invitations")
        assert message(nobody) == (
            400,
            {"message": "Missing session headers, or email query parameter."},
        )
        server = await org.identity.api.list_user_invitations(query={"email": "BOB@example.com"})
        assert [i["id"] for i in server] == [two["id"]]
        assert server[0]["organizationName"] == "Beta"
        await ada.aclose()
        await bob.aclose()


# -- teams -----------------------------------------------------------------------------------------


async def test_invitations_with_teams() -> None:
    teams = {"enabled": True, "maximum_members_per_team": 2}
    async with org_identity(plugin_options={"teams": teams}) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        carl = await org.user("carl@example.com", "Carl")
        dan = await org.user("dan@example.com", "Dan")
        eve = await org.user("eve@example.com", "Eve")
        acme = await create_org(ada, "acme")
        other = await create_org(eve, "other")
        db = org.identity.db
        now = datetime.now()
        t1 = await db.create("team", {"name": "T1", "organizationId": acme["id"], "createdAt": now})
        t2 = await db.create("team", {"name": "T2", "organizationId": acme["id"], "createdAt": now})
        foreign = await db.create(
            "team", {"name": "F", "organizationId": other["id"], "createdAt": now}
        )
        query = {"organizationId": acme["id"]}
        assert error(await invite(ada, "x@example.com", teamId="a,b", **query)) == (
            400,
            "INVALID_TEAM_ID",
        )
        for team_id in ("nope", foreign["id"]):
            response = await invite(ada, "x@example.com", teamId=[team_id], **query)
            assert error(response) == (400, "TEAM_NOT_FOUND")
        plain = await invited(ada, "dan@example.com", **query)
        assert plain["teamId"] is None

        # One team: the accepted member joins it and it becomes the active team.
        single = await invited(ada, "bob@example.com", teamId=t1["id"], **query)
        assert single["teamId"] == t1["id"]
        assert (await accept(bob, single["id"])).status_code == 200
        session = (await bob.get("/get-session")).json()["session"]
        assert (session["activeOrganizationId"], session["activeTeamId"]) == (acme["id"], t1["id"])
        # Two teams: both joined, no active team chosen.
        double = await invited(ada, "carl@example.com", teamId=[t1["id"], t2["id"]], **query)
        assert double["teamId"] == f"{t1['id']},{t2['id']}"
        assert (await accept(carl, double["id"])).status_code == 200
        session = (await carl.get("/get-session")).json()["session"]
        assert session["activeTeamId"] is None
        joined = await db.find_many("teamMember", {"userId": carl.user["id"]})  # type: ignore[attr-defined]
        assert {m["teamId"] for m in joined} == {t1["id"], t2["id"]}
        # T1 is full (2 members): refused at invite time, and at accept time.
        full = await invite(ada, "fay@example.com", teamId=t1["id"], **query)
        assert error(full) == (403, "TEAM_MEMBER_LIMIT_REACHED")
        await db.update("invitation", {"id": plain["id"]}, {"teamId": t1["id"]})
        refused = await accept(dan, plain["id"])
        assert error(refused) == (403, "TEAM_MEMBER_LIMIT_REACHED")
        # ...and the whole accept is undone: no member, the invitation pending again.
        assert await db.find_one("member", {"userId": dan.user["id"]}) is None  # type: ignore[attr-defined]
        assert (await db.find_one("invitation", {"id": plain["id"]}) or {})["status"] == "pending"
        for client in (ada, bob, carl, dan, eve):
            await client.aclose()


async def test_team_ids_are_ignored_without_teams() -> None:
    async with org_identity() as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        invitation = await invited(ada, "bob@example.com", teamId="a,b")
        assert "teamId" not in invitation
        await ada.aclose()


# -- hooks and the membership cache ----------------------------------------------------------------


async def test_invitation_hooks() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(name: str) -> Any:
        def hook(data: dict[str, Any]) -> Any:
            calls.append((name, data))
            if name == "before_create_invitation":
                return {"data": {"role": "admin"}}
            if name == "before_accept_invitation" and data["user"]["email"] == "no@example.com":
                raise APIError(
                    403, OrganizationCode.YOU_ARE_NOT_ALLOWED_TO_INVITE_USERS_TO_THIS_ORGANIZATION
                )
            return None

        return hook

    names = [
        f"{when}_{what}_invitation"
        for what in ("create", "accept", "reject", "cancel")
        for when in ("before", "after")
    ]
    options = {"organization_hooks": {name: record(name) for name in names}}
    async with org_identity(plugin_options=options) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        no = await org.user("no@example.com", "No")
        await create_org(ada, "acme")
        invitation = await invited(ada, "bob@example.com", "member")
        assert invitation["role"] == "admin"  # changed by the before-hook
        assert (await accept(bob, invitation["id"])).status_code == 200
        refused = await invited(ada, "no@example.com")
        assert error(await accept(no, refused["id"])) == (
            403,
            "YOU_ARE_NOT_ALLOWED_TO_INVITE_USERS_TO_THIS_ORGANIZATION",
        )
        assert (await reject(no, refused["id"])).status_code == 200
        third = await invited(ada, "c@example.com")
        assert (await cancel(ada, third["id"])).status_code == 200
        order = [name for name, _ in calls]
        assert order == [
            "before_create_invitation",
            "after_create_invitation",
            "before_accept_invitation",
            "after_accept_invitation",
            "before_create_invitation",
            "after_create_invitation",
            "before_accept_invitation",
            "before_reject_invitation",
            "after_reject_invitation",
            "before_create_invitation",
            "after_create_invitation",
            "before_cancel_invitation",
            "after_cancel_invitation",
        ]
        accepted = dict(calls)["after_accept_invitation"]
        assert accepted["member"]["userId"] == bob.user["id"]  # type: ignore[attr-defined]
        assert accepted["invitation"]["status"] == "accepted"
        assert dict(calls)["after_cancel_invitation"]["cancelled_by"]["id"] == ada.user["id"]  # type: ignore[attr-defined]
        for client in (ada, bob, no):
            await client.aclose()


async def test_accepting_drops_the_cached_membership() -> None:
    plugin = organization()
    async with org_identity(plugins=[plugin]) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        acme = await create_org(ada, "acme")
        invitation = await invited(ada, "bob@example.com")
        cache = plugin.runtime.memberships
        user_id = bob.user["id"]  # type: ignore[attr-defined]
        cache.put_member(acme["id"], user_id, None, cache.version())  # "not a member", cached
        assert cache.member(acme["id"], user_id) is None
        assert (await accept(bob, invitation["id"])).status_code == 200
        assert cache.member(acme["id"], user_id) is cache.MISSING
        await ada.aclose()
        await bob.aclose()


# -- concurrency -----------------------------------------------------------------------------------


async def test_concurrent_accepts_make_one_member(database_url: str) -> None:
    async with org_identity(database_url) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        acme = await create_org(ada, "acme")
        invitation = await invited(ada, "bob@example.com")
        # The same user on several sessions (and the same session twice), all at once.
        others = []
        for _ in range(3):
            client = org.client()
            signed_in = await client.post(
                "/sign-in/email", json={"email": "bob@example.com", "password": "password123"}
            )
            assert signed_in.status_code == 200
            others.append(client)
        clients = [bob, bob, *others]
        answers = await asyncio.gather(*(accept(c, invitation["id"]) for c in clients))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 400, 400, 400, 400], [a.text for a in answers]
        assert {error(a) for a in answers if a.status_code != 200} == {
            (400, "INVITATION_NOT_FOUND")
        }
        members = await org.identity.db.find_many("member", {"organizationId": acme["id"]})
        assert sorted(m["userId"] for m in members) == sorted(
            [ada.user["id"], bob.user["id"]]  # type: ignore[attr-defined]
        )
        for client in (ada, bob, *others):
            await client.aclose()


# -- invitation mails ------------------------------------------------------------------------------


async def test_invitation_mail_over_smtp(smtp_mailbox: SMTPMailbox) -> None:
    sender = invitation_sender(smtp_mailbox.mailer(), app_name="Acme Cloud")
    async with org_identity(plugin_options={"send_invitation_email": sender}) as org:
        ada = await org.user("ada@example.com", "Ada Lovelace")
        bob = await org.user("bob@example.com", "Bob")
        await create_org(ada, "acme")
        invitation = await invited(ada, "Bob@Example.com", ["admin", "member"])
        mail = await smtp_mailbox.wait_for("bob@example.com")
        assert mail.subject == "You are invited to join Acme on Acme Cloud"
        assert "Ada Lovelace (ada@example.com) invited you to join Acme" in mail.text
        assert "as admin, member" in mail.text
        # The link the client expects: the app's URL, /accept-invitation/<id>.
        url = smtp_mailbox.url_for("bob@example.com", containing="/accept-invitation/")
        assert url == f"http://localhost:3000/accept-invitation/{invitation['id']}"
        assert mail.html is not None and f'href="{url}"' in mail.html
        # The page behind it reads the id from the link and accepts.
        invitation_id = url.rsplit("/", 1)[1]
        assert (await accept(bob, invitation_id)).status_code == 200
        await ada.aclose()
        await bob.aclose()


async def test_invitation_mail_link_is_configurable_and_goes_to_the_console() -> None:
    stream = io.StringIO()
    sender = invitation_sender(
        ConsoleMailer(stream=stream), accept_url="https://app.example.com/join?invite={id}"
    )
    async with org_identity(plugin_options={"send_invitation_email": sender}) as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        invitation = await invited(ada, "bob@example.com")
        shown = stream.getvalue()
        assert "To: bob@example.com" in shown
        assert f"https://app.example.com/join?invite={invitation['id']}" in shown
        await ada.aclose()
    with pytest.raises(ValueError, match="must contain"):
        invitation_sender(ConsoleMailer(), accept_url="https://app.example.com/join")
    with pytest.raises(ValueError, match="template"):
        invitation_sender(ConsoleMailer(), accept_url="https://x/{id}/{nope}")


async def test_a_failing_mail_does_not_fail_the_invitation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(data: InvitationEmail, request: Any) -> None:
        raise RuntimeError("smtp down")

    async with org_identity(plugin_options={"send_invitation_email": broken}) as org:
        ada = await org.user("ada@example.com")
        await create_org(ada, "acme")
        with caplog.at_level(logging.ERROR):
            invitation = await invited(ada, "bob@example.com")
        assert any(invitation["id"] in r.getMessage() for r in caplog.records)
        await ada.aclose()


async def test_send_invitation_email_receives_better_auths_data() -> None:
    sent: list[tuple[InvitationEmail, Any]] = []

    async def send(data: InvitationEmail, request: Any) -> None:
        sent.append((data, request))

    async with org_identity(plugin_options={"send_invitation_email": send}) as org:
        ada = await org.user("ada@example.com")
        acme = await create_org(ada, "acme")
        invitation = await invited(ada, "Bob@Example.com", "admin")
        data, request = sent[0]
        assert (data.id, data.role, data.email) == (invitation["id"], "admin", "bob@example.com")
        assert data.organization["id"] == acme["id"]
        assert data.inviter["role"] == "owner"
        assert data.inviter["user"]["email"] == "ada@example.com"
        assert "password" not in data.inviter["user"]
        assert data.invitation["id"] == invitation["id"]
        assert data.base_url == "http://localhost:3000"
        assert request is not None  # the HTTP request
        await ada.aclose()


async def test_with_the_cookie_cache_the_accepted_organization_is_active_at_once() -> None:
    """better-auth updates only the session row here (its cookie cache shows the old active
    organization until it expires); Bastion re-sets the cookies, as set-active does."""
    session_options = {"cookie_cache": {"enabled": True}}
    async with org_identity(session=session_options) as org:
        ada = await org.user("ada@example.com")
        bob = await org.user("bob@example.com", "Bob")
        acme = await create_org(ada, "acme")
        invitation = await invited(ada, "bob@example.com")
        assert (await bob.get("/get-session")).json()["session"]["activeOrganizationId"] is None
        assert (await accept(bob, invitation["id"])).status_code == 200
        cached = (await bob.get("/get-session")).json()["session"]
        assert cached["activeOrganizationId"] == acme["id"]
        await ada.aclose()
        await bob.aclose()
