"""IdentityAuth in-process: the session of a request (cookie, signed or raw bearer token) as
the Identity's get-session resolves it, on SQLite, PostgreSQL and MariaDB; expiry, sign-out,
sliding refresh, rememberMe, the cookie cache (S15, S16, S18) and authorization."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import Identity
from bastion.identity import _session_cookies as session_cookies
from bastion.identity.cookies import sign_cookie_value
from bastion.identity.db import Field, eq
from tests.auth.providers.identity_support import (
    counting_checkouts,
    request,
    sessions_table_gone,
    set_cookie_lines,
    sign_in,
    sign_up,
)
from tests.identity.conftest import SECRET, running
from tests.identity.sessionkit import Clock

TOKEN = "better-auth.session_token"
DATA = "better-auth.session_data"
CACHE = {"cookie_cache": {"enabled": True}}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/identity.db"


@asynccontextmanager
async def identity_and_client(
    database_url: str, **options: Any
) -> AsyncIterator[tuple[Identity, httpx.AsyncClient]]:
    async with running(database_url, **options) as (identity, client):
        yield identity, client


async def get_session(identity: Identity, headers: dict[str, str]) -> Any:
    return await identity.api.get_session(headers=headers)


# -- the credentials, on each database ---------------------------------------------------------


async def test_cookie_session_is_the_get_session_answer(database_url: str) -> None:
    async with identity_and_client(database_url) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        req = request(ada.cookie())
        user = await auth.authenticate_token("", req)
        assert user == await get_session(identity, ada.cookie())
        assert user["user"]["email"] == "ada@example.com"
        assert user["session"]["token"] == ada.raw
        assert "password" not in user["user"]
        assert await auth.authorize_user(user, req) is True
        assert set_cookie_lines(req) == []  # a fresh session: nothing to refresh


@pytest.mark.parametrize("form", ["signed", "raw"])
async def test_bearer_token_signed_or_raw(database_url: str, form: str) -> None:
    """Mastra #19110: the raw token of sign-in is signed here with the Identity's secret."""
    async with identity_and_client(database_url) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        token = ada.signed if form == "signed" else ada.raw
        req = request()
        user = await auth.authenticate_token(token, req)
        assert user is not None and user["user"]["id"] == ada.user_id
        assert user == await get_session(identity, ada.cookie())
        # An URL-encoded signed token (as the cookie holds it) works too.
        if form == "signed":
            encoded = ada.cookies[TOKEN]
            assert "%" in encoded
            assert (await auth.authenticate_token(encoded, request()))["user"]["id"] == ada.user_id


async def test_s16_signed_out_session_is_refused(database_url: str) -> None:
    """S16: after sign-out, the same cookie and the same bearer token give None."""
    async with identity_and_client(database_url) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        assert await auth.authenticate_token("", request(ada.cookie())) is not None
        out = await client.post("/sign-out", headers=ada.cookie(origin="http://localhost:3000"))
        assert out.status_code == 200
        req = request(ada.cookie())
        assert await auth.authenticate_token("", req) is None
        assert await auth.authenticate_token(ada.signed, request()) is None
        assert await auth.authenticate_token(ada.raw, request()) is None
        # The client is told to drop the dead session's cookies.
        assert f"{TOKEN}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax" in set_cookie_lines(req)


async def test_s15_expired_session_is_refused_and_deleted(database_url: str) -> None:
    """S15: past `expiresAt` the session is refused (and its row deleted, as get-session does)."""
    clock = Clock()
    async with identity_and_client(database_url, clock=clock) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        assert await auth.authenticate_token("", request(ada.cookie())) is not None
        clock.advance(days=7, seconds=1)
        req = request(ada.cookie())
        assert await auth.authenticate_token("", req) is None
        assert await identity.db.find_one("session", eq("token", ada.raw)) is None
        assert any(line.startswith(f"{TOKEN}=; Max-Age=0") for line in set_cookie_lines(req))
        assert await auth.authenticate_token(ada.raw, request()) is None


# -- what needs no database ----------------------------------------------------------------


