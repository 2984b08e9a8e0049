"""The recipient's side of invitations (better-auth 1.7.25's `crud-invites` routes):
accept-invitation, reject-invitation, get-invitation and list-user-invitations, and the
checks both sides share.

Accepting is decided by one conditional update (`pending` -> `accepted`) inside the
transaction that makes the member, joins the invited teams and activates the organization:
of concurrent accepts of one invitation exactly one makes a member; the others wait on the
row, then find it no longer pending. Anything failing after it rolls all of it back.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field as PydanticField

from ...._callbacks import call_user
from ...db import Row, Transaction, eq, in_
from ...endpoint import Ctx
from ...errors import APIError
from ...sessions import remembered, resolve_session, set_session_cookie
from ...validation import Body
from ._common import (
    Runtime,
    create_member,
    find_member,
    forget_membership,
    invitation_out,
    member_out,
    organization_or_refuse,
    run_hook,
)
from ._errors import OrganizationCode as OC
from ._team_members import (
    add_team_member_row,
    add_team_member_with_limit,
    members_per_team_limit,
)

__all__ = [
    "ACCEPTED",
    "CANCELED",
    "PENDING",
    "REJECTED",
    "Handler",
    "InvitationIdBody",
    "InvitationQuery",
    "UserInvitationsQuery",
    "check_recipient",
    "is_live",
    "option_value",
    "recipient_handlers",
]

PENDING, ACCEPTED, REJECTED, CANCELED = "pending", "accepted", "rejected", "canceled"


class InvitationIdBody(Body):
    invitation_id: str = PydanticField(alias="invitationId")


class InvitationQuery(Body):
    id: str


class UserInvitationsQuery(Body):
    email: str | None = None


Handler = Any  # an endpoint handler: (Ctx[...]) -> Awaitable[Any]


def is_live(ctx: Ctx[Any], invitation: Row | None) -> bool:
    """Pending and not expired: what accept and get-invitation act on."""
    return (
        invitation is not None
        and invitation["status"] == PENDING
        and not invitation["expiresAt"] < ctx.context.now()
    )


def check_recipient(rt: Runtime, invitation: Row, user: Row, code: OC) -> None:
    """The invited address must be the session's; with verification required (the
    option: ids are always random here), a verified one."""
    if invitation["email"].lower() != user["email"].lower():
        raise APIError(403, OC.YOU_ARE_NOT_THE_RECIPIENT_OF_THE_INVITATION)
    if rt.options.require_email_verification_on_invitation and not user.get("emailVerified"):
        raise APIError(403, code)


async def option_value(value: Any, *args: Any) -> Any:
    """An option that may be a number or a function (sync or async) returning one."""
    return await call_user(value, *args) if callable(value) else value


def recipient_handlers(rt: Runtime) -> tuple[Handler, Handler, Handler, Handler]:
    """accept, reject, get-invitation and list-user-invitations, for `rt`."""
    options = rt.options

    # -- accept-invitation ----------------------------------------------------------------------

    async def join_team(
        ctx: Ctx[Any], tx: Transaction, team_id: str, organization_id: str, session: Row
    ) -> None:
        team = await tx.find_one("team", eq("id", team_id) & eq("organizationId", organization_id))
        if team is None:
            raise APIError(400, OC.TEAM_NOT_FOUND)
        user_id = session["userId"]
        # The team's seat counter, taken atomically (a count of rows would let two
        # concurrent joins both pass the limit).
        maximum = await members_per_team_limit(
            rt,
            team_id=team_id,
            organization_id=organization_id,
            session={"session": session, "user": ctx.session[1] if ctx.session else None},
        )
        if maximum is None:
            await add_team_member_row(ctx, team_id, user_id, db=tx)
        elif await add_team_member_with_limit(ctx, team_id, user_id, maximum, db=tx) is None:
            raise APIError(403, OC.TEAM_MEMBER_LIMIT_REACHED)

    async def accept(ctx: Ctx[InvitationIdBody]) -> Any:
        session, user = ctx.session  # type: ignore[misc]
        invitation_id = ctx.body.invitation_id
        db = ctx.context.store.db
        invitation = await db.find_one("invitation", eq("id", invitation_id))
        if invitation is None or not is_live(ctx, invitation):
            raise APIError(400, OC.INVITATION_NOT_FOUND)
        check_recipient(
            rt,
            invitation,
            user,
            OC.EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION,
        )
        organization_id = invitation["organizationId"]
        members = await db.count("member", eq("organizationId", organization_id))
        organization = await organization_or_refuse(
            ctx, organization_id=invitation["organizationId"]
        )
        limit = await option_value(options.membership_limit, user, organization) or 100
        if members >= limit:
            raise APIError(403, OC.ORGANIZATION_MEMBERSHIP_LIMIT_REACHED)
        await run_hook(
            rt,
            "before_accept_invitation",
            {"invitation": invitation, "user": user, "organization": organization},
        )
        team_ids = [t for t in (invitation.get("teamId") or "").split(",") if t]
        if not options.teams_enabled:
            team_ids = []
        # One transaction: the conditional update decides which of concurrent accepts wins
        # (the others wait on the row, then match nothing); anything failing after it rolls
        # the invitation back to pending with the rest.
        async with ctx.context.store.atomic() as store:
            tx = store.db
            assert isinstance(tx, Transaction)
            won = await tx.update_many(
                "invitation", eq("id", invitation_id) & eq("status", PENDING), {"status": ACCEPTED}
            )
            if won != 1:
                raise APIError(400, OC.INVITATION_NOT_FOUND)
            if await tx.find_one(
                "member", eq("organizationId", organization_id) & eq("userId", user["id"])
            ):
                # better-auth makes a second member row here; one user, one membership.
                raise APIError(400, OC.USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION)
            for team_id in team_ids:
                await join_team(ctx, tx, team_id, organization_id, session)
            member = await create_member(
                ctx,
                rt,
                {
                    "organizationId": organization_id,
                    "userId": user["id"],
                    "role": invitation.get("role") or "member",
                },
                user=user,
                organization=organization,
                db=tx,
            )
            active: dict[str, Any] = {"activeOrganizationId": organization_id}
            if len(team_ids) == 1:
                active["activeTeamId"] = team_ids[0]
            updated = await store.update_session(session["token"], active)
            accepted = await tx.find_one("invitation", eq("id", invitation_id))
        forget_membership(rt, organization_id, user["id"])
        if updated is not None:
            # The cookie cache carries the active organization: re-set it, so the new
            # membership is the active one at once (better-auth re-sets it only for a team).
            set_session_cookie(ctx, updated, user, dont_remember=not remembered(ctx))
            ctx.session = (updated, user)
            ctx.new_session = None  # not a new sign-in
        accepted = accepted or {**invitation, "status": ACCEPTED}
        await run_hook(
            rt,
            "after_accept_invitation",
            {"invitation": accepted, "member": member, "user": user, "organization": organization},
        )
        return {"invitation": invitation_out(ctx, accepted), "member": member_out(ctx, member)}

    # -- reject-invitation ------------------------------------------------------------------------

    async def reject(ctx: Ctx[InvitationIdBody]) -> Any:
        _, user = ctx.session  # type: ignore[misc]
        db = ctx.context.store.db
        invitation = await db.find_one("invitation", eq("id", ctx.body.invitation_id))
        # better-auth: no expiry check here, and its own message (with "!")
        if invitation is None or invitation["status"] != PENDING:
            raise APIError(400, OC.INVITATION_NOT_FOUND, "Invitation not found!")
        check_recipient(
            rt,
            invitation,
            user,
            OC.EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION,
        )
        organization = await organization_or_refuse(
            ctx, organization_id=invitation["organizationId"]
        )
        await run_hook(
            rt,
            "before_reject_invitation",
            {"invitation": invitation, "user": user, "organization": organization},
        )
        rejected = await db.update("invitation", eq("id", invitation["id"]), {"status": REJECTED})
        await run_hook(
            rt,
            "after_reject_invitation",
            {"invitation": rejected or invitation, "user": user, "organization": organization},
        )
        return {
            "invitation": None if rejected is None else invitation_out(ctx, rejected),
            "member": None,
        }

    # -- the recipient's reads ------------------------------------------------------------------

    async def get_invitation(ctx: Ctx[Any]) -> Any:
        found = await resolve_session(ctx)
        if found is None:
            raise APIError(401, None, "Not authenticated")
        _, user = found
        db = ctx.context.store.db
        invitation = await db.find_one("invitation", eq("id", ctx.query["id"]))
        if invitation is None or not is_live(ctx, invitation):
            raise APIError(400, OC.INVITATION_NOT_FOUND)
        check_recipient(rt, invitation, user, OC.EMAIL_VERIFICATION_REQUIRED_FOR_INVITATION)
        organization = await organization_or_refuse(
            ctx, organization_id=invitation["organizationId"]
        )
        inviter = await find_member(ctx, invitation["organizationId"], invitation["inviterId"])
        inviter_user = (
            None if inviter is None else await ctx.context.store.find_user_by_id(inviter["userId"])
        )
        if inviter_user is None:
            raise APIError(400, OC.INVITER_IS_NO_LONGER_A_MEMBER_OF_THE_ORGANIZATION)
        return {
            **invitation_out(ctx, invitation),
            "organizationName": organization["name"],
            "organizationSlug": organization["slug"],
            "inviterEmail": inviter_user["email"],
        }

    async def list_user_invitations(ctx: Ctx[Any]) -> Any:
        found = await resolve_session(ctx)
        asked = ctx.query.get("email")
        if ctx.request is not None and asked:
            raise APIError(400, None, "User email cannot be passed for client side API calls.")
        if found is not None and not found[1].get("emailVerified"):
            raise APIError(403, OC.EMAIL_VERIFICATION_REQUIRED_FOR_INVITATION)
        email = found[1]["email"] if found is not None else asked
        if not email:
            raise APIError(400, None, "Missing session headers, or email query parameter.")
        db = ctx.context.store.db
        rows = [
            r
            for r in await db.find_many("invitation", eq("email", email.lower()))
            if r["status"] == PENDING
        ]
        ids = list(dict.fromkeys(r["organizationId"] for r in rows))
        names = (
            {o["id"]: o["name"] for o in await db.find_many("organization", in_("id", ids))}
            if ids
            else {}
        )
        out = []
        for row in rows:
            item = invitation_out(ctx, row)
            if row["organizationId"] in names:
                item["organizationName"] = names[row["organizationId"]]
            out.append(item)
        return out

    return accept, reject, get_invitation, list_user_invitations
