"""TypeScript better-auth and Bastion on one database with one secret: one user base.

For each database (PostgreSQL, SQLite, MariaDB) the real better-auth 1.7.25 server
(`ba-peer.mjs serve`, with the bearer plugin) and a Bastion Identity served by uvicorn run
side by side on the same database and secret. Each trusts the other's origin, and every
request carries the *other* server's Origin, as a page served by one calling the other would.

What one server writes, the other reads: passwords (scrypt hashes), sessions (signed
cookies and bearer tokens), and their end (sign-out).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import pytest_asyncio

from bastion.identity import Identity, bearer
from bastion.identity.email import EmailLink
from tests.e2e.bastion_server import free_port, serve
from tests.e2e.client_flow import MailKind
from tests.e2e.node_peer import BetterAuthServer, better_auth_server
from tests.services import scratch_database

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SECRET = "shared-secret-for-both-servers-0123456789abcdef"
PASSWORD = "correct-horse-battery"
SESSION_COOKIE = "better-auth.session_token"  # http: no __Secure- prefix on either side
_emails = itertools.count()


@dataclass
class Peer:
    """One of the two servers, spoken to over HTTP without a cookie jar."""

    name: str
    base_url: str  # …/api/auth
    client: httpx.AsyncClient
    foreign_origin: str = ""  # the other server's origin, sent as Origin

    @property
    def origin(self) -> str:
        return self.base_url.removesuffix("/api/auth")

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        cookie: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        headers = {"origin": self.foreign_origin}
        if cookie is not None:
            headers["cookie"] = cookie
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        request = httpx.Request(method, self.base_url + path, headers=headers, json=body)
        return await self.client.send(request)  # a bare Request: the client's jar is not used

    async def sign_up(self, email: str, name: str = "Shared") -> httpx.Response:
        body = {"name": name, "email": email, "password": PASSWORD}
        response = await self.call("POST", "/sign-up/email", body)
        assert response.status_code == 200, (self.name, response.text)
        return response

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = await self.call("POST", "/sign-in/email", {"email": email, "password": password})
        assert response.status_code == 200, (self.name, response.text)
        return response

    async def session(self, *, cookie: str | None = None, token: str | None = None) -> Any:
        response = await self.call("GET", "/get-session", cookie=cookie, token=token)
        assert response.status_code == 200, (self.name, response.text)
        return response.json()


@dataclass
class Servers:
    kind: str
    ts: Peer
    bastion: Peer
    ts_server: BetterAuthServer
    bastion_mails: list[tuple[str, EmailLink]]  # (kind, link) as Bastion sent them

    async def mailed_token(self, peer: Peer, kind: MailKind, to: str) -> str:
        """The token of the newest mail of `kind` that `peer` sent to `to`."""
        if peer is self.ts:
            return str((await self.ts_server.next_mail(kind, to))["token"])
        links = [link for k, link in self.bastion_mails if k == kind and link.user["email"] == to]
        assert links, f"Bastion sent no {kind} mail to {to}: {self.bastion_mails}"
        return links[-1].token


def session_cookie(response: httpx.Response) -> str:
    """`name=value` of the session cookie the response sets."""
    for line in response.headers.get_list("set-cookie"):
        pair = line.split(";", 1)[0]
        name, _, value = pair.partition("=")
        if name == SESSION_COOKIE and value:
            return pair
    raise AssertionError(f"no session cookie in {response.headers.get_list('set-cookie')}")


def new_email(tag: str) -> str:
    return f"{tag}-{next(_emails)}@example.com"


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["postgresql", "sqlite", "mysql"]
)
async def servers(request: pytest.FixtureRequest) -> AsyncIterator[Servers]:
    bastion_port = free_port()
    bastion_origin = f"http://127.0.0.1:{bastion_port}"
    async with (
        scratch_database(request.param) as database_url,
        better_auth_server(
            database_url, BETTER_AUTH_SECRET=SECRET, TRUSTED_ORIGINS=bastion_origin
        ) as ts_server,
    ):
        mails: list[tuple[str, EmailLink]] = []

        def mailer(kind: MailKind) -> Any:
            async def send(link: EmailLink, request: Any) -> None:
                mails.append((kind, link))

            return send

        def identity_for(origin: str) -> Identity:
            return Identity(
                env={},
                secret=SECRET,
                base_url=origin,
                database=database_url,
                email_and_password={
                    "enabled": True,
                    "send_reset_password": mailer("reset-password"),
                },
                email_verification={"send_verification_email": mailer("verify-email")},
                trusted_origins=[ts_server.origin],
                plugins=[bearer()],
            )

        async with (
            serve(identity_for, port=bastion_port) as (_, origin),
            httpx.AsyncClient(timeout=30) as client,
        ):
            ts = Peer("better-auth", ts_server.base_url, client, foreign_origin=origin)
            ours = Peer("bastion", f"{origin}/api/auth", client, foreign_origin=ts_server.origin)
            yield Servers(request.param, ts, ours, ts_server, mails)


def both_ways(servers: Servers) -> list[tuple[Peer, Peer]]:
    return [(servers.ts, servers.bastion), (servers.bastion, servers.ts)]


def check_same_session(first: Any, second: Any) -> None:
    """Both servers describe one session and one user alike (dates to the millisecond)."""
    assert first is not None and second is not None
    assert first["session"] == second["session"]
    assert first["user"] == second["user"]


# (a) and (d): a password set on one server signs in on the other ---------------------


@pytest.mark.parametrize("direction", ["ts-to-bastion", "bastion-to-ts"])
async def test_user_signed_up_on_one_signs_in_on_the_other(
    servers: Servers, direction: str
) -> None:
    writer, reader = both_ways(servers)[direction == "bastion-to-ts"]
    email = new_email(f"signup-{writer.name}")
    user = (await writer.sign_up(email)).json()["user"]

    signed_in = (await reader.sign_in(email)).json()
    assert signed_in["user"]["id"] == user["id"]
    assert signed_in["user"]["email"] == email
    assert signed_in["redirect"] is False and signed_in["token"]

    wrong = await reader.call("POST", "/sign-in/email", {"email": email, "password": "wrong-pass"})
    assert wrong.status_code == 401
    assert wrong.json() == {
        "message": "Invalid email or password",
        "code": "INVALID_EMAIL_OR_PASSWORD",
    }


# (b): a session cookie minted by one is a session for the other ------------------------


@pytest.mark.parametrize("direction", ["ts-to-bastion", "bastion-to-ts"])
async def test_session_cookie_is_accepted_by_the_other(servers: Servers, direction: str) -> None:
    issuer, verifier = both_ways(servers)[direction == "bastion-to-ts"]
    email = new_email(f"cookie-{issuer.name}")
    await issuer.sign_up(email)
    response = await issuer.sign_in(email)
    cookie = session_cookie(response)

    theirs = await verifier.session(cookie=cookie)
    assert theirs is not None, f"{verifier.name} refused {issuer.name}'s cookie"
    assert theirs["session"]["token"] == response.json()["token"]
    assert theirs["user"]["email"] == email
    check_same_session(await issuer.session(cookie=cookie), theirs)

    # A fresh session is not refreshed: no new cookie from the reader.
    again = await verifier.call("GET", "/get-session", cookie=cookie)
    assert again.headers.get_list("set-cookie") == []


# (c): a bearer token from one works on the other ---------------------------------------


@pytest.mark.parametrize("direction", ["ts-to-bastion", "bastion-to-ts"])
@pytest.mark.parametrize("form", ["signed", "raw"])
async def test_bearer_token_is_accepted_by_the_other(
    servers: Servers, direction: str, form: str
) -> None:
    issuer, verifier = both_ways(servers)[direction == "bastion-to-ts"]
    email = new_email(f"bearer-{issuer.name}")
    await issuer.sign_up(email)
    response = await issuer.sign_in(email)
    signed = response.headers["set-auth-token"]  # token.signature, not URL-encoded
    assert signed == unquote(session_cookie(response).split("=", 1)[1])
    token = signed if form == "signed" else response.json()["token"]

    theirs = await verifier.session(token=token)
    assert theirs is not None, f"{verifier.name} refused {issuer.name}'s bearer token"
    assert theirs["session"]["token"] == response.json()["token"]
    check_same_session(await issuer.session(token=token), theirs)

    forged = signed[:-5] + ("AAAA=" if not signed.endswith("AAAA=") else "BBBB=")
    assert await verifier.session(token=forged) is None


# (e): signing out on one ends the session on the other ---------------------------------


@pytest.mark.parametrize("direction", ["ts-signs-out", "bastion-signs-out"])
async def test_sign_out_on_one_ends_the_session_on_the_other(
    servers: Servers, direction: str
) -> None:
    other, signer_out = both_ways(servers)[direction == "ts-signs-out"]
    email = new_email(f"signout-{signer_out.name}")
    await other.sign_up(email)
    response = await other.sign_in(email)
    cookie, token = session_cookie(response), response.json()["token"]
    assert await signer_out.session(cookie=cookie) is not None
    assert await other.session(cookie=cookie) is not None

    out = await signer_out.call("POST", "/sign-out", cookie=cookie)
    assert out.status_code == 200 and out.json() == {"success": True}

    for peer in (other, signer_out):
        gone = await peer.call("GET", "/get-session", cookie=cookie)
        assert gone.status_code == 200 and gone.json() is None, (peer.name, gone.text)
        assert await peer.session(token=token) is None, peer.name
    # The user is still there: a new sign-in on either works.
    for peer in (other, signer_out):
        await peer.sign_in(email)


# Beyond the brief's five: what else one server writes and the other reads -------------


async def test_both_list_the_same_sessions(servers: Servers) -> None:
    email = new_email("sessions")
    first = await servers.ts.sign_up(email)
    await servers.bastion.sign_in(email)
    await servers.ts.sign_in(email)
    lists = []
    for peer in (servers.ts, servers.bastion):
        response = await peer.call("GET", "/list-sessions", cookie=session_cookie(first))
        assert response.status_code == 200, (peer.name, response.text)
        lists.append(sorted(response.json(), key=lambda session: session["token"]))
    assert len(lists[0]) == 3
    assert lists[0] == lists[1]


@pytest.mark.parametrize("direction", ["ts-to-bastion", "bastion-to-ts"])
async def test_reset_link_from_one_resets_the_password_on_the_other(
    servers: Servers, direction: str
) -> None:
    sender, resetter = both_ways(servers)[direction == "bastion-to-ts"]
    email = new_email(f"reset-{sender.name}")
    await sender.sign_up(email)
    asked = await sender.call("POST", "/request-password-reset", {"email": email})
    assert asked.status_code == 200, asked.text
    token = await servers.mailed_token(sender, "reset-password", email)

    body = {"newPassword": "a-brand-new-password", "token": token}
    reset = await resetter.call("POST", "/reset-password", body)
    assert (reset.status_code, reset.json()) == (200, {"status": True})
    again = await sender.call("POST", "/reset-password", body)  # consumed on the other
    assert (again.status_code, again.json()["code"]) == (400, "INVALID_TOKEN")
    for peer in (sender, resetter):
        await peer.sign_in(email, "a-brand-new-password")
        old = await peer.call("POST", "/sign-in/email", {"email": email, "password": PASSWORD})
        assert old.status_code == 401, (peer.name, old.text)


@pytest.mark.parametrize("direction", ["ts-to-bastion", "bastion-to-ts"])
async def test_verification_link_from_one_verifies_on_the_other(
    servers: Servers, direction: str
) -> None:
    sender, verifier = both_ways(servers)[direction == "bastion-to-ts"]
    email = new_email(f"verify-{sender.name}")
    cookie = session_cookie(await sender.sign_up(email))
    sent = await sender.call("POST", "/send-verification-email", {"email": email})
    assert (sent.status_code, sent.json()) == (200, {"status": True})
    token = await servers.mailed_token(sender, "verify-email", email)

    verified = await verifier.call("GET", f"/verify-email?token={token}")
    assert (verified.status_code, verified.json()) == (200, {"status": True, "user": None})
    for peer in (sender, verifier):
        seen = await peer.session(cookie=cookie)
        assert seen["user"]["emailVerified"] is True, peer.name
