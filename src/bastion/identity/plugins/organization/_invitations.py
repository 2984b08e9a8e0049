"""Invitations (better-auth 1.7.25's `crud-invites` routes): the organization's side here
(invite-member, cancel-invitation, list-invitations) and the endpoint list; the recipient's
side (accept, reject, get-invitation, list-user-invitations) in `_invitation_recipient`.

An invitation's id works as its link: whoever holds it and signs in with the invited address
may accept it. So only members who may invite see the ids (list-invitations), and those
granting the creator role only members holding it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from ...db import Row, eq, in_
from ...endpoint import Ctx, Endpoint
from ...errors import APIError, Code
from ...sessions import session_required
from ...validation import MAX_EMAIL_LENGTH, Body, is_email
from ._common import (
    Runtime,
    find_member,
    has_permission,
    invitation_out,
    member_out,
    organization_or_refuse,
    parse_role_list,
    parse_roles,
    run_hook,
)
from ._defaults import DEFAULT_ROLES
from ._errors import OrganizationCode as OC
from ._invitation_email import InvitationEmail, call_invitation_sender
from ._invitation_recipient import (
    CANCELED,
    PENDING,
    InvitationIdBody,
    InvitationQuery,
    UserInvitationsQuery,
    option_value,
    recipient_handlers,
)

__all__ = ["endpoints"]

logger = logging.getLogger("bastion.identity.organization")

_DEFAULT_EXPIRY = 48 * 3600


def _union(kinds: tuple[type, ...]) -> Any:
    """zod's union of a string and a string array: anything else (missing too) is
    `[body.<field>] Invalid input`, the bare message zod gives a failed union."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and str in kinds:
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        if value is None and type(None) in kinds:
            return value
        raise PydanticCustomError("invalid_union", "Invalid input")

    return AfterValidator(check)


RoleValue = Annotated[Any, _union((str, list))]
TeamValue = Annotated[Any, _union((str, list, type(None)))]


class InviteBody(Body):
    email: str
    # validate_default: a missing role is zod's union failure, not "expected string"
    role: RoleValue = PydanticField(None, validate_default=True)
    organization_id: str | None = PydanticField(None, alias="organizationId")
    resend: bool | None = None
    team_id: TeamValue = PydanticField(None, alias="teamId")


class ListInvitationsQuery(Body):
    organization_id: str | None = PydanticField(None, alias="organizationId")


