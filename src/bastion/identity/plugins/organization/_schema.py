"""The tables and session columns of the organization plugin, as better-auth 1.7.25 declares
them (its migrator's DDL: better-auth-ddl-plugins.sql). Teams add `team`, `teamMember`,
`invitation.teamId` and `session.activeTeamId`; dynamic access control adds
`organizationRole`."""

from __future__ import annotations

from ...db import NOW, Field, Reference, TableSpec
from ._options import OrganizationOptions

__all__ = ["organization_schema"]


def organization_schema(options: OrganizationOptions) -> dict[str, TableSpec]:
    teams = options.teams_enabled
    tables: dict[str, TableSpec] = {
        "session": TableSpec(
            fields={
                "activeOrganizationId": Field(type="string", required=False, input=False),
                **(
                    {"activeTeamId": Field(type="string", required=False, input=False)}
                    if teams
                    else {}
                ),
            }
        ),
        "organization": TableSpec(
            fields={
                "name": Field(type="string", sortable=True),
                "slug": Field(type="string", unique=True, sortable=True),
                "logo": Field(type="string", required=False),
                "createdAt": Field(type="date"),
                "metadata": Field(type="string", required=False),
            }
        ),
    }
    if options.dynamic_roles_enabled:
        tables["organizationRole"] = TableSpec(
            fields={
                "organizationId": Field(
                    type="string", references=Reference("organization"), index=True
                ),
                "role": Field(type="string", index=True),
                "permission": Field(type="string"),
                "createdAt": Field(type="date", default=NOW),
                "updatedAt": Field(type="date", required=False, on_update=NOW),
            }
        )
    if teams:
        tables["team"] = TableSpec(
            fields={
                "name": Field(type="string"),
                "memberCount": Field(type="number", default=0, input=False, returned=False),
                "organizationId": Field(
                    type="string", references=Reference("organization"), index=True
                ),
                "createdAt": Field(type="date"),
                "updatedAt": Field(type="date", required=False, on_update=NOW),
            }
        )
        tables["teamMember"] = TableSpec(
            fields={
                "teamId": Field(type="string", references=Reference("team"), index=True),
                "userId": Field(type="string", references=Reference("user"), index=True),
                "membershipKey": Field(
                    type="string", required=False, unique=True, input=False, returned=False
                ),
                "createdAt": Field(type="date", required=False),
            }
        )
    tables["member"] = TableSpec(
        fields={
            "organizationId": Field(
                type="string", references=Reference("organization"), index=True
            ),
            "userId": Field(type="string", references=Reference("user"), index=True),
            "role": Field(type="string", sortable=True, default="member"),
            "createdAt": Field(type="date"),
        }
    )
    tables["invitation"] = TableSpec(
        fields={
            "organizationId": Field(
                type="string", references=Reference("organization"), index=True
            ),
            "email": Field(type="string", sortable=True, index=True),
            "role": Field(type="string", required=False, sortable=True),
            **({"teamId": Field(type="string", required=False, sortable=True)} if teams else {}),
            "status": Field(type="string", sortable=True, default="pending"),
            "expiresAt": Field(type="date"),
            "createdAt": Field(type="date", default=NOW),
            "inviterId": Field(type="string", references=Reference("user")),
        }
    )
    return tables