async def test_no_token_and_no_cookie_is_none_without_a_database_call(sqlite_url: str) -> None:
    async with identity_and_client(sqlite_url) as (identity, client):
        await sign_up(client)
        auth = IdentityAuth(identity)
        with counting_checkouts(identity) as checkouts:
            assert await auth.authenticate_token("", request()) is None
            assert await auth.authenticate_token("", request({"cookie": "theme=dark; a=b"})) is None
            assert await auth.authenticate_token("   ", request()) is None
            assert await auth.authenticate_token("Bearer ", request()) is None
        assert checkouts.count == 0


async def test_wrong_secret_signature_is_none_without_a_database_call(sqlite_url: str) -> None:
    async with identity_and_client(sqlite_url) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        forged = sign_cookie_value("another-secret-0123456789abcdef0123", ada.raw)
        with counting_checkouts(identity) as checkouts:
            assert (
                await auth.authenticate_token("", request({"cookie": f"{TOKEN}={forged}"})) is None
            )
            assert await auth.authenticate_token(forged, request()) is None
            # Tampered signature, a truncated one, a JWT handed to the wrong provider.
            assert await auth.authenticate_token(ada.signed[:-5] + "AAAA=", request()) is None
            assert await auth.authenticate_token(ada.signed[:-1], request()) is None
            assert await auth.authenticate_token("eyJhbGciOiJIUzI1NiJ9.e30.c2ln", request()) is None
        assert checkouts.count == 0


async def test_session_cookie_wins_over_the_bearer_token(sqlite_url: str) -> None:
    """As MastraAuthBetterAuth: a session cookie already present is not overwritten."""
    async with identity_and_client(sqlite_url) as (identity, client):
        ada = await sign_up(client)
        bob = await sign_up(client, "bob@example.com")
        auth = IdentityAuth(identity)
        user = await auth.authenticate_token(bob.signed, request(ada.cookie()))
        assert user["user"]["id"] == ada.user_id
        # Other cookies do not stop the token.
        user = await auth.authenticate_token(bob.raw, request({"cookie": "theme=dark"}))
        assert user["user"]["id"] == bob.user_id


async def test_require_signature_refuses_raw_tokens(sqlite_url: str) -> None:
    async with identity_and_client(sqlite_url) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity, require_signature=True)
        assert await auth.authenticate_token(ada.raw, request()) is None
        assert (await auth.authenticate_token(ada.signed, request()))["user"]["id"] == ada.user_id


# -- refresh, rememberMe -------------------------------------------------------------------


async def test_sliding_refresh_reaches_the_client(database_url: str) -> None:
    """Once `update_age` has passed, the session is extended and its new cookie is left in
    `request.state.response_headers` for the pipeline; a bearer client gets no cookie."""
    clock = Clock()
    async with identity_and_client(database_url, clock=clock) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        clock.advance(days=2)
        req = request(ada.cookie())
        user = await auth.authenticate_token("", req)
        assert user is not None
        assert user["session"]["expiresAt"] == clock.now + timedelta(days=7)
        row = await identity.db.find_one("session", eq("token", ada.raw))
        assert row is not None and row["expiresAt"] == clock.now + timedelta(days=7)
        lines = set_cookie_lines(req)
        assert lines == [
            f"{TOKEN}={ada.cookies[TOKEN]}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"
        ]
        again = request(ada.cookie())
        assert await auth.authenticate_token("", again) is not None
        assert set_cookie_lines(again) == []  # extended already

        clock.advance(days=2)
        by_bearer = request()
        assert await auth.authenticate_token(ada.raw, by_bearer) is not None
        row = await identity.db.find_one("session", eq("token", ada.raw))
        assert row is not None and row["expiresAt"] == clock.now + timedelta(days=7)
        assert set_cookie_lines(by_bearer) == []


