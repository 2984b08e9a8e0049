"""The schemas of better-auth's two-factor, username, admin, organization and jwt plugins,
written with our schema registry, in the order the reference DDL was made with.

Two-factor's, username's and organization's are the plugins' own; the others prove the
registry can express their tables until their plugins come."""

from bastion.identity import organization, two_factor, username
from bastion.identity.db import Field, Reference, TableSpec

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

# The plugin's own declaration (bastion.identity.organization): its tables must be 1.7.25's.
ORGANIZATION = dict(organization().schema)

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
