"""better-auth's default organization statements and roles (`organization/access`).

`owner` and `admin` manage the organization (only the owner deletes it); `member` may read
the dynamic roles and nothing else of the plugin's own resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..access import Role, create_access_control

__all__ = [
    "DEFAULT_ROLES",
    "DEFAULT_STATEMENTS",
    "admin_ac",
    "default_ac",
    "member_ac",
    "owner_ac",
]

DEFAULT_STATEMENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "organization": ("update", "delete"),
        "member": ("create", "update", "delete"),
        "invitation": ("create", "cancel"),
        "team": ("create", "update", "delete"),
        "ac": ("create", "read", "update", "delete"),
    }
)

default_ac = create_access_control(DEFAULT_STATEMENTS)

_MANAGE = {
    "member": ["create", "update", "delete"],
    "invitation": ["create", "cancel"],
    "team": ["create", "update", "delete"],
    "ac": ["create", "read", "update", "delete"],
}
admin_ac = default_ac.new_role({"organization": ["update"], **_MANAGE})
owner_ac = default_ac.new_role({"organization": ["update", "delete"], **_MANAGE})
member_ac = default_ac.new_role(
    {"organization": [], "member": [], "invitation": [], "team": [], "ac": ["read"]}
)

DEFAULT_ROLES: Mapping[str, Role] = MappingProxyType(
    {"admin": admin_ac, "owner": owner_ac, "member": member_ac}
)
