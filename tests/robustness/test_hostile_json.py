"""Property-based (hypothesis): hostile input at every endpoint of both servers (issue 11).

Every identity endpoint of the default app (core, bearer, open-api and the memory tables;
server-only ones have no URL) plus the organization plugin's (teams and dynamic access
control on: issue 15), and every agent-server route (`/api/openapi.json` too) gets
bodies, queries and path parameters made of what broke the servers before: nesting up to
1,200 levels, lone surrogates, NUL (in values and keys), strings up to a million
characters, wrong types for every field (numbers, arrays, objects, null, booleans), unknown
keys, JSON that is not an object and text that is not JSON. Requests carry the signed-in
user's session cookie and bearer token and a trusted Origin, so that they reach the code
behind the guards. The app is the default's (`bastion.standalone`: its Identity options,
demo agent, tools and memory) plus the open-api plugin, with rate limits off, so that the
limiter's 429 does not stand between the examples and the handlers.

Asserted for each request: no 5xx; the answer is JSON (or a redirect, an empty 404, the
identity's HTML error page, or an event stream without an error event). After each
endpoint: get-session, list-sessions, the thread list, every thread and its messages, and
every organization of the owner (in full, with its members, invitations, teams and roles)
still read back, with no 5xx: nothing was stored that cannot be read back. The owner keeps
an organization ("kept": a team, the dynamic role `auditor`, a pending invitation) whose
ids are the valid values of the organization endpoints' fields, so that a spoiled field
gets past the others to the code that uses it.

Bounded for CI: a fixed number of examples per endpoint (30; `BASTION_HOSTILE_EXAMPLES=300`
for a deeper hunt), derandomized (the same examples on every run), no deadline. A hostile
change-password may succeed with a new password: the harness then sets the owner's own
again, as an administrator would. On SQLite; on PostgreSQL and MySQL/MariaDB too when they
are there (skipped otherwise, naming them, unless $BASTION_REQUIRE_SERVICES is set): MySQL's
VARCHAR columns and MariaDB's JSON checks refuse values the others keep.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import Identity, bearer, open_api, organization
from bastion.identity.db import and_, eq
from bastion.identity.email import ConsoleMailer, reset_password_sender, verification_sender
from bastion.identity.endpoint import JSON_OR_FORM, Endpoint
from bastion.identity.plugins.organization import default_ac
from bastion.server import Bastion, Memory, memory_plugin
from bastion.serving import ServedApp, serving
from bastion.standalone import demo_agent, get_time, whoami
from tests.hashing import cheap_hash, cheap_password
from tests.robustness.hostile_kit import BASE, PASSWORD, SECRET
from tests.services import scratch_database

EXAMPLES = settings(
    # More for a deeper hunt than CI's: BASTION_HOSTILE_EXAMPLES=300 python -m pytest …
    max_examples=int(os.environ.get("BASTION_HOSTILE_EXAMPLES", "30")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EMAIL = "owner@example.com"


_NOWHERE = {
    name: f"http://127.0.0.1:9/{name}"
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")
}


def build(database_url: str) -> tuple[Identity, Bastion]:
    """The default app's Identity and Bastion (bastion.standalone), rate limits off."""
    mailer = ConsoleMailer()
    identity = Identity(
        env={},
        secret=SECRET,
        database=database_url,
        base_url=BASE,
        email_and_password=cheap_password(
            {"enabled": True, "send_reset_password": reset_password_sender(mailer)}
        ),
        email_verification={"send_verification_email": verification_sender(mailer)},
        plugins=[
            bearer(),
            memory_plugin(),
            open_api(),
            organization(
                teams={"enabled": True}, dynamic_access_control={"enabled": True}, ac=default_ac
            ),
        ],
        rate_limit={"enabled": False},
        # A provider, so the social routes get past PROVIDER_NOT_FOUND; its endpoints are on
        # a port nothing listens on (no flow here gets as far as asking it).
        social_providers={"github": {"client_id": "x", "client_secret": "y", **_NOWHERE}},
    )
    app = Bastion(
        agents=[demo_agent()],
        tools=[whoami, get_time],
        auth=IdentityAuth(identity),
        memory=Memory(identity.db),
    )
    return identity, app