async def test_remember_me_false_session_lasts_a_day_unrefreshed(sqlite_url: str) -> None:
    clock = Clock()
    async with identity_and_client(sqlite_url, clock=clock) as (identity, client):
        await sign_up(client)
        ada = await sign_in(client, rememberMe=False)
        assert "better-auth.dont_remember" in ada.cookies
        auth = IdentityAuth(identity)
        clock.advance(hours=23)
        req = request(ada.cookie())
        assert await auth.authenticate_token("", req) is not None
        assert set_cookie_lines(req) == []  # never extended
        clock.advance(hours=2)
        assert await auth.authenticate_token("", request(ada.cookie())) is None


# -- the cookie cache --------------------------------------------------------------------------


async def test_cookie_cache_answers_reads_without_the_database(database_url: str) -> None:
    async with identity_and_client(database_url, session=CACHE) as (identity, client):
        ada = await sign_up(client)
        assert DATA in ada.cookies
        auth = IdentityAuth(identity)
        expected = await get_session(identity, ada.cookie())
        async with sessions_table_gone(identity):
            first = await auth.authenticate_token("", request(ada.cookie()))
            second = await auth.authenticate_token("", request(ada.cookie()))
            # A request that changes something is checked against storage (S16): here it
            # cannot be, so it is refused.
            assert await auth.authenticate_token("", request(ada.cookie(), method="POST")) is None
        assert first == second == expected
        # Each call has its own copy: a handler editing its user edits nothing else.
        first["user"]["name"] = "changed"
        third = await auth.authenticate_token("", request(ada.cookie()))
        assert third["user"]["name"] == "Ada"
        await auth.aclose()


async def test_s16_cookie_cache_of_a_revoked_session(sqlite_url: str) -> None:
    """S16: the cookie cache of a session deleted server-side still reads for its lifetime
    (better-auth's trade-off, default max-age 300 s) but cannot write; with
    trust_cookie_cache="never" it reads nothing either."""
    async with identity_and_client(sqlite_url, session=CACHE) as (identity, client):
        ada = await sign_up(client)
        reads, never, always = (
            IdentityAuth(identity),
            IdentityAuth(identity, trust_cookie_cache="never"),
            IdentityAuth(identity, trust_cookie_cache="always"),
        )
        for auth in (reads, never, always):
            for method in ("GET", "POST"):
                assert await auth.authenticate_token("", request(ada.cookie(), method=method))
        await identity.db.delete("session", eq("token", ada.raw))  # revoked elsewhere

        assert await reads.authenticate_token("", request(ada.cookie())) is not None
        assert await reads.authenticate_token("", request(ada.cookie(), method="POST")) is None
        assert await never.authenticate_token("", request(ada.cookie())) is None
        assert await always.authenticate_token("", request(ada.cookie(), method="DELETE"))


async def test_s16_sessions_revoked_by_this_process_end_at_once_despite_the_cache(
    sqlite_url: str,
) -> None:
    """S16: what this process revokes (sign-out, revoke-other-sessions) ends at once, also
    for reads that trust the cookie cache; only another process's revocation waits for
    the cache to expire (above)."""
    async with identity_and_client(sqlite_url, session=CACHE) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity, trust_cookie_cache="always")
        assert await auth.authenticate_token("", request(ada.cookie())) is not None
        out = await client.post("/sign-out", headers=ada.cookie(origin="http://localhost:3000"))
        assert out.status_code == 200
        for method in ("GET", "POST"):
            assert await auth.authenticate_token("", request(ada.cookie(), method=method)) is None

        first = await sign_in(client)
        second = await sign_in(client)
        for session in (first, second):
            assert await auth.authenticate_token("", request(session.cookie())) is not None
        revoked = await client.post(
            "/revoke-other-sessions", headers=second.cookie(origin="http://localhost:3000")
        )
        assert revoked.status_code == 200
        assert await auth.authenticate_token("", request(first.cookie())) is None
        assert await auth.authenticate_token("", request(second.cookie())) is not None
        # A session made after the revocation is not caught by it.
        third = await sign_in(client)
        assert await auth.authenticate_token("", request(third.cookie())) is not None


