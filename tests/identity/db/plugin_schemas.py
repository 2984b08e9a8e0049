"""The schemas of better-auth's two-factor, username, admin, organization and jwt plugins,
written with our schema registry, in the order the reference DDL was made with.

Two-factor's and username's are the plugins' own; the others prove the registry can express
their tables until their plugins come."""

from bastion.identity import two_factor, username
from bastion.identity.db import NOW, Field, Reference, TableSpec

USER = Reference("user")

# The plugin's own declaration (bastion.identity.two_factor): its tables must be 1.7.25's.
TWO_FACTOR = dict(two_factor().schema)

# The plugin's own declaration (bastion.identity.username): its columns must be 1.7.25's.
USERNAME = dict(username().schema)

ADMIN = {
    "user": TableSpec(
        fields={
            "role": Field(type="string", required=False, input=False),
            "banned": Field(type="boolean", required=False, default=False, input=False),
            "banReason": Field(type="string", required=False, input=False),
            "banExpires": Field(type="date", required=False, input=False),
        }
    ),
    "session": TableSpec(fields={"impersonatedBy": Field(type="string", required=False)}),
}

ORGANIZATION = {
    "session": TableSpec(
        fields={"activeOrganizationId": Field(type="string", required=False, input=False)}
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
    "member": TableSpec(
        fields={
            "organizationId": Field(
                type="string", references=Reference("organization"), index=True
            ),
            "userId": Field(type="string", references=USER, index=True),
            "role": Field(type="string", sortable=True, default="member"),
            "createdAt": Field(type="date"),
        }
    ),
    "invitation": TableSpec(
        fields={
            "organizationId": Field(
                type="string", references=Reference("organization"), index=True
            ),
            "email": Field(type="string", index=True, sortable=True),
            "role": Field(type="string", required=False, sortable=True),
            "status": Field(type="string", sortable=True, default="pending"),
            "expiresAt": Field(type="date"),
            "createdAt": Field(type="date", default=NOW),
            "inviterId": Field(type="string", references=USER),
        }
    ),
}

JWT = {
    "jwks": TableSpec(
        fields={
            "publicKey": Field(type="string"),
            "privateKey": Field(type="string"),
            "createdAt": Field(type="date"),
            "expiresAt": Field(type="date", required=False),
            "alg": Field(type="string", required=False),
            "crv": Field(type="string", required=False),
        }
    )
}

# better-auth 1.7.25's DDL with the plugins twoFactor, username, admin, organization, jwt (and
# magicLink and bearer, which add no columns) lists the user columns of two-factor, username,
# admin and the session columns of admin, organization: the plugins are applied in this order.
IN_REFERENCE_ORDER = [TWO_FACTOR, USERNAME, ADMIN, ORGANIZATION, JWT]
