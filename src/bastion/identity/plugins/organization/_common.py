"""What the organization endpoints share: the plugin's runtime, permission checks, lookups,
the active organization of a session, and the JSON shapes better-auth answers with."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from ...._callbacks import call_user
from ...db import Database, Row, Transaction, eq
from ...endpoint import Ctx
from ...errors import APIError
from ...sessions import remembered, resolve_session, set_session_cookie
from ...validation import MAX_IMAGE_LENGTH
from ..access import Role
from ._defaults import DEFAULT_ROLES
from ._errors import OrganizationCode
from ._options import OrganizationOptions

__all__ = [
    "UNSET",
    "CoercedString",
    "Memberships",
    "Runtime",
    "absent",
    "create_member",
    "find_member",
    "find_organization",
    "forget_membership",
    "has_permission",
    "invitation_out",
    "member_out",
    "member_with_user",
    "organization_or_refuse",
    "organization_out",
    "organization_roles",
    "parse_metadata",
    "parse_role_list",
    "parse_roles",
    "require_session",
    "run_hook",
    "set_active",
    "user_summary",
]

logger = logging.getLogger("bastion.identity.organization")

UNSET: Any = object()
_MISSING: Any = object()


# -- roles ----------------------------------------------------------------------------------


def parse_role_list(roles: str | Iterable[str]) -> list[str]:
    """`"admin, owner"` or `["admin", " owner"]` as `["admin", "owner"]`: every role
    comparison goes through here, so a padded name matches one way only."""
    items = [roles] if isinstance(roles, str) else list(roles)
    return [name.strip() for item in items for name in str(item).split(",") if name.strip()]


def parse_roles(roles: str | Iterable[str]) -> str:
    """A role value as it is stored: comma-separated, trimmed, no empty entries."""
    return ",".join(parse_role_list(roles))


# -- the membership cache (read by the agent server) -----------------------------------------


class Memberships:
    """Member roles and dynamic roles, cached for the agent server's per-request checks.

    The organization endpoints of this process drop what they change (`forget`) at once;
    changes made by another process show within `ttl` seconds. A read that began before a
    `forget` never stores its (possibly stale) answer after it: `version()` is taken before
    the read and `put_*` ignores a value read under an older version.
    """

    def __init__(self, ttl: float = 30.0, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._members: dict[tuple[str, str], tuple[float, Any]] = {}
        self._roles: dict[str, tuple[float, Any]] = {}
        self._version = 0

    def version(self) -> int:
        return self._version

    def member(self, organization_id: str, user_id: str) -> Any:
        """The cached member row (or None: not a member), or `MISSING`."""
        return self._get(self._members, (organization_id, user_id))

    def roles(self, organization_id: str) -> Any:
        return self._get(self._roles, organization_id)

    def put_member(self, organization_id: str, user_id: str, member: Any, version: int) -> None:
        if version == self._version:
            self._put(self._members, (organization_id, user_id), member)

    def put_roles(self, organization_id: str, roles: Any, version: int) -> None:
        if version == self._version:
            self._put(self._roles, organization_id, roles)

    def forget(self, organization_id: str | None = None, user_id: str | None = None) -> None:
        """Drop what is known of an organization (of one member when `user_id` is given);
        with no arguments, everything."""
        self._version += 1
        if organization_id is None:
            self._members.clear()
            self._roles.clear()
            return
        if user_id is not None:
            self._members.pop((organization_id, user_id), None)
            return
        self._roles.pop(organization_id, None)
        for key in [key for key in self._members if key[0] == organization_id]:
            del self._members[key]

    def _get(self, table: dict[Any, tuple[float, Any]], key: Any) -> Any:
        found = table.get(key)
        if found is None or found[0] < time.monotonic():
            return _MISSING
        return found[1]

    def _put(self, table: dict[Any, tuple[float, Any]], key: Any, value: Any) -> None:
        if len(table) >= self._max:
            table.clear()  # bounded: a burst of distinct users refills it
        table[key] = (time.monotonic() + self.ttl, value)

    MISSING = _MISSING


@dataclass(eq=False)
class Runtime:
    """The plugin as the endpoints see it: options, static roles and the cache."""

    options: OrganizationOptions
    memberships: Memberships = field(default_factory=Memberships)

    @property
    def static_roles(self) -> Mapping[str, Role]:
        # better-auth: custom roles replace the defaults (`options.roles || defaultRoles`).
        return self.options.roles or DEFAULT_ROLES

    @property
    def creator_role(self) -> str:
        return self.options.creator_role or "owner"


def forget_membership(rt: Runtime, organization_id: str | None, user_id: str | None = None) -> None:
    """Call after any change to a member, a role or an organization."""
    rt.memberships.forget(organization_id, user_id)


# -- permissions ----------------------------------------------------------------------------


async def organization_roles(
    db: Database | Transaction, rt: Runtime, organization_id: str | None
) -> dict[str, Role]:
    """The static roles, with an organization's stored (dynamic) roles merged in: a stored
    role adds its actions to a static role of the same name, as better-auth merges them."""
    roles = dict(rt.static_roles)
    ac = rt.options.ac
    if not organization_id or not rt.options.dynamic_roles_enabled or ac is None:
        return roles
    for row in await db.find_many("organizationRole", eq("organizationId", organization_id)):
        granted = _stored_permission(row)
        if granted is None:
            continue
        merged = {
            resource: list(actions)
            for resource, actions in (
                roles[row["role"]].statements.items() if row["role"] in roles else ()
            )
        }
        for resource, actions in granted.items():
            merged[resource] = list(dict.fromkeys([*merged.get(resource, []), *actions]))
        roles[row["role"]] = ac.new_role(merged)
    return roles


def _stored_permission(row: Row) -> dict[str, list[str]] | None:
    """A stored role's `permission` JSON, or None when it is not `{resource: [action]}`
    (logged: better-auth answers 500 there; here the role grants nothing)."""
    try:
        value = json.loads(row["permission"])
    except (TypeError, ValueError):
        value = None
    if isinstance(value, dict) and all(
        isinstance(actions, list) and all(isinstance(a, str) for a in actions)
        for actions in value.values()
    ):
        return value
    logger.error("organization role %r has invalid permissions; it grants nothing", row["role"])
    return None


def role_allows(
    roles: Mapping[str, Role],
    role: str | Iterable[str],
    permissions: Mapping[str, Any] | None,
    creator_role: str,
    *,
    allow_creator_all: bool = False,
) -> bool:
    """better-auth's hasPermissionFn: any one of the member's roles grants the request."""
    if not permissions:
        return False
    names = parse_role_list(role)
    if allow_creator_all and creator_role in names:
        return True
    return any(name in roles and roles[name].authorize(permissions).success for name in names)


async def has_permission(
    ctx: Ctx[Any],
    rt: Runtime,
    *,
    role: str | Iterable[str],
    permissions: Mapping[str, Any] | None,
    organization_id: str | None,
    allow_creator_all: bool = False,
) -> bool:
    roles = await organization_roles(ctx.context.store.db, rt, organization_id)
    return role_allows(
        roles, role, permissions, rt.creator_role, allow_creator_all=allow_creator_all
    )


# -- lookups --------------------------------------------------------------------------------


async def find_organization(
    ctx: Ctx[Any], *, organization_id: str | None = None, slug: str | None = None
) -> Row | None:
    db = ctx.context.store.db
    if slug is not None:
        return await db.find_one("organization", eq("slug", slug))
    if organization_id is None:
        return None
    return await db.find_one("organization", eq("id", organization_id))


async def organization_or_refuse(
    ctx: Ctx[Any], *, organization_id: str | None = None, slug: str | None = None
) -> Row:
    """The organization, or 400 ORGANIZATION_NOT_FOUND (better-auth's answer wherever an
    organization named by id or slug is missing)."""
    organization = await find_organization(ctx, organization_id=organization_id, slug=slug)
    if organization is None:
        raise APIError(400, OrganizationCode.ORGANIZATION_NOT_FOUND)
    return organization


async def find_member(ctx: Ctx[Any], organization_id: str, user_id: str) -> Row | None:
    return await ctx.context.store.db.find_one(
        "member", eq("organizationId", organization_id) & eq("userId", user_id)
    )


def user_summary(user: Mapping[str, Any]) -> dict[str, Any]:
    """The user as members carry it: `{id, name, email, image}`."""
    return {
        "id": user["id"],
        "name": user.get("name"),
        "email": user.get("email"),
        "image": user.get("image"),
    }


async def member_with_user(ctx: Ctx[Any], member: Row) -> dict[str, Any] | None:
    """A member row with its `user`, or None when the user is gone."""
    user = await ctx.context.store.find_user_by_id(member["userId"])
    if user is None:
        return None
    return {**member_out(ctx, member), "user": user_summary(user)}


async def create_member(
    ctx: Ctx[Any],
    rt: Runtime,
    data: Mapping[str, Any],
    *,
    user: Mapping[str, Any],
    organization: Mapping[str, Any],
    db: Database | Any = None,
) -> Row:
    """Insert a member row through the before/after add-member hooks. Limits are the
    caller's to check (each endpoint refuses with its own code). `db`: a transaction to
    write in, else the Identity's database."""
    values = {**data, "role": parse_roles(data.get("role") or "member")}
    changed = await run_hook(
        rt,
        "before_add_member",
        {"member": dict(values), "user": user, "organization": organization},
    )
    if changed:
        values = {**values, **changed}
    member = await (db or ctx.context.store.db).create(
        "member", {**values, "createdAt": ctx.context.now()}
    )
    forget_membership(rt, member["organizationId"], member["userId"])
    await run_hook(
        rt, "after_add_member", {"member": member, "user": user, "organization": organization}
    )
    return member


