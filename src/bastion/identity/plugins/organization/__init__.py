"""better-auth's organization plugin (`organization()`, 1.7.25), wire- and database-compatible:
organizations, members, invitations, teams, and roles as access-control data.

    identity = Identity(
        email_and_password={"enabled": True},
        plugins=[organization(teams={"enabled": True})],
    )

Endpoints under /organization/ (see docs/organizations.md); `session.activeOrganizationId`
(and `activeTeamId` with teams) as better-auth keeps them. Roles are `Role`s of an
`AccessControl` (`create_access_control`); the defaults are better-auth's `owner`, `admin`
and `member` over `DEFAULT_STATEMENTS`. With `dynamic_access_control={"enabled": True}`
(and an `ac`), organizations store their own roles.

The agent server reads members' roles through `OrganizationPlugin.runtime` (its
`memberships` cache is emptied by every change these endpoints make).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import Plugin
from ..access import AccessControl, AuthorizeResult, Role, create_access_control
from . import _dynamic_roles, _invitations, _members, _orgs, _teams
from ._common import (
    Memberships,
    Runtime,
    organization_roles,
    parse_role_list,
    parse_roles,
    role_allows,
)
from ._defaults import (
    DEFAULT_ROLES,
    DEFAULT_STATEMENTS,
    admin_ac,
    default_ac,
    member_ac,
    owner_ac,
)
from ._errors import OrganizationCode
from ._invitation_email import InvitationEmail, invitation_sender
from ._options import (
    DefaultTeamOptions,
    DynamicAccessControlOptions,
    OrganizationOptions,
    TeamOptions,
    build_options,
)
from ._schema import organization_schema

__all__ = [
    "DEFAULT_ROLES",
    "DEFAULT_STATEMENTS",
    "AccessControl",
    "AuthorizeResult",
    "DefaultTeamOptions",
    "DynamicAccessControlOptions",
    "InvitationEmail",
    "Memberships",
    "OrganizationCode",
    "OrganizationOptions",
    "OrganizationPlugin",
    "Role",
    "Runtime",
    "TeamOptions",
    "admin_ac",
    "create_access_control",
    "default_ac",
    "invitation_sender",
    "member_ac",
    "organization",
    "organization_roles",
    "owner_ac",
    "parse_role_list",
    "parse_roles",
    "role_allows",
]


@dataclass(frozen=True)
class OrganizationPlugin(Plugin):
    """The plugin, with the runtime the agent server reads roles through."""

    runtime: Runtime = field(default_factory=lambda: Runtime(OrganizationOptions()))


def organization(**options: Any) -> OrganizationPlugin:
    """better-auth's `organization({...})` in snake_case: `allow_user_to_create_organization`,
    `organization_limit`, `creator_role`, `membership_limit`, `invitation_expires_in`
    (seconds), `invitation_limit`, `send_invitation_email`,
    `cancel_pending_invitations_on_re_invite`, `require_email_verification_on_invitation`,
    `teams={"enabled", "maximum_teams", "maximum_members_per_team",
    "allow_removing_all_teams", "default_team"}`, `dynamic_access_control={"enabled",
    "maximum_roles_per_organization"}`, `ac`, `roles`, `organization_hooks`,
    `disable_organization_deletion`."""
    built = build_options(options)
    rt = Runtime(built)
    endpoints = [
        *_orgs.endpoints(rt),
        *_members.endpoints(rt),
        *_invitations.endpoints(rt),
    ]
    if built.teams_enabled:
        endpoints.extend(_teams.endpoints(rt))
    if built.dynamic_roles_enabled:
        endpoints.extend(_dynamic_roles.endpoints(rt))
    return OrganizationPlugin(
        id="organization",
        endpoints=endpoints,
        schema=organization_schema(built),
        error_codes=OrganizationCode,
        runtime=rt,
    )