_IDENTITY, _BASTION = build("sqlite://")  # built to list what it serves, never started
IDENTITY_ENDPOINTS = sorted(
    (e for e in _IDENTITY.endpoints.values() if not e.server_only), key=lambda e: e.path
)
# Each method of an endpoint that takes a body on POST and answers GET too (the callback).
IDENTITY_CALLS = [
    (endpoint, method)
    for endpoint in IDENTITY_ENDPOINTS
    for method in (
        endpoint.methods
        if set(endpoint.methods) == {"GET", "POST"}
        else ["POST" if "POST" in endpoint.methods else endpoint.methods[0]]
    )
]
SERVER_ROUTES = [
    (template, method)
    for template, methods in _BASTION.router.routes.items()
    for method in methods
    if method != "HEAD"
]


# -- strategies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deep:
    """A value nested `depth` levels: written as text, deeper than json.dumps can go."""

    depth: int
    kind: str

    def text(self) -> str:
        if self.kind == "array":
            return "[" * self.depth + "]" * self.depth
        return '{"a":' * self.depth + "1" + "}" * self.depth


def to_json(value: Any) -> str:
    """JSON text, non-ASCII escaped (lone surrogates travel as `\\ud800`)."""
    if isinstance(value, Deep):
        return value.text()
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


ODD = ["\x00", "\ud800", "\udfff", "\n", "\r", "\u2028", "é", "😀", '"', "\\", "%", "/", "?", "#"]
UNSTORABLE = ["\x00", "\ud800", "\udfff"]  # NUL and lone surrogates
URL_SAFE_ODD = [c for c in ODD if not 0xD800 <= ord(c) <= 0xDFFF]
# Depths around what broke: the memory's readable limit (254) and the parser's (~970).
DEPTHS = [33, 254, 255, 300, 970, 1200]


def with_one_of(chars: list[str]) -> st.SearchStrategy[str]:
    """Short text with at least one of `chars` in it."""
    plain = st.text(max_size=6)
    return st.builds(lambda a, c, b: a + c + b, plain, st.sampled_from(chars), plain)