# -- hooks ----------------------------------------------------------------------------------


async def run_hook(
    rt: Runtime, name: str, data: Mapping[str, Any], *extra: Any
) -> dict[str, Any] | None:
    """Run `organization_hooks[name](data, *extra)`; a before-hook's `{"data": {...}}`
    is returned for the caller to merge, as better-auth merges it."""
    hook = rt.options.organization_hooks.get(name)
    if hook is None:
        return None
    result = await call_user(hook, dict(data), *extra)
    if isinstance(result, Mapping) and isinstance(result.get("data"), Mapping):
        return dict(result["data"])
    return None


# -- sessions -------------------------------------------------------------------------------


async def require_session(ctx: Ctx[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The session set by the `session_required` guard."""
    assert ctx.session is not None  # the endpoint's guard ran
    return ctx.session


async def optional_session(ctx: Ctx[Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    return ctx.session or await resolve_session(ctx)


async def set_active(
    ctx: Ctx[Any],
    *,
    organization_id: str | Any | None = UNSET,
    team_id: str | Any | None = UNSET,
    cookie: bool = True,
) -> dict[str, Any] | None:
    """Change the session's active organization and/or team, and re-set its cookies (the
    cookie cache carries them) unless `cookie` is False, as better-auth does where it
    only updates the row."""
    session, user = await require_session(ctx)
    values: dict[str, Any] = {}
    if organization_id is not UNSET:
        values["activeOrganizationId"] = organization_id
    if team_id is not UNSET:
        values["activeTeamId"] = team_id
    if not values:
        return session
    updated = await ctx.context.store.update_session(session["token"], values)
    if updated is None:
        return None
    ctx.session = (updated, user)
    if cookie:
        set_session_cookie(ctx, updated, user, dont_remember=not remembered(ctx))
        ctx.new_session = None  # not a new sign-in
    return updated


# -- shapes ---------------------------------------------------------------------------------


def parse_metadata(value: Any) -> Any:
    """`metadata` as an object where better-auth parses it; a value that is not JSON stays
    as it is stored."""
    if isinstance(value, str) and value:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value if value else None


def organization_out(
    ctx: Ctx[Any], row: Mapping[str, Any], *, metadata: bool = False
) -> dict[str, Any]:
    """The organization row; `metadata=True` parses `metadata` (create and update do,
    get and list send the stored string)."""
    out = ctx.context.public_row("organization", row)
    if metadata:
        parsed = parse_metadata(out.get("metadata"))
        if parsed is None:
            out.pop("metadata", None)
        else:
            out["metadata"] = parsed
    return out


def member_out(ctx: Ctx[Any], row: Mapping[str, Any]) -> dict[str, Any]:
    return ctx.context.public_row("member", row)


def invitation_out(ctx: Ctx[Any], row: Mapping[str, Any]) -> dict[str, Any]:
    return ctx.context.public_row("invitation", row)


def team_out(ctx: Ctx[Any], row: Mapping[str, Any]) -> dict[str, Any]:
    return ctx.context.public_row("team", row)


# -- zod's z.coerce.string() ------------------------------------------------------------------

_ABSENT: Any = object()


def absent() -> Any:
    """The default of a required coerced field: left out, zod 4 says `expected
    nonoptional`, which a plain required field would not (a factory: the marker must stay
    out of the OpenAPI document)."""
    return _ABSENT


def _js_string(value: Any) -> Any:
    """JavaScript's String(value), as `z.coerce.string()` makes it."""
    if value is _ABSENT:
        raise PydanticCustomError(
            "nonoptional", "Invalid input: expected nonoptional, received undefined"
        )
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, list):
        return ",".join("" if v is None else str(_js_string(v)) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return value if isinstance(value, str) else str(value)


CoercedString = Annotated[str, BeforeValidator(_js_string)]
"""A field as `z.coerce.string()` reads it: `Field(default_factory=absent,
validate_default=True)` makes it required in zod's words."""


# -- bounded input --------------------------------------------------------------------------
# better-auth bounds none of these; MySQL keeps names and slugs in varchar(255) and metadata
# in a 64 KB text, and PostgreSQL cannot index a slug of more than ~2.7 KB: past these a
# write would fail in the database (a 500). Refused first, in zod's words.

MAX_NAME = 255
MAX_METADATA_JSON = 16_000  # characters of JSON: within 64 KB in any UTF-8


def _bounded_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value, ensure_ascii=False)) > MAX_METADATA_JSON:
        raise PydanticCustomError(
            "too_big", f"Too big: expected JSON to have <={MAX_METADATA_JSON} characters"
        )
    return value


Name = Annotated[str, PydanticField(min_length=1, max_length=MAX_NAME)]
"""A name or slug: zod's z.string().min(1), and at most 255 characters."""
LooseName = Annotated[str, PydanticField(max_length=MAX_NAME)]
"""A name better-auth takes empty (create-team), at most 255 characters."""
Logo = Annotated[str, PydanticField(max_length=MAX_IMAGE_LENGTH)]
Metadata = Annotated[dict[str, Any], AfterValidator(_bounded_metadata)]