def endpoints(rt: Runtime) -> list[Endpoint]:
    options = rt.options

    # -- shared checks ------------------------------------------------------------------------

    def expiry(ctx: Ctx[Any]) -> Any:
        return ctx.context.now() + timedelta(
            seconds=options.invitation_expires_in or _DEFAULT_EXPIRY
        )

    async def send_mail(ctx: Ctx[Any], invitation: Row, organization: Row, inviter: Row) -> None:
        """better-auth awaits the callback and logs what it raises: a mail that could not go
        never fails the invitation."""
        sender = options.send_invitation_email
        if sender is None:
            return
        data = InvitationEmail(
            id=invitation["id"],
            role=invitation.get("role") or "",
            email=invitation["email"].lower(),
            organization=dict(organization),
            inviter=inviter,
            invitation=invitation_out(ctx, invitation),
            base_url=_app_url(ctx),
        )
        try:
            await call_invitation_sender(sender, data, ctx.request)
        except Exception as exc:  # whatever the user's callback raises
            logger.error(
                "invitation email for invitation %s not sent: %s",
                invitation["id"],
                type(exc).__name__,
            )

    async def known_roles(ctx: Ctx[Any], organization_id: str, roles: list[str]) -> None:
        # better-auth: the default role names are always valid, custom ones beside them.
        valid = {*DEFAULT_ROLES, *rt.static_roles}
        unknown = [r for r in roles if r not in valid]
        if unknown and options.dynamic_roles_enabled:
            stored = await ctx.context.store.db.find_many(
                "organizationRole",
                eq("organizationId", organization_id) & in_("role", unknown),
                select=("role",),
            )
            found = {row["role"] for row in stored}
            unknown = [r for r in unknown if r not in found]
        if unknown:
            # better-auth formats the code's name, not its message, and sends no code.
            raise APIError(400, None, f"ROLE_NOT_FOUND: {', '.join(unknown)}")

    async def team_checks(
        ctx: Ctx[InviteBody], organization_id: str, team_ids: list[str], session: Row
    ) -> None:
        if not options.teams_enabled or not team_ids:
            return
        if any("," in t for t in team_ids):
            raise APIError(400, OC.INVALID_TEAM_ID)  # the stored form is comma-separated
        db = ctx.context.store.db
        teams = []
        for team_id in team_ids:
            team = await db.find_one(
                "team", eq("id", team_id) & eq("organizationId", organization_id)
            )
            if team is None:
                raise APIError(400, OC.TEAM_NOT_FOUND)
            teams.append(team)
        limit = options.teams.maximum_members_per_team
        if limit is None:
            return
        for team in teams:
            maximum = await option_value(
                limit,
                {"team_id": team["id"], "session": session, "organization_id": organization_id},
            )
            if await db.count("teamMember", eq("teamId", team["id"])) >= maximum:
                raise APIError(403, OC.TEAM_MEMBER_LIMIT_REACHED)

    # -- invite-member --------------------------------------------------------------------------

    async def invite(ctx: Ctx[InviteBody]) -> Any:
        session, user = ctx.session  # type: ignore[misc]
        body = ctx.body
        db = ctx.context.store.db
        organization_id = body.organization_id or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, OC.ORGANIZATION_NOT_FOUND)
        email = body.email.lower()
        if len(email) > MAX_EMAIL_LENGTH or not is_email(email):
            raise APIError(400, Code.INVALID_EMAIL)
        member = await find_member(ctx, organization_id, user["id"])
        if member is None:  # an unknown organization answers the same
            raise APIError(400, OC.MEMBER_NOT_FOUND)
        if not await has_permission(
            ctx,
            rt,
            role=member["role"],
            permissions={"invitation": ["create"]},
            organization_id=organization_id,
        ):
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_INVITE_USERS_TO_THIS_ORGANIZATION)
        roles = parse_role_list(body.role)
        if not roles:
            raise APIError(400, OC.ROLE_NOT_FOUND)
        await known_roles(ctx, organization_id, roles)
        is_creator = rt.creator_role in parse_role_list(member["role"])
        if rt.creator_role in roles and not is_creator:
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_INVITE_USER_WITH_THIS_ROLE)
        invitee = await ctx.context.store.find_user_by_email(email)
        if invitee is not None and await find_member(ctx, organization_id, invitee["id"]):
            raise APIError(400, OC.USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION)
        now = ctx.context.now()
        pending = [
            i
            for i in await db.find_many(
                "invitation",
                eq("email", email) & eq("organizationId", organization_id) & eq("status", PENDING),
            )
            if i["expiresAt"] > now
        ]
        re_invite = options.cancel_pending_invitations_on_re_invite
        if pending and not body.resend and not re_invite:
            raise APIError(400, OC.USER_IS_ALREADY_INVITED_TO_THIS_ORGANIZATION)
        organization = await organization_or_refuse(ctx, organization_id=organization_id)
        inviter = {**member_out(ctx, member), "user": ctx.context.public_row("user", user)}
        if pending and body.resend:
            # better-auth renews the pending invitation as it is (its role and teams too,
            # whatever this request names) and mails it again.
            existing = pending[0]
            if rt.creator_role in parse_role_list(existing.get("role") or "") and not is_creator:
                raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_INVITE_USER_WITH_THIS_ROLE)
            renewed = await db.update(
                "invitation", eq("id", existing["id"]), {"expiresAt": expiry(ctx)}
            )
            renewed = renewed or {**existing, "expiresAt": expiry(ctx)}
            await send_mail(ctx, renewed, organization, inviter)
            return invitation_out(ctx, renewed)
        if pending and re_invite:
            await db.update("invitation", eq("id", pending[0]["id"]), {"status": CANCELED})
        limit = await option_value(
            options.invitation_limit,
            {"user": user, "organization": organization, "member": member},
        )
        limit = 100 if limit is None else limit
        open_now = await db.find_many(
            "invitation", eq("organizationId", organization_id) & eq("status", PENDING)
        )
        if sum(1 for i in open_now if i["expiresAt"] > now) >= limit:
            raise APIError(403, OC.INVITATION_LIMIT_REACHED)
        raw_teams = body.team_id
        team_ids = [raw_teams] if isinstance(raw_teams, str) else list(raw_teams or [])
        team_ids = [t for t in team_ids if t] if raw_teams else []
        await team_checks(ctx, organization_id, team_ids, session)
        data: dict[str, Any] = {
            "role": parse_roles(roles),
            "email": email,
            "organizationId": organization_id,
        }
        changed = await run_hook(
            rt,
            "before_create_invitation",
            {
                "invitation": {
                    **data,
                    "teamIds": team_ids,
                    "inviterId": user["id"],
                    "teamId": team_ids[0] if team_ids else None,
                },
                "inviter": user,
                "organization": organization,
            },
        )
        if changed:
            data.update({k: v for k, v in changed.items() if k in _INVITATION_INPUT})
        row: dict[str, Any] = {
            "status": PENDING,
            "expiresAt": expiry(ctx),
            "createdAt": ctx.context.now(),
            "inviterId": user["id"],
            **data,
        }
        if options.teams_enabled:
            row["teamId"] = ",".join(team_ids) if team_ids else None
        invitation = await db.create("invitation", row)
        await send_mail(ctx, invitation, organization, inviter)
        await run_hook(
            rt,
            "after_create_invitation",
            {"invitation": invitation, "inviter": user, "organization": organization},
        )
        return invitation_out(ctx, invitation)

    # -- cancel-invitation ------------------------------------------------------------------------

    async def cancel(ctx: Ctx[InvitationIdBody]) -> Any:
        _, user = ctx.session  # type: ignore[misc]
        db = ctx.context.store.db
        invitation = await db.find_one("invitation", eq("id", ctx.body.invitation_id))
        if invitation is None:
            raise APIError(400, OC.INVITATION_NOT_FOUND)
        organization_id = invitation["organizationId"]
        member = await find_member(ctx, organization_id, user["id"])
        if member is None:
            raise APIError(400, OC.MEMBER_NOT_FOUND)
        if not await has_permission(
            ctx,
            rt,
            role=member["role"],
            permissions={"invitation": ["cancel"]},
            organization_id=organization_id,
        ):
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_CANCEL_THIS_INVITATION)
        organization = await organization_or_refuse(
            ctx, organization_id=invitation["organizationId"]
        )
        await run_hook(
            rt,
            "before_cancel_invitation",
            {"invitation": invitation, "cancelled_by": user, "organization": organization},
        )
        # better-auth checks no status: any invitation of the organization becomes canceled.
        canceled = await db.update("invitation", eq("id", invitation["id"]), {"status": CANCELED})
        await run_hook(
            rt,
            "after_cancel_invitation",
            {
                "invitation": canceled or invitation,
                "cancelled_by": user,
                "organization": organization,
            },
        )
        return None if canceled is None else invitation_out(ctx, canceled)

    # -- reads ------------------------------------------------------------------------------------

    async def list_invitations(ctx: Ctx[Any]) -> Any:
        session, user = ctx.session  # type: ignore[misc]
        organization_id = ctx.query.get("organizationId") or session.get("activeOrganizationId")
        if not organization_id:
            raise APIError(400, None, "Organization ID is required")
        member = await find_member(ctx, organization_id, user["id"])
        if member is None:
            raise APIError(403, None, "You are not a member of this organization")
        # Invitation ids are invitation links: only those who may invite see them.
        if not await has_permission(
            ctx,
            rt,
            role=member["role"],
            permissions={"invitation": ["create"]},
            organization_id=organization_id,
        ):
            raise APIError(403, OC.YOU_ARE_NOT_ALLOWED_TO_LIST_INVITATIONS)
        rows = await ctx.context.store.db.find_many(
            "invitation", eq("organizationId", organization_id)
        )
        if rt.creator_role not in parse_role_list(member["role"]):
            rows = [r for r in rows if rt.creator_role not in parse_role_list(r.get("role") or "")]
        return [invitation_out(ctx, r) for r in rows]

    accept, reject, get_invitation, list_user_invitations = recipient_handlers(rt)
    guard = [session_required]
    tags = ("organization",)
    return [
        Endpoint(
            "/organization/invite-member",
            ("POST",),
            invite,
            "create_invitation",
            body=InviteBody,
            use=guard,
            tags=tags,
            operation_id="createOrganizationInvitation",
        ),
        Endpoint(
            "/organization/accept-invitation",
            ("POST",),
            accept,
            "accept_invitation",
            body=InvitationIdBody,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/reject-invitation",
            ("POST",),
            reject,
            "reject_invitation",
            body=InvitationIdBody,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/cancel-invitation",
            ("POST",),
            cancel,
            "cancel_invitation",
            body=InvitationIdBody,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/get-invitation",
            ("GET",),
            get_invitation,
            "get_invitation",
            query=InvitationQuery,
            tags=tags,
        ),
        Endpoint(
            "/organization/list-invitations",
            ("GET",),
            list_invitations,
            "list_invitations",
            query=ListInvitationsQuery,
            use=guard,
            tags=tags,
        ),
        Endpoint(
            "/organization/list-user-invitations",
            ("GET",),
            list_user_invitations,
            "list_user_invitations",
            query=UserInvitationsQuery,
            tags=tags,
        ),
    ]


# What a before_create_invitation hook may change (better-auth merges its `data` into the row).
_INVITATION_INPUT = frozenset({"role", "email", "organizationId", "expiresAt", "status"})


def _app_url(ctx: Ctx[Any]) -> str:
    """The Identity's public URL without its base path: where the app's pages are."""
    base = ctx.base_url
    path = ctx.options.base_path
    return base[: -len(path)] if path and base.endswith(path) else base
