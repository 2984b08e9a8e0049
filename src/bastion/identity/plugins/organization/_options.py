"""The organization plugin's options: better-auth's `organization({...})` in snake_case.

Every limit and permission switch that better-auth lets be a function may be one here too
(sync or async); see `organization()` for the list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..access import AccessControl, Role

__all__ = [
    "DefaultTeamOptions",
    "DynamicAccessControlOptions",
    "OrganizationOptions",
    "TeamOptions",
]

Hook = Callable[..., Any]
MaybeAsync = Any  # a value, or a callable returning it (sync or async)


@dataclass(frozen=True, kw_only=True)
class DefaultTeamOptions:
    """With teams on, each new organization gets a team of its name holding its creator."""

    enabled: bool = True
    # (organization, ctx) -> team row: make the default team yourself.
    custom_create_default_team: Callable[..., Awaitable[Mapping[str, Any]]] | None = None


@dataclass(frozen=True, kw_only=True)
class TeamOptions:
    enabled: bool = False
    default_team: DefaultTeamOptions = field(default_factory=DefaultTeamOptions)
    # int, or ({"organization_id", "session"}, ctx) -> int
    maximum_teams: MaybeAsync = None
    # int, or ({"team_id", "session", "organization_id"}) -> int
    maximum_members_per_team: MaybeAsync = None
    allow_removing_all_teams: bool = False


@dataclass(frozen=True, kw_only=True)
class DynamicAccessControlOptions:
    enabled: bool = False
    # int, or (organization_id) -> int; None: unlimited
    maximum_roles_per_organization: MaybeAsync = None


@dataclass(frozen=True, kw_only=True)
class OrganizationOptions:
    allow_user_to_create_organization: MaybeAsync = True  # bool, or (user) -> bool
    organization_limit: MaybeAsync = None  # int, or (user) -> bool ("has reached the limit")
    creator_role: str = "owner"
    membership_limit: MaybeAsync = 100  # int, or (user, organization) -> int
    ac: AccessControl | None = None
    roles: Mapping[str, Role] | None = None  # replaces the default roles when given
    dynamic_access_control: DynamicAccessControlOptions = field(
        default_factory=DynamicAccessControlOptions
    )
    teams: TeamOptions = field(default_factory=TeamOptions)
    invitation_expires_in: int = 48 * 3600  # seconds
    invitation_limit: MaybeAsync = 100  # int, or ({"user", "organization", "member"}) -> int
    cancel_pending_invitations_on_re_invite: bool = False
    require_email_verification_on_invitation: bool = False
    # (data, request) -> None: data holds id, role, email, organization, invitation, inviter
    send_invitation_email: Hook | None = None
    disable_organization_deletion: bool = False
    # better-auth's organizationHooks in snake_case: before_create_organization,
    # after_add_member, ... A before-hook may return {"data": {...}} to change what is
    # written.
    organization_hooks: Mapping[str, Hook] = field(default_factory=dict)

    @property
    def teams_enabled(self) -> bool:
        return self.teams.enabled

    @property
    def dynamic_roles_enabled(self) -> bool:
        return self.dynamic_access_control.enabled


def _section(kind: type[Any], value: Any, name: str) -> Any:
    if value is None:
        return kind()
    if isinstance(value, kind):
        return value
    if isinstance(value, bool):  # teams=True, as a shorthand for {"enabled": True}
        return kind(enabled=value)
    if not isinstance(value, Mapping):
        raise TypeError(f"organization(): {name} takes a mapping or {kind.__name__}")
    known = {f.name for f in fields(kind)}
    unknown = set(value) - known
    if unknown:
        raise TypeError(f"organization(): unknown {name} options {sorted(unknown)}")
    given = dict(value)
    if kind is TeamOptions and "default_team" in given:
        given["default_team"] = _section(DefaultTeamOptions, given["default_team"], "default_team")
    return kind(**given)


def build_options(values: Mapping[str, Any]) -> OrganizationOptions:
    known = {f.name for f in fields(OrganizationOptions)}
    unknown = set(values) - known
    if unknown:
        raise TypeError(f"organization(): unknown options {sorted(unknown)}")
    given = dict(values)
    given["teams"] = _section(TeamOptions, given.get("teams"), "teams")
    given["dynamic_access_control"] = _section(
        DynamicAccessControlOptions, given.get("dynamic_access_control"), "dynamic_access_control"
    )
    hooks = given.get("organization_hooks") or {}
    given["organization_hooks"] = dict(hooks)
    # None means "the default", as undefined does in better-auth's options.
    options = OrganizationOptions(**{k: v for k, v in given.items() if v is not None})
    if options.dynamic_roles_enabled and options.ac is None:
        raise ValueError(
            "organization(): dynamic_access_control needs an `ac` "
            "(create_access_control(...)) to check stored roles against"
        )
    return options
