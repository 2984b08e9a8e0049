"""Access control as data, as better-auth's `createAccessControl` (`better-auth/plugins/access`).

    ac = create_access_control({"report": ["create", "read"], "refund": ["issue"]})
    analyst = ac.new_role({"report": ["read"]})
    analyst.authorize({"report": ["read"]}).success          # True
    analyst.authorize({"refund": ["issue"]}).error   # unauthorized to access resource "refund"

A request maps resources to the actions wanted: all of them (`"AND"`, the default) or any
(`{"actions": [...], "connector": "OR"}` for one resource; `connector="OR"` across resources).
The statements say which resources and actions exist; a role holds a subset of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["AccessControl", "AuthorizeResult", "Role", "Statements", "create_access_control"]

Statements = Mapping[str, Sequence[str]]
Connector = Literal["AND", "OR"]


@dataclass(frozen=True, slots=True)
class AuthorizeResult:
    success: bool
    error: str | None = None


_GRANTED = AuthorizeResult(True)


def _actions_of(requested: Any) -> tuple[Sequence[Any], Connector]:
    if isinstance(requested, list | tuple):
        return requested, "AND"
    if isinstance(requested, Mapping):
        actions = requested.get("actions")
        connector: Connector = "OR" if requested.get("connector") == "OR" else "AND"
        return (actions if isinstance(actions, list | tuple) else ()), connector
    raise ValueError("Invalid access control request")


def _resource_granted(allowed: Sequence[str], requested: Any) -> bool:
    actions, connector = _actions_of(requested)
    if not actions:
        return False
    held = (isinstance(action, str) and action in allowed for action in actions)
    return any(held) if connector == "OR" else all(held)


class Role:
    """The actions a role holds, per resource."""

    __slots__ = ("statements",)

    def __init__(self, statements: Statements) -> None:
        self.statements: Mapping[str, tuple[str, ...]] = MappingProxyType(
            {resource: tuple(actions) for resource, actions in statements.items()}
        )

    def authorize(
        self, request: Mapping[str, Any], connector: Connector = "AND"
    ) -> AuthorizeResult:
        """better-auth's `role.authorize`: an unknown resource fails an AND request and is
        skipped in an OR one; an empty request is not authorized."""
        granted_any = False
        for resource, requested in request.items():
            allowed = self.statements.get(resource)
            if allowed is None:
                if connector == "AND":
                    return AuthorizeResult(
                        False, f"You are not allowed to access resource: {resource}"
                    )
                continue
            granted = _resource_granted(allowed, requested)
            if granted and connector == "OR":
                return _GRANTED
            if not granted and connector == "AND":
                return AuthorizeResult(False, f'unauthorized to access resource "{resource}"')
            granted_any = granted_any or granted
        return _GRANTED if granted_any else AuthorizeResult(False, "Not authorized")

    def __repr__(self) -> str:
        return f"Role({dict(self.statements)!r})"


class AccessControl:
    """The statements (every resource and its actions) and a factory of roles over them."""

    __slots__ = ("statements",)

    def __init__(self, statements: Statements) -> None:
        self.statements: Mapping[str, tuple[str, ...]] = MappingProxyType(
            {resource: tuple(actions) for resource, actions in statements.items()}
        )

    def new_role(self, statements: Statements) -> Role:
        return Role(statements)

    def __repr__(self) -> str:
        return f"AccessControl({dict(self.statements)!r})"


def create_access_control(statements: Statements) -> AccessControl:
    return AccessControl(statements)
