"""The official better-auth JS client with `organizationClient({teams, dynamicAccessControl})`,
unchanged, against Bastion and, in the same test, against TypeScript better-auth 1.7.25, on
SQLite, PostgreSQL and MariaDB, with its cookie jar and with bearer tokens.

One organization's whole life, run on both: its owner checks the slug and creates it, invites
a second user, who reads the link from the mail (over real SMTP from Bastion, from the mail
log of ba-peer), opens and accepts the invitation; the owner lists the members and changes a
role; teams are created, joined, made active and listed; a role made at run time (dynamic
access control) is created, listed, read and given to the member, whose permissions then
follow it; the organization is made active and inactive again; the member leaves, the only
owner may not; the organization is deleted. Each step's `{data, error}` must be the same on
both servers, up to the random values (ids by the order they appeared, dates by type);
when Bastion's flow stops at a step, the steps before it are compared all the same.
"""

from __future__ import annotations

from typing import Literal

import pytest

from bastion.identity import Identity, bearer
from tests.e2e.bastion_server import serve
from tests.e2e.js_client import js_client
from tests.e2e.node_peer import better_auth_server
from tests.e2e.organization_flow import (
    INVITATION_PATH,
    TS_ORGANIZATION,
    Step,
    bastion_organization,
    compare_steps,
    normalised,
    organization_flow,
)
from tests.identity.mailbox import SMTPMailbox, smtp_mailbox_fixture  # noqa: F401
from tests.services import scratch_database

pytestmark = pytest.mark.e2e

SECRET = "js-client-organization-secret-0123456789abcdef"


@pytest.mark.parametrize("mode", ["cookie", "bearer"])
@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
async def test_an_organization_s_life_through_the_official_client(
    kind: str, mode: Literal["cookie", "bearer"], smtp_mailbox: SMTPMailbox
) -> None:
    async with scratch_database(kind) as our_database, scratch_database(kind) as ts_database:

        def identity_for(origin: str) -> Identity:
            return Identity(
                env={},
                secret=SECRET,
                base_url=origin,
                database=our_database,
                email_and_password={"enabled": True},
                plugins=[bearer(), bastion_organization(smtp_mailbox.mailer())],
            )

        async def our_link(to: str) -> str:
            await smtp_mailbox.wait_for(to)
            links = [u for m in smtp_mailbox.messages_to(to) for u in m.urls]
            found = [u for u in links if INVITATION_PATH in u]
            assert found, f"no invitation link mailed to {to}: {links}"
            return found[-1]

        async with (
            better_auth_server(
                ts_database, BETTER_AUTH_SECRET=SECRET, ORGANIZATION=TS_ORGANIZATION
            ) as server,
            js_client(server.base_url, mode, CLIENT_PLUGINS="organization") as owner,
            js_client(server.base_url, mode, CLIENT_PLUGINS="organization") as invitee,
        ):

            async def their_link(to: str) -> str:
                return str((await server.next_mail("organization-invitation", to))["url"])

            theirs = await organization_flow(owner, invitee, their_link)

        ours: list[Step] = []
        async with (
            serve(identity_for) as (_, origin),
            js_client(f"{origin}/api/auth", mode, CLIENT_PLUGINS="organization") as owner,
            js_client(f"{origin}/api/auth", mode, CLIENT_PLUGINS="organization") as invitee,
        ):
            try:
                await organization_flow(owner, invitee, our_link, ours)
            except AssertionError as failure:
                # Where Bastion's flow stops, what came before it is compared too.
                before = compare_steps(theirs, normalised(ours))
                raise AssertionError(f"{failure}\nbefore it:\n" + "\n".join(before)) from None

    problems = compare_steps(theirs, normalised(ours))
    assert len(ours) == len(theirs) and not problems, "\n".join(problems)