# Strings that fit in a URL (no lone surrogates: they cannot be percent-encoded).
url_text = st.one_of(with_one_of(URL_SAFE_ODD), st.text(max_size=12))
huge = st.sampled_from([255, 257, 1025, 2049, 4097, 70_000, 1_000_000]).map(lambda n: "x" * n)
plausible = st.sampled_from(
    ["", "ada@example.com", EMAIL, f"{EMAIL}\n", PASSWORD, "https://example.com/a.png", "/"]
)
unstorable = with_one_of(UNSTORABLE)
text = st.one_of(unstorable, with_one_of(ODD), huge, plausible)
keys = st.one_of(st.text(max_size=8), unstorable, st.just("__proto__"))
deep = st.builds(Deep, st.sampled_from(DEPTHS), st.sampled_from(["array", "obj"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
# Any value: strings, deep values, other types, and containers of them.
values = st.recursive(
    st.one_of(text, deep, scalars),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=4,
)
# What replaces a valid field: each kind of trouble about as likely as the others.
spoiled = st.one_of(unstorable, deep, huge, scalars, values)
not_json = st.sampled_from(["", "{", "NaN", '{"a": NaN}', '{"a": 1e999}', "[1,]", "\ud800"])

# Valid values of the fields the bodies use: an example starts from these and spoils a few,
# so that the spoiled value gets past the other fields' checks to the code that uses it
# (a password reaches scrypt only with a valid email beside it).
VALID: dict[str, Any] = {
    "name": "Ada",
    "email": EMAIL,
    "password": PASSWORD,
    "image": "https://example.com/a.png",
    "token": "some-token",
    "callbackURL": "/",
    "newPassword": PASSWORD,  # a change that succeeds keeps the owner's password
    "currentPassword": PASSWORD,
    "newEmail": "new@example.com",
    "rememberMe": True,
    "revokeOtherSessions": False,
    "redirectTo": "/reset",
    # the organization plugin's (the kept organization's ids: Harness.organization_values)
    "slug": "fresh-slug",
    "organizationSlug": "kept",
    "logo": "https://example.com/logo.png",
    "metadata": {"k": "v"},
    "keepCurrentActiveOrganization": False,
    "role": "member",
    "roleName": "auditor",
    "permission": {"team": ["update"]},
    "permissions": {"member": ["delete"]},
    "data": {"name": "Kept"},
    "resend": True,
    "membersLimit": 10,
    "memberIdOrEmail": EMAIL,
}
SERVER_VALID: dict[str, Any] = {
    "messages": "hello",
    "title": "a title",
    "metadata": {"k": "v"},
    "data": {},
    "maxSteps": 2,
    "requestContext": {"k": "v"},
}
# `memory`: Mastra's `{thread, resource}` (what @mastra/client-js sends on generate/stream).
SERVER_OPTIONAL = ["threadId", "resourceId", "memory"]


def use_messages() -> st.SearchStrategy[Any]:
    """What the demo model turns into a tool call: `use <tool> <JSON the client wrote>`."""
    tools = st.sampled_from(["whoami", "get_time", "nope"])
    written = st.one_of(values.map(to_json), deep.map(Deep.text), not_json)
    said = st.builds(lambda t, j: f"use {t} {j}", tools, written)
    as_list = said.map(lambda s: [{"role": "user", "content": s}])
    return st.one_of(said, as_list)


def objects(valid: Mapping[str, Any], optional: list[str]) -> st.SearchStrategy[str]:
    """`valid` with one or two fields (or optional ones) spoiled, and unknown keys."""
    names = sorted([*valid, *optional])
    spoil = st.one_of(spoiled, use_messages()) if "messages" in valid else spoiled
    changes = st.dictionaries(st.sampled_from(names), spoil, min_size=1, max_size=2)
    extra = st.dictionaries(keys, values, max_size=2)
    return st.builds(lambda c, e: to_json({**valid, **c, **e}), changes, extra)


def json_bodies(valid: Mapping[str, Any], optional: list[str]) -> st.SearchStrategy[str]:
    whole = st.one_of(values.map(to_json), deep.map(Deep.text), not_json)  # not an object
    return st.one_of(objects(valid, optional), objects(valid, optional), whole)


def queries(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    long = st.sampled_from([255, 257, 2049, 4097, 20_000]).map(lambda n: "x" * n)  # URL < 64 KB
    value = st.one_of(url_text, long, plausible, st.lists(url_text, min_size=2, max_size=3))
    return st.dictionaries(st.one_of(st.sampled_from(fields), url_text), value, max_size=4)


def model_fields(endpoint: Endpoint, which: str) -> list[str]:
    model = getattr(endpoint, which)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


# -- the app, started once per dialect, in a thread of its own ---------------------------------


class Harness:
    """The default app on a scratch database, driven from synchronous hypothesis tests
    through a blocking portal; one signed-in owner whose session and threads are checked."""

    def __init__(self, portal: BlockingPortal, http: httpx.AsyncClient, identity: Identity) -> None:
        self.portal = portal
        self.http = http
        self.identity = identity
        self.token = ""
        self.thread_id = ""
        self.organization_values: dict[str, str] = {}
        self.organizations = 0

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.portal.call(partial(self.http.request, method, url, headers=headers, **kwargs))

    def start(self) -> None:
        signed_up = self.request(
            "POST",
            "/api/auth/sign-up/email",
            json={"name": "Owner", "email": EMAIL, "password": PASSWORD},
        )
        assert signed_up.status_code == 200, signed_up.text
        self.token = signed_up.headers["set-auth-token"]
        thread = self.request("POST", "/api/memory/threads", json={"title": "kept"})
        assert thread.status_code == 201, thread.text
        self.thread_id = thread.json()["id"]
        self.keep_organization()

    def ok(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.request(method, url, **kwargs)
        assert response.status_code == 200, f"{method} {url}: {response.text[:300]}"
        return response.json()

    def keep_organization(self) -> None:
        """The owner's organization with a team, a dynamic role and a pending invitation
        (made again if a hostile request deleted it)."""
        kept = self.organization_values.get("organizationId")
        if kept and any(o["id"] == kept for o in self.ok("GET", "/api/auth/organization/list")):
            return
        self.organizations += 1
        slug = "kept" if self.organizations == 1 else f"kept-{self.organizations}"
        org = self.ok("POST", "/api/auth/organization/create", json={"name": "Kept", "slug": slug})
        where = {"organizationId": org["id"]}
        team = self.ok("POST", "/api/auth/organization/create-team", json={**where, "name": "T"})
        self.ok(
            "POST",
            "/api/auth/organization/create-role",
            json={**where, "role": "auditor", "permission": {"team": ["update"]}},
        )
        invitation = self.ok(
            "POST",
            "/api/auth/organization/invite-member",
            json={**where, "email": "invitee@example.com", "role": "member"},
        )
        self.organization_values = {
            "organizationId": org["id"],
            "organizationSlug": slug,
            "memberId": org["members"][0]["id"],
            "userId": org["members"][0]["userId"],
            "teamId": team["id"],
            "invitationId": invitation["id"],
            "id": invitation["id"],  # get-invitation's query
        }

    def keep_signed_in(self) -> None:
        """A hostile request may have ended the owner's session (sign-out with its
        cookie, revoke-sessions): sign in again, as a client would."""
        session = self.request("GET", "/api/auth/get-session")
        assert session.status_code == 200, session.text
        if session.json() is None:
            signed_in = self.sign_in()
            if signed_in.status_code == 401:
                # A change-password whose new password was hostile but valid: the owner's
                # own password again, as an administrator would set it.
                self.portal.call(self._restore_password)
                signed_in = self.sign_in()
            assert signed_in.status_code == 200, signed_in.text
            self.token = signed_in.headers["set-auth-token"]

    def sign_in(self) -> httpx.Response:
        return self.request(
            "POST", "/api/auth/sign-in/email", json={"email": EMAIL, "password": PASSWORD}
        )

    async def _restore_password(self) -> None:
        db = self.identity.db
        owner = await db.find_one("user", eq("email", EMAIL))
        assert owner is not None, "the owner is gone"
        where = and_(eq("userId", owner["id"]), eq("providerId", "credential"))
        assert await db.update("account", where, {"password": await cheap_hash(PASSWORD)})

    def read_back(self) -> None:
        """Everything the owner has reads back, with no 5xx."""
        self.keep_signed_in()
        session = self.request("GET", "/api/auth/get-session")
        assert session.status_code == 200 and session.json()["user"]["email"] == EMAIL
        sessions = self.request("GET", "/api/auth/list-sessions")
        assert sessions.status_code == 200, sessions.text
        threads = self.request("GET", "/api/memory/threads")
        assert threads.status_code == 200, threads.text
        for thread in threads.json():
            one = self.request("GET", f"/api/memory/threads/{thread['id']}")
            assert one.status_code == 200, one.text
            messages = self.request("GET", f"/api/memory/threads/{thread['id']}/messages")
            assert messages.status_code == 200, messages.text
        for org in self.ok("GET", "/api/auth/organization/list"):
            where = {"organizationId": org["id"]}
            full = self.ok("GET", "/api/auth/organization/get-full-organization", params=where)
            assert full["id"] == org["id"]
            for listing in ("list-members", "list-invitations", "list-teams", "list-roles"):
                self.ok("GET", f"/api/auth/organization/{listing}", params=where)
        self.ok("GET", "/api/auth/organization/list-user-teams")
        self.keep_organization()


@asynccontextmanager
async def started(dialect: str) -> AsyncIterator[tuple[httpx.AsyncClient, Identity]]:
    async with scratch_database(dialect) as url:
        identity, app = build(url)
        served = serving(app)
        assert isinstance(served, ServedApp)
        async with (
            served.lifespan(),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=served),
                base_url=BASE,
                headers={"origin": BASE},
            ) as http,
        ):
            yield http, identity


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(started(request.param)) as (http, identity),
    ):
        running = Harness(portal, http, identity)
        running.start()
        yield running


def assert_clean(response: httpx.Response, what: str) -> None:
    """No 5xx, and an answer a client can read."""
    status, kind = response.status_code, response.headers.get("content-type", "")
    assert status < 500, f"{what}: {status} {response.text[:300]!r}"
    if 300 <= status < 400 or not response.content:
        return
    if kind.startswith("text/event-stream"):
        assert "event: error" not in response.text, f"{what}: {response.text[-300:]!r}"
    elif kind.startswith("text/html"):
        assert what.endswith("/api/auth/error"), what  # the identity's error page
    else:
        assert kind.startswith("application/json"), f"{what}: {kind}"
        response.json()


# -- the identity --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "method"), IDENTITY_CALLS, ids=[f"{m} {e.path}" for e, m in IDENTITY_CALLS]
)
def test_hostile_json_at_every_identity_endpoint(
    harness: Harness, endpoint: Endpoint, method: str
) -> None:
    # The endpoint's own fields (update-user and update-session take any keys: the user's).
    fields = model_fields(endpoint, "body") or ["name", "image"]
    harness.keep_signed_in()
    harness.keep_organization()
    known = {**VALID, **harness.organization_values}
    valid = {name: known.get(name, "x") for name in fields}
    query_fields = [
        *model_fields(endpoint, "query"),
        *(("state", "code", "iss") if "{id}" in endpoint.path else ()),
        "token",
        "callbackURL",
        "error",
    ]
    valid_query = {
        name: value
        for name in model_fields(endpoint, "query")
        if isinstance(value := known.get(name), str)
    }
    body = json_bodies(valid, []) if method == "POST" else st.just("")
    form = (
        st.builds(
            lambda changes: {**valid, **changes},
            st.dictionaries(st.sampled_from(fields), st.one_of(url_text, huge), max_size=3),
        )
        if method == "POST" and endpoint.media_types == JSON_OR_FORM
        else st.nothing()
    )

    @EXAMPLES
    @given(
        body=body,
        form=st.one_of(st.none(), form),
        query=st.one_of(
            queries(query_fields),
            # the valid query (the kept organization's ids) with a few keys spoiled
            queries(query_fields).map(lambda spoiled: {**valid_query, **spoiled}),
        )
        if valid_query
        else queries(query_fields),
        param=st.one_of(st.just("some-token"), url_text.filter(bool)),
    )
    def attempt(
        body: str, form: Mapping[str, str] | None, query: dict[str, Any], param: str
    ) -> None:
        harness.keep_signed_in()
        value = quote(param, safe="")
        path = "/api/auth" + endpoint.path.replace("{token}", value).replace("{id}", value)
        if form is not None:
            content = urlencode(form).encode()
            kind = "application/x-www-form-urlencoded"
        else:
            content = body.encode("utf-8", "surrogatepass")
            kind = "application/json"
        response = harness.request(
            method, path, content=content, params=query, headers={"content-type": kind}
        )
        assert_clean(response, f"{method} {path}")

    attempt()
    harness.read_back()


# -- the agent server ----------------------------------------------------------------------------


def path_for(template: str, harness: Harness) -> st.SearchStrategy[str]:
    hostile = url_text.filter(bool).map(lambda s: quote(s, safe=""))
    choices = {
        "agentId": st.one_of(st.just("assistant"), hostile),
        "toolId": st.one_of(st.sampled_from(["whoami", "get_time"]), hostile),
        "threadId": st.one_of(st.just(harness.thread_id), hostile),
    }
    names = [name for name in choices if "{" + name + "}" in template]

    def fill(parts: tuple[str, ...]) -> str:
        path = template
        for name, part in zip(names, parts, strict=True):
            path = path.replace("{" + name + "}", part)
        return path

    return st.tuples(*(choices[name] for name in names)).map(fill)


@pytest.mark.parametrize(("template", "method"), SERVER_ROUTES, ids=lambda v: str(v))
def test_hostile_json_at_every_agent_server_route(
    harness: Harness, template: str, method: str
) -> None:
    has_body = method in ("POST", "PUT", "PATCH")

    @EXAMPLES
    @given(
        path=path_for(template, harness),
        body=json_bodies(SERVER_VALID, SERVER_OPTIONAL) if has_body else st.just(""),
        # `page`, `perPage`, `metadata`, `orderBy[...]`: what Mastra's client sends.
        query=queries(
            ["resourceId", "limit", "offset", "page", "perPage", "metadata", "orderBy[field]"]
        ),
    )
    def attempt(path: str, body: str, query: dict[str, Any]) -> None:
        harness.keep_signed_in()
        response = harness.request(
            method,
            path,
            content=body.encode("utf-8", "surrogatepass"),
            params=query,
            headers={"content-type": "application/json"},
        )
        assert_clean(response, f"{method} {path}")

    attempt()
    harness.read_back()