async def test_s16_remembered_cookie_cache_of_a_revoked_session_cannot_write(
    sqlite_url: str,
) -> None:
    """S16: a POST takes the cookie cache's verification from an earlier request, but still
    asks storage: the session revoked since then is refused, and its cookies cleared."""
    async with identity_and_client(sqlite_url, session=CACHE) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        assert await auth.authenticate_token("", request(ada.cookie())) is not None
        assert await auth.authenticate_token("", request(ada.cookie(), method="POST")) is not None
        await identity.db.delete("session", eq("token", ada.raw))  # revoked elsewhere

        for method in ("POST", "DELETE", "PATCH"):
            req = request(ada.cookie(), method=method)
            assert await auth.authenticate_token("", req) is None
            assert any(line.startswith(f"{TOKEN}=; Max-Age=0") for line in set_cookie_lines(req))
        # A read still trusts the cache for its lifetime (the default "reads").
        assert await auth.authenticate_token("", request(ada.cookie())) is not None


async def test_cookie_cache_is_verified_once_whatever_the_method(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write's cookie cache is verified once, then remembered as a read's is: later writes
    cost one storage read each, and reads none."""
    decoded: list[str] = []
    verify = session_cookies.verify_cookie_cache

    def counting(secret: str, value: str) -> tuple[dict[str, Any], float] | None:
        decoded.append(value)
        return verify(secret, value)

    monkeypatch.setattr(session_cookies, "verify_cookie_cache", counting)
    async with identity_and_client(sqlite_url, session=CACHE) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        expected = await auth.authenticate_token("", request(ada.cookie(), method="POST"))
        assert expected is not None and len(decoded) == 1
        for _ in range(2):
            with counting_checkouts(identity) as checkouts:
                user = await auth.authenticate_token("", request(ada.cookie(), method="POST"))
            assert user == expected and checkouts.count == 1
        with counting_checkouts(identity) as checkouts:
            assert await auth.authenticate_token("", request(ada.cookie())) == expected
        assert checkouts.count == 0
        assert len(decoded) == 1


async def test_a_remembered_cookie_cache_needs_its_own_session_cookie(sqlite_url: str) -> None:
    """The cache remembered for Ada's cookies answers nothing for another session cookie sent
    with the same cache: Bob's cookie is Bob's session, a forged one none."""
    async with identity_and_client(sqlite_url, session=CACHE) as (identity, client):
        ada = await sign_up(client)
        bob = await sign_up(client, "bob@example.com")
        auth = IdentityAuth(identity)
        for method in ("GET", "POST"):
            user = await auth.authenticate_token("", request(ada.cookie(), method=method))
            assert user["user"]["id"] == ada.user_id

            mixed = {"cookie": f"{TOKEN}={bob.cookies[TOKEN]}; {DATA}={ada.cookies[DATA]}"}
            user = await auth.authenticate_token("", request(mixed, method=method))
            assert user["user"]["id"] == bob.user_id

            forged = sign_cookie_value("another-secret-0123456789abcdef0123", ada.raw)
            forged_cookie = {"cookie": f"{TOKEN}={forged}; {DATA}={ada.cookies[DATA]}"}
            assert await auth.authenticate_token("", request(forged_cookie, method=method)) is None
            # The bearer token does not count beside a session cookie, remembered or not.
            user = await auth.authenticate_token(bob.signed, request(ada.cookie(), method=method))
            assert user["user"]["id"] == ada.user_id


async def test_remembered_answer_with_nested_fields_is_each_callers_own(sqlite_url: str) -> None:
    """A handler that edits a JSON or list field of its user edits nothing else."""
    fields = {
        "tags": Field(type="string[]", required=False),
        "prefs": Field(type="json", required=False),
    }
    options = {"session": CACHE, "user": {"additional_fields": fields}}
    async with identity_and_client(sqlite_url, **options) as (identity, client):
        ada = await sign_up(client, tags=["admin"], prefs={"theme": "dark"})
        auth = IdentityAuth(identity)
        first = await auth.authenticate_token("", request(ada.cookie()))
        assert first["user"]["tags"] == ["admin"] and first["user"]["prefs"] == {"theme": "dark"}
        first["user"]["tags"].append("root")
        first["user"]["prefs"]["theme"] = "light"
        second = await auth.authenticate_token("", request(ada.cookie()))
        assert second["user"]["tags"] == ["admin"] and second["user"]["prefs"] == {"theme": "dark"}


async def test_expired_cookie_cache_is_rewritten_for_the_client(sqlite_url: str) -> None:
    clock = Clock()
    async with identity_and_client(sqlite_url, clock=clock, session=CACHE) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        assert await auth.authenticate_token("", request(ada.cookie())) is not None
        clock.advance(seconds=301)  # past the cache's max-age: storage again
        with counting_checkouts(identity) as checkouts:
            req = request(ada.cookie())
            user = await auth.authenticate_token("", req)
        assert user is not None and checkouts.count == 1
        # The stale cache expired, then the new one (a browser keeps the last line of a name).
        expired, line = set_cookie_lines(req)
        assert expired.startswith(f"{DATA}=; Max-Age=0")
        assert line.startswith(f"{DATA}=") and "Max-Age=300" in line
        # The rewritten cache is good for the next 300 s.
        fresh = {**ada.cookies, DATA: line.split(";", 1)[0].split("=", 1)[1]}
        cookie = "; ".join(f"{k}={v}" for k, v in fresh.items())
        with counting_checkouts(identity) as checkouts:
            assert await auth.authenticate_token("", request({"cookie": cookie})) == user
        assert checkouts.count == 0


async def test_bearer_with_cookie_cache_enabled_reads_storage(sqlite_url: str) -> None:
    async with identity_and_client(sqlite_url, session=CACHE) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        req = request()
        user = await auth.authenticate_token(ada.signed, req)
        assert user is not None and user["user"]["id"] == ada.user_id
        assert set_cookie_lines(req) == []  # no cookie cache handed to a bearer client


# -- cookie names ------------------------------------------------------------------------------


async def test_s18_secure_cookie_name_on_https(sqlite_url: str) -> None:
    """S18: on an https base URL only the `__Secure-` session cookie counts."""
    https = {"base_url": "https://auth.example.com", "trusted_origins": ["http://localhost:3000"]}
    async with identity_and_client(sqlite_url, **https) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        assert auth.session_cookie_name == f"__Secure-{TOKEN}"
        assert (await auth.authenticate_token("", request(ada.cookie())))["user"][
            "id"
        ] == ada.user_id
        plain = {"cookie": f"{TOKEN}={ada.cookies['__Secure-' + TOKEN]}"}
        assert await auth.authenticate_token("", request(plain)) is None
        assert (await auth.authenticate_token(ada.raw, request()))["user"]["id"] == ada.user_id


async def test_cookie_prefix_of_the_identity(sqlite_url: str) -> None:
    async with identity_and_client(sqlite_url, advanced={"cookie_prefix": "agents"}) as (
        identity,
        client,
    ):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        assert auth.session_cookie_name == "agents.session_token"
        assert list(ada.cookies) == ["agents.session_token"]
        assert (await auth.authenticate_token("", request(ada.cookie())))["user"][
            "id"
        ] == ada.user_id
        foreign = {"cookie": f"{TOKEN}={ada.cookies['agents.session_token']}"}
        assert await auth.authenticate_token("", request(foreign)) is None


# -- requests that are not Starlette's, failures -----------------------------------------------


async def test_cookie_headers_sent_apart_are_joined(sqlite_url: str) -> None:
    """HTTP/2 may send each cookie in a Cookie header of its own: the session cookie and its
    cache still make one session, read from the cache or confirmed by storage."""
    async with identity_and_client(sqlite_url, session=CACHE) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        for method in ("GET", "POST", "GET"):
            req = request(method=method)
            req.scope["headers"] = [
                (b"cookie", f"{k}={v}".encode()) for k, v in ada.cookies.items()
            ]
            user = await auth.authenticate_token("", req)
            assert user is not None and user["user"]["id"] == ada.user_id
            assert set_cookie_lines(req) == []


async def test_headers_of_other_request_objects(sqlite_url: str) -> None:
    """Mastra #21253: a request whose headers are a plain dict (any case) still works."""
    async with identity_and_client(sqlite_url) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(identity)
        for request_like in (
            SimpleNamespace(headers={"Cookie": ada.cookie_header}, method="GET"),
            {"COOKIE": ada.cookie_header},
            SimpleNamespace(headers={"cookie": [ada.cookie_header]}),
        ):
            user = await auth.authenticate_token("", request_like)  # type: ignore[arg-type]
            assert user is not None and user["user"]["id"] == ada.user_id
        assert await auth.authenticate_token("", object()) is None  # type: ignore[arg-type]


async def test_storage_failure_is_none_and_the_token_is_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that fails (here: never migrated) gives None, logged without the token."""
    identity = Identity(
        env={}, secret=SECRET, database=f"sqlite:///{tmp_path}/empty.db", plugins=[]
    )
    try:
        auth = IdentityAuth(identity)
        token = "Q" * 32
        cookie = {"cookie": f"{TOKEN}={sign_cookie_value(SECRET, token)}"}
        with caplog.at_level(logging.WARNING, logger="bastion.auth.identity"):
            assert await auth.authenticate_token("", request(cookie)) is None
            assert await auth.authenticate_token(token, request()) is None
        assert len(caplog.records) == 2
        assert all(token not in record.getMessage() for record in caplog.records)
        assert all(record.exc_info is None for record in caplog.records)
    finally:
        await identity.close()


async def test_secondary_storage_sessions(sqlite_url: str) -> None:
    """Sessions kept in secondary storage are found there (the Store's own lookup)."""
    from bastion.identity.storage import MemoryStorage

    async with identity_and_client(sqlite_url, secondary_storage=MemoryStorage()) as (
        identity,
        client,
    ):
        ada = await sign_up(client)
        assert await identity.db.find_one("session", eq("token", ada.raw)) is None
        auth = IdentityAuth(identity)
        assert (await auth.authenticate_token("", request(ada.cookie())))["user"][
            "id"
        ] == ada.user_id
        assert (await auth.authenticate_token(ada.raw, request()))["user"]["id"] == ada.user_id


# -- authorization -------------------------------------------------------------------------


async def test_default_authorization_needs_a_session_id_and_a_user_id(sqlite_url: str) -> None:
    async with identity_and_client(sqlite_url) as (identity, _):
        auth = IdentityAuth(identity)
        req = request()
        assert await auth.authorize_user({"session": {"id": "s"}, "user": {"id": "u"}}, req)
        for user in (
            {"session": {"id": ""}, "user": {"id": "u"}},
            {"session": {"id": "s"}, "user": {}},
            {"session": None, "user": {"id": "u"}},
            {"id": "u"},
            "u",
            None,
        ):
            assert await auth.authorize_user(user, req) is False, user


async def test_custom_authorization_verified_email_only(sqlite_url: str) -> None:
    async with identity_and_client(sqlite_url) as (identity, client):
        ada = await sign_up(client)
        auth = IdentityAuth(
            identity, authorize_user=lambda user, request: user["user"]["emailVerified"]
        )
        req = request(ada.cookie())
        user = await auth.authenticate_token("", req)
        assert user["user"]["emailVerified"] is False
        assert await auth.authorize_user(user, req) is False
        await identity.db.update("user", eq("id", ada.user_id), {"emailVerified": True})
        user = await auth.authenticate_token("", req)
        assert await auth.authorize_user(user, req) is True


async def test_options_are_checked(sqlite_url: str) -> None:
    async with identity_and_client(sqlite_url) as (identity, _):
        with pytest.raises(TypeError):
            IdentityAuth()
        with pytest.raises(TypeError):
            IdentityAuth(identity, url="http://127.0.0.1:1/api/auth")
        with pytest.raises(TypeError, match="cache_ttl"):
            IdentityAuth(identity, cache_ttl=3)
        with pytest.raises(ValueError):
            IdentityAuth(identity, trust_cookie_cache="sometimes")  # type: ignore[arg-type]
        auth = IdentityAuth(identity)
        assert auth.identity is identity and auth.name == "identity"
        await auth.aclose()
