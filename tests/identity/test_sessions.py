"""Sessions over HTTP: cookies, get-session, bearer, sign-out, refresh and expiry, the cookie
cache, listing and revoking (spec §5, errata 7 and 9; security S14 to S18), on SQLite,
PostgreSQL and MariaDB."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.routing import Mount, Route

from bastion.identity import APIError, SessionResult
from bastion.identity import bearer as bearer_plugin
from bastion.identity.cookies import sign_cookie_value
from bastion.identity.db import Field, eq
from tests.identity.conftest import SECRET, MakeIdentity
from tests.identity.sessionkit import (
    DATA_NAME,
    PASSWORD,
    REMEMBER_NAME,
    TOKEN_NAME,
    Browser,
    Clock,
    bearer,
    cookie_value,
    get_session,
    is_expired,
    serve,
    set_cookie_lines,
    set_cookies,
    sign_in,
    sign_up,
)

CACHE = {"cookie_cache": {"enabled": True}}
ATTRIBUTES = "Path=/; HttpOnly; SameSite=Lax"
# user.name is varchar(255) on MySQL, as better-auth makes it; image is text everywhere.
BIG_IMAGE = "https://example.com/avatar.png?" + "a" * 10_000
EXPIRED = {
    name: f"{name}=; Max-Age=0; {ATTRIBUTES}" for name in (TOKEN_NAME, DATA_NAME, REMEMBER_NAME)
}


def signed(token: str) -> str:
    return sign_cookie_value(SECRET, token)


def token_cookie(token: str) -> dict[str, str]:
    return {"cookie": f"{TOKEN_NAME}={signed(token)}"}


async def session_row(identity: Any, token: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = await identity.db.find_one("session", eq("token", token))
    return row


# -- the cookies (S18) -------------------------------------------------------------------------


async def test_session_cookie_attributes(make_identity: MakeIdentity) -> None:
    """S18: the signed session_token cookie, exactly as better-auth writes it over http:
    `Max-Age=604800; Path=/; HttpOnly; SameSite=Lax`, well under 4096 bytes."""
    async with serve(make_identity) as (_, client):
        response = await sign_up(client)
        token = response.json()["token"]
        lines = set_cookie_lines(response)
        assert lines == [f"{TOKEN_NAME}={signed(token)}; Max-Age=604800; {ATTRIBUTES}"]
        assert len(lines[0].encode()) < 4096


async def test_https_base_url_gives_secure_prefixed_cookies(make_identity: MakeIdentity) -> None:
    """S18: on an https base URL every session cookie is `__Secure-` prefixed and `Secure`,
    and only the prefixed name is read back."""
    async with serve(make_identity, base_url="https://auth.example.com", session=CACHE) as (
        _,
        client,
    ):
        browser = Browser()
        response = await sign_up(client, browser)
        token = response.json()["token"]
        cookies = set_cookies(response)
        secure_token = f"__Secure-{TOKEN_NAME}"
        secure_data = f"__Secure-{DATA_NAME}"
        assert set(cookies) == {secure_token, secure_data}
        assert cookies[secure_token] == (
            f"{secure_token}={signed(token)}; Max-Age=604800; Path=/; HttpOnly; Secure; "
            "SameSite=Lax"
        )
        assert re.fullmatch(
            rf"{re.escape(secure_data)}=[A-Za-z0-9_-]+; Max-Age=300; Path=/; HttpOnly; Secure; "
            "SameSite=Lax",
            cookies[secure_data],
        )
        assert all(len(line.encode()) < 4096 for line in cookies.values())

        assert (await get_session(client, browser)).json()["session"]["token"] == token
        unprefixed = await client.get("/get-session", headers=token_cookie(token))
        assert unprefixed.json() is None


@pytest.mark.parametrize(
    ("options", "secure"),
    [
        ({"base_url": None, "production": True}, True),
        ({"base_url": None}, False),
        ({"base_url": "http://localhost:3000", "production": True}, False),
        (
            {"base_url": "https://auth.example.com", "advanced": {"use_secure_cookies": False}},
            False,
        ),
        ({"base_url": "http://localhost:3000", "advanced": {"use_secure_cookies": True}}, True),
    ],
    ids=["production", "development", "http-base-url", "option-off", "option-on"],
)
async def test_which_cookies_are_secure(
    make_identity: MakeIdentity, options: dict[str, Any], secure: bool
) -> None:
    """S18, decided as better-auth decides (spec §5.1): `use_secure_cookies`, else the
    configured base URL's scheme, else production. Not the request's scheme: in production
    behind a TLS-terminating proxy the request is http and the cookies must still be Secure."""
    async with serve(make_identity, **options) as (_, client):
        response = await sign_up(client)
        assert client.base_url.scheme == "http"
        (line,) = set_cookie_lines(response)
        assert line.startswith("__Secure-better-auth.session_token=") is secure
        assert ("; Secure;" in line) is secure


async def test_big_cookie_cache_is_chunked_under_4096_bytes_and_read_back(
    make_identity: MakeIdentity,
) -> None:
    """S18: a cookie cache too big for one cookie is split into `session_data.N` chunks,
    each whole `Set-Cookie` line under 4096 bytes (better-auth keeps each under 4050, below
    Safari's limit), and get-session reassembles it without the database (spec §5.4)."""
    async with serve(make_identity, session=CACHE) as (identity, client):
        browser = Browser()
        response = await sign_up(client, browser, image=BIG_IMAGE)
        cookies = set_cookies(response)
        chunks = sorted(name for name in cookies if name.startswith(f"{DATA_NAME}."))
        assert len(chunks) >= 3
        assert chunks == [f"{DATA_NAME}.{i}" for i in range(len(chunks))]
        assert DATA_NAME not in cookies
        for line in cookies.values():
            assert len(line.encode()) <= 4050

        await identity.db.delete("session", eq("token", response.json()["token"]))
        answer = await get_session(client, browser)
        assert answer.json()["user"]["image"] == BIG_IMAGE
        assert set_cookie_lines(answer) == []


async def test_cookie_cache_shrinking_expires_leftover_chunks(
    make_identity: MakeIdentity,
) -> None:
    """A cache that was chunked and now fits in one cookie expires its old chunks, so the
    browser cannot join stale pieces (spec §5.4)."""
    async with serve(make_identity, session=CACHE) as (_, client):
        browser = Browser()
        await sign_up(client, browser, image=BIG_IMAGE)
        old_chunks = {name for name in browser.jar if name.startswith(f"{DATA_NAME}.")}
        assert old_chunks
        update = browser.absorb(
            await client.post("/update-user", json={"image": None}, headers=browser.headers())
        )
        assert update.status_code == 200, update.text
        cookies = set_cookies(update)
        for name in old_chunks:
            assert is_expired(cookies[name])
        assert not is_expired(cookies[DATA_NAME])
        assert set(browser.jar) == {TOKEN_NAME, DATA_NAME}
        assert (await get_session(client, browser)).json()["user"]["image"] is None


# -- get-session: what is not a session (errata 7) ---------------------------------------------


async def test_get_session_without_cookie_is_null(make_identity: MakeIdentity) -> None:
    async with serve(make_identity) as (_, client):
        response = await client.get("/get-session")
        assert response.status_code == 200
        assert response.json() is None
        assert set_cookie_lines(response) == []
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("{token}", id="unsigned"),
        pytest.param("{token}.{bad_signature}", id="tampered-signature"),
        pytest.param("{other_token}.{signature}", id="tampered-token"),
        pytest.param("garbage", id="garbage"),
        pytest.param("", id="empty"),
    ],
)
async def test_get_session_with_a_badly_signed_cookie_is_null_and_touches_nothing(
    make_identity: MakeIdentity, value: str
) -> None:
    """A session_token that is not validly signed is no cookie at all: `null`, and no
    Set-Cookie (errata 7: a garbage cookie clears nothing)."""
    async with serve(make_identity) as (_, client):
        token = (await sign_up(client)).json()["token"]
        signature = signed(token).split(".", 1)[1]
        cookie = value.format(
            token=token,
            signature=signature,
            bad_signature=signature.replace(signature[3], "A" if signature[3] != "A" else "B"),
            other_token=token[::-1],
        )
        response = await client.get(
            "/get-session",
            headers={"cookie": f"{TOKEN_NAME}={cookie}; {DATA_NAME}=x; {REMEMBER_NAME}=y"},
        )
        assert response.status_code == 200
        assert response.json() is None
        assert set_cookie_lines(response) == []


async def test_signed_cookie_with_unknown_token_expires_the_three_cookies(
    make_identity: MakeIdentity,
) -> None:
    """Errata 7: a correctly signed cookie whose token is unknown answers `null` and expires
    session_token, session_data and dont_remember."""
    async with serve(make_identity) as (_, client):
        response = await client.get("/get-session", headers=token_cookie("x" * 32))
        assert response.status_code == 200
        assert response.json() is None
        assert set_cookies(response) == EXPIRED


# -- bearer (spec §5.5) ------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["raw", "signed", "url-encoded", "lowercase-scheme"])
async def test_bearer_token_forms(make_identity: MakeIdentity, form: str) -> None:
    """`Authorization: Bearer` with the raw token, with `token.sig` (what set-auth-token
    gives), or with `token.sig` URL-encoded (the cookie's value) all stand for the cookie."""
    async with serve(make_identity) as (_, client):
        response = await sign_up(client)
        token = response.json()["token"]
        auth_token = response.headers["set-auth-token"]
        assert auth_token == unquote(signed(token))
        header = {
            "raw": f"Bearer {token}",
            "signed": f"Bearer {auth_token}",
            "url-encoded": f"Bearer {quote(auth_token, safe='')}",
            "lowercase-scheme": f"bearer {auth_token}",
        }[form]
        answer = await client.get("/get-session", headers={"authorization": header})
        assert answer.json()["session"]["token"] == token
        listed = await client.get("/list-sessions", headers={"authorization": header})
        assert [s["token"] for s in listed.json()] == [token]


async def test_bearer_garbage(make_identity: MakeIdentity) -> None:
    """Errata 7: `Bearer <garbage>` answers `null`; a raw garbage token is signed and looked
    up like any raw token, so the three cookies are expired. A badly signed `x.sig` or
    another scheme is ignored (nothing expired); no bearer means 401 where a session is
    required."""
    async with serve(make_identity) as (_, client):
        await sign_up(client)
        raw = await client.get("/get-session", headers=bearer("garbage"))
        assert raw.json() is None
        assert set_cookies(raw) == EXPIRED
        for header in ("Bearer abc.def", "Bearer " + "x" * 32 + "." + "A" * 43 + "=", "Basic x"):
            answer = await client.get("/get-session", headers={"authorization": header})
            assert answer.json() is None
            assert set_cookie_lines(answer) == []
        assert (await client.get("/list-sessions", headers=bearer("garbage"))).status_code == 401


async def test_bearer_require_signature_refuses_raw_tokens(make_identity: MakeIdentity) -> None:
    async with serve(make_identity, plugins=[bearer_plugin(require_signature=True)]) as (
        _,
        client,
    ):
        response = await sign_up(client)
        token = response.json()["token"]
        assert (await client.get("/get-session", headers=bearer(token))).json() is None
        signed_answer = await client.get(
            "/get-session", headers=bearer(response.headers["set-auth-token"])
        )
        assert signed_answer.json()["session"]["token"] == token


async def test_set_auth_token_only_on_responses_that_set_a_session(
    make_identity: MakeIdentity,
) -> None:
    """The bearer after-hook adds `set-auth-token` and `Access-Control-Expose-Headers` when
    the response sets the session cookie (sign-up, sign-in, a refresh), never otherwise."""
    clock = Clock()
    async with serve(make_identity, clock=clock) as (_, client):
        for response in (await sign_up(client), await sign_in(client)):
            token = response.json()["token"]
            cookie = cookie_value(set_cookies(response)[TOKEN_NAME])
            assert response.headers["set-auth-token"] == unquote(cookie)
            assert response.headers["set-auth-token"].split(".")[0] == token
            assert response.headers["access-control-expose-headers"] == "set-auth-token"
        auth = bearer(token)

        quiet = [
            await client.get("/get-session", headers=auth),
            await client.get("/list-sessions", headers=auth),
            await client.get("/get-session"),
            await client.get("/get-session", headers=bearer("unknown-token")),
            await client.get("/ok", headers=auth),
        ]
        for response in quiet:
            assert response.status_code == 200
            assert "set-auth-token" not in response.headers
            assert "access-control-expose-headers" not in response.headers

        clock.advance(days=1, seconds=1)
        refreshed = await client.get("/get-session", headers=auth)
        assert refreshed.headers["set-auth-token"].split(".")[0] == token
        assert refreshed.headers["access-control-expose-headers"] == "set-auth-token"

        signed_out = await client.post("/sign-out", headers=auth)
        assert signed_out.status_code == 200
        assert "set-auth-token" not in signed_out.headers


# -- sign-out and revocation (S16) -------------------------------------------------------------


async def test_sign_out_deletes_the_session_server_side(make_identity: MakeIdentity) -> None:
    """S16: sign-out deletes the session row and expires the cookies; the old cookie and
    the old bearer token, replayed, get `null` from get-session and 401 elsewhere."""
    async with serve(make_identity) as (identity, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        stolen = browser.copy()
        assert await session_row(identity, token) is not None

        out = browser.absorb(await client.post("/sign-out", headers=browser.headers()))
        assert out.status_code == 200
        assert out.json() == {"success": True}
        assert set_cookies(out) == EXPIRED
        assert browser.jar == {}
        assert await session_row(identity, token) is None

        for headers in (stolen.headers(), bearer(token)):
            assert (await client.get("/get-session", headers=headers)).json() is None
            assert (await client.get("/list-sessions", headers=headers)).status_code == 401
            again = await client.post("/revoke-sessions", headers=headers)
            assert again.status_code == 401
            update = await client.post("/update-user", json={"name": "Eve"}, headers=headers)
            assert update.status_code == 401


async def test_sign_out_with_a_bearer_token(make_identity: MakeIdentity) -> None:
    """S16: a client without cookies signs out with its bearer token."""
    async with serve(make_identity) as (identity, client):
        token = (await sign_up(client)).json()["token"]
        out = await client.post("/sign-out", headers=bearer(token))
        assert out.json() == {"success": True}
        assert await session_row(identity, token) is None
        assert (await client.get("/get-session", headers=bearer(token))).json() is None


async def test_sign_out_with_the_cookie_cache_on(make_identity: MakeIdentity) -> None:
    """S16 with the cookie cache: an old session_token + session_data pair replayed after
    sign-out is refused at once by every endpoint that acts or lists (list-sessions is
    `fresh`, revoke-* are `sensitive`, update-* change state): none trusts the cache.
    get-session alone answers from the signed cache, and only within its lifetime (the
    revocation propagation window, `cookie_cache.max_age`, 300 s): never with
    `?disableCookieCache`, and not once the cache has expired."""
    clock = Clock()
    async with serve(make_identity, clock=clock, session=CACHE) as (identity, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        assert DATA_NAME in browser.jar
        stolen = browser.copy()
        out = browser.absorb(await client.post("/sign-out", headers=browser.headers()))
        assert out.status_code == 200
        assert browser.jar == {}
        assert await session_row(identity, token) is None

        replay = stolen.headers()
        assert (await client.get("/list-sessions", headers=replay)).status_code == 401
        for path in ("/revoke-sessions", "/revoke-other-sessions", "/update-session"):
            assert (await client.post(path, json={}, headers=replay)).status_code == 401, path
        revoke_one = await client.post("/revoke-session", json={"token": token}, headers=replay)
        assert revoke_one.status_code == 401
        update = await client.post("/update-user", json={"name": "Eve"}, headers=replay)
        assert update.status_code == 401
        fresh = await client.get(
            "/get-session", params={"disableCookieCache": "true"}, headers=replay
        )
        assert fresh.json() is None

        window = await client.get("/get-session", headers=replay)
        assert window.json()["session"]["token"] == token  # the documented window
        clock.advance(seconds=301)
        assert (await client.get("/get-session", headers=replay)).json() is None


async def test_revocation_is_seen_through_the_cache_by_sensitive_endpoints(
    make_identity: MakeIdentity,
) -> None:
    """S16/S17: a session revoked from another device cannot list or revoke sessions with
    its still-valid cookie cache. A live session's cache is checked against storage without
    a cookie being written, so the answers stay better-auth's."""
    async with serve(make_identity, session=CACHE) as (_, client):
        laptop, phone = Browser(), Browser()
        await sign_up(client, laptop)
        await sign_in(client, phone)
        revoked = await client.post("/revoke-other-sessions", headers=laptop.headers())
        assert revoked.json() == {"status": True}
        assert (await client.get("/list-sessions", headers=phone.headers())).status_code == 401
        again = await client.post("/revoke-sessions", headers=phone.headers())
        assert again.status_code == 401
        listed = await client.get("/list-sessions", headers=laptop.headers())
        assert len(listed.json()) == 1
        # Checked against storage, answered as from the cache: no cookie rewritten.
        assert set_cookie_lines(listed) == []
        nothing = await client.post("/update-user", json={}, headers=laptop.headers())
        assert nothing.status_code == 400
        assert set_cookie_lines(nothing) == []


# -- lifetime: refresh and expiry (S15) --------------------------------------------------------


async def test_sliding_refresh_after_update_age(make_identity: MakeIdentity) -> None:
    """S15 (idle timeout): a session is extended to now + 7 d once it was last extended at
    least update_age (1 d) ago, in the database and in a new cookie; not before."""
    clock = Clock()
    async with serve(make_identity, clock=clock) as (identity, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        created = clock.now
        row = await session_row(identity, token)
        assert row is not None
        assert row["expiresAt"] == created + timedelta(days=7)

        clock.advance(hours=23, minutes=59)
        early = await get_session(client, browser)
        assert set_cookie_lines(early) == []
        assert early.json()["session"]["expiresAt"] == "2026-03-09T09:00:00.000Z"
        row = await session_row(identity, token)
        assert row is not None
        assert row["expiresAt"] == created + timedelta(days=7)

        clock.advance(minutes=1)
        late = await get_session(client, browser)
        assert set_cookies(late) == {
            TOKEN_NAME: f"{TOKEN_NAME}={signed(token)}; Max-Age=604800; {ATTRIBUTES}"
        }
        assert late.json()["session"]["expiresAt"] == "2026-03-10T09:00:00.000Z"
        assert late.json()["session"]["updatedAt"] == "2026-03-03T09:00:00.000Z"
        row = await session_row(identity, token)
        assert row is not None
        assert row["expiresAt"] == clock.now + timedelta(days=7)
        assert row["updatedAt"] == clock.now

        disabled = await get_session(client, browser, disableRefresh="true")
        assert set_cookie_lines(disabled) == []


async def test_expired_session_is_refused_and_deleted(make_identity: MakeIdentity) -> None:
    """S15 (absolute expiry): past its expiresAt a session is refused by the server, whatever
    the cookie says; its row is deleted and the cookies expired."""
    clock = Clock()
    async with serve(make_identity, clock=clock) as (identity, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        stolen = browser.copy()
        clock.advance(days=7, milliseconds=1)
        response = await get_session(client, browser)
        assert response.json() is None
        assert set_cookies(response) == EXPIRED
        assert await session_row(identity, token) is None
        assert (await client.get("/list-sessions", headers=stolen.headers())).status_code == 401
        assert (await client.get("/get-session", headers=bearer(token))).json() is None


async def test_session_can_be_kept_alive_only_by_use(make_identity: MakeIdentity) -> None:
    """S15: used every 2 days a session lives on; left alone for 7 days it is gone."""
    clock = Clock()
    async with serve(make_identity, clock=clock) as (_, client):
        browser = Browser()
        await sign_up(client, browser)
        for _ in range(5):
            clock.advance(days=2)
            assert (await get_session(client, browser)).json() is not None
        clock.advance(days=7, seconds=1)
        assert (await get_session(client, browser)).json() is None


# -- rememberMe: false (errata 9) --------------------------------------------------------------


async def test_remember_me_false(make_identity: MakeIdentity) -> None:
    """rememberMe false: the session expires in 1 day, its cookie has no Max-Age, a signed
    dont_remember cookie is set, and get-session never refreshes it."""
    clock = Clock()
    async with serve(make_identity, clock=clock) as (identity, client):
        await sign_up(client)
        browser = Browser()
        response = await sign_in(client, browser, remember_me=False)
        token = response.json()["token"]
        assert set_cookies(response) == {
            TOKEN_NAME: f"{TOKEN_NAME}={signed(token)}; {ATTRIBUTES}",
            REMEMBER_NAME: f"{REMEMBER_NAME}={signed('true')}; {ATTRIBUTES}",
        }
        row = await session_row(identity, token)
        assert row is not None
        assert row["expiresAt"] == clock.now + timedelta(days=1)

        clock.advance(hours=23)
        kept = await get_session(client, browser)
        assert kept.json()["session"]["token"] == token
        assert set_cookie_lines(kept) == []
        clock.advance(hours=1, seconds=1)
        assert (await get_session(client, browser)).json() is None


async def test_remember_me_false_session_without_its_dont_remember_cookie(
    make_identity: MakeIdentity,
) -> None:
    """Errata 9: used without its dont_remember cookie (here through bearer) a rememberMe
    false session is refreshed at once to the full lifetime, with a Max-Age=604800 cookie."""
    clock = Clock()
    async with serve(make_identity, clock=clock) as (identity, client):
        await sign_up(client)
        token = (await sign_in(client, remember_me=False)).json()["token"]
        response = await client.get("/get-session", headers=bearer(token))
        assert response.json()["session"]["expiresAt"] == "2026-03-09T09:00:00.000Z"
        assert set_cookies(response) == {
            TOKEN_NAME: f"{TOKEN_NAME}={signed(token)}; Max-Age=604800; {ATTRIBUTES}"
        }
        row = await session_row(identity, token)
        assert row is not None
        assert row["expiresAt"] == clock.now + timedelta(days=7)


async def test_remembered_sign_in_expires_an_old_dont_remember_cookie(
    make_identity: MakeIdentity,
) -> None:
    """Signing in with rememberMe (the default) while a dont_remember cookie is left from an
    earlier sign-in expires it, as better-auth's setSessionCookie does; otherwise the new
    session would never be refreshed."""
    clock = Clock()
    async with serve(make_identity, clock=clock) as (_, client):
        await sign_up(client)
        browser = Browser()
        await sign_in(client, browser, remember_me=False)
        assert REMEMBER_NAME in browser.jar
        response = await sign_in(client, browser)
        assert set_cookies(response)[REMEMBER_NAME] == EXPIRED[REMEMBER_NAME]
        assert REMEMBER_NAME not in browser.jar
        clock.advance(days=1)
        refreshed = await get_session(client, browser)
        assert TOKEN_NAME in set_cookies(refreshed)


async def test_remember_me_false_cookie_cache_is_short_lived(make_identity: MakeIdentity) -> None:
    """With rememberMe false the session_data cookie has no Max-Age and the cache inside it
    lasts 60 s (better-auth's value), not cookie_cache.max_age."""
    clock = Clock()
    async with serve(make_identity, clock=clock, session=CACHE) as (identity, client):
        await sign_up(client)
        browser = Browser()
        response = await sign_in(client, browser, remember_me=False)
        line = set_cookies(response)[DATA_NAME]
        assert "Max-Age" not in line
        await identity.db.delete("session", eq("token", response.json()["token"]))
        clock.advance(seconds=59)
        assert (await get_session(client, browser)).json() is not None
        clock.advance(seconds=2)
        assert (await get_session(client, browser)).json() is None


# -- list, revoke (S17) ------------------------------------------------------------------------


async def test_list_and_revoke_sessions(make_identity: MakeIdentity) -> None:
    """S17: users list their sessions and revoke one, the others, or all; revoke-session
    only touches the caller's own sessions."""
    clock = Clock()
    async with serve(make_identity, clock=clock) as (identity, client):
        first, second, third = Browser(), Browser(), Browser()
        t1 = (await sign_up(client, first)).json()["token"]
        clock.advance(seconds=1)
        t2 = (await sign_in(client, second)).json()["token"]
        clock.advance(seconds=1)
        t3 = (await sign_in(client, third)).json()["token"]
        mallory = Browser()
        tm = (await sign_up(client, mallory, email="mallory@example.com")).json()["token"]

        listed = await client.get("/list-sessions", headers=first.headers())
        assert listed.status_code == 200
        sessions = listed.json()
        assert [s["token"] for s in sessions] == [t1, t2, t3]
        assert set(sessions[0]) == {
            "id",
            "expiresAt",
            "token",
            "createdAt",
            "updatedAt",
            "ipAddress",
            "userAgent",
            "userId",
        }

        # Someone else's token: answered the same, and nothing happens to it.
        other = await client.post("/revoke-session", json={"token": tm}, headers=first.headers())
        assert other.json() == {"status": True}
        assert await session_row(identity, tm) is not None
        theirs = await client.post("/revoke-session", json={"token": t1}, headers=mallory.headers())
        assert theirs.json() == {"status": True}
        assert await session_row(identity, t1) is not None

        one = await client.post("/revoke-session", json={"token": t2}, headers=first.headers())
        assert one.json() == {"status": True}
        assert set_cookie_lines(one) == []
        assert await session_row(identity, t2) is None
        assert (await get_session(client, second)).json() is None

        second = Browser()
        t4 = (await sign_in(client, second)).json()["token"]
        others = await client.post("/revoke-other-sessions", headers=first.headers())
        assert others.json() == {"status": True}
        assert set_cookie_lines(others) == []
        assert [
            s["token"] for s in (await client.get("/list-sessions", headers=first.headers())).json()
        ] == [t1]
        for gone in (t3, t4):
            assert await session_row(identity, gone) is None

        t5 = (await sign_in(client, Browser())).json()["token"]
        everything = first.absorb(await client.post("/revoke-sessions", headers=first.headers()))
        assert everything.json() == {"status": True}
        assert set_cookies(everything)[TOKEN_NAME] == EXPIRED[TOKEN_NAME]
        for gone in (t1, t5):
            assert await session_row(identity, gone) is None
        assert await session_row(identity, tm) is not None  # another user's session


async def test_revoking_the_current_session_expires_its_cookies(
    make_identity: MakeIdentity,
) -> None:
    """revoke-session with the caller's own token expires its cookies, as better-auth does."""
    async with serve(make_identity) as (identity, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        response = await client.post(
            "/revoke-session", json={"token": token}, headers=browser.headers()
        )
        assert response.json() == {"status": True}
        assert set_cookies(response) == EXPIRED
        assert await session_row(identity, token) is None


async def test_list_sessions_needs_a_fresh_session(make_identity: MakeIdentity) -> None:
    """list-sessions is `fresh`: a session created fresh_age (1 d) ago or more gets
    403 SESSION_NOT_FRESH; `fresh_age: 0` turns the check off."""
    clock = Clock()
    async with serve(make_identity, clock=clock) as (_, client):
        browser = Browser()
        await sign_up(client, browser)
        clock.advance(hours=23, minutes=59)
        assert (await client.get("/list-sessions", headers=browser.headers())).status_code == 200
        clock.advance(minutes=1)
        stale = await client.get("/list-sessions", headers=browser.headers())
        assert stale.status_code == 403
        assert stale.json() == {"message": "Session is not fresh", "code": "SESSION_NOT_FRESH"}
    async with serve(make_identity, clock=clock, session={"fresh_age": 0}) as (_, client):
        browser = Browser()
        await sign_up(client, browser, email="bob@example.com")  # same database
        clock.advance(days=6)
        assert (await client.get("/list-sessions", headers=browser.headers())).status_code == 200


async def test_list_sessions_leaves_out_expired_ones(make_identity: MakeIdentity) -> None:
    clock = Clock()
    async with serve(make_identity, clock=clock, session={"fresh_age": 0}) as (_, client):
        await sign_up(client)
        short = (await sign_in(client, remember_me=False)).json()["token"]
        clock.advance(hours=12)
        browser = Browser()
        long = (await sign_in(client, browser)).json()["token"]
        clock.advance(hours=13)
        listed = await client.get("/list-sessions", headers=browser.headers())
        tokens = [s["token"] for s in listed.json()]
        assert long in tokens
        assert short not in tokens


# -- update-session ----------------------------------------------------------------------------


async def test_update_session_without_fields(make_identity: MakeIdentity) -> None:
    """`No fields to update`, with no code, as better-auth's APIError.fromStatus sends it."""
    async with serve(make_identity) as (_, client):
        browser = Browser()
        await sign_up(client, browser)
        for body in ({}, {"token": "x", "userId": "y", "expiresAt": "2099-01-01"}):
            response = await client.post("/update-session", json=body, headers=browser.headers())
            assert response.status_code == 400
            assert response.json() == {"message": "No fields to update"}


async def test_update_session_refreshes_the_cookie_cache(make_identity: MakeIdentity) -> None:
    """An additional session field set by update-session shows in get-session at once,
    the cookie cache included (better-auth re-sets the session cookies)."""
    fields = {"theme": Field(type="string", required=False)}
    async with serve(
        make_identity, session={"cookie_cache": {"enabled": True}, "additional_fields": fields}
    ) as (_, client):
        browser = Browser()
        await sign_up(client, browser)
        response = browser.absorb(
            await client.post("/update-session", json={"theme": "dark"}, headers=browser.headers())
        )
        assert response.status_code == 200, response.text
        assert response.json()["session"]["theme"] == "dark"
        assert (await get_session(client, browser)).json()["session"]["theme"] == "dark"


# -- the cookie cache --------------------------------------------------------------------------


async def test_cookie_cache_answers_without_the_database(make_identity: MakeIdentity) -> None:
    """With the cookie cache on, get-session answers from the signed session_data cookie:
    with the session row deleted it still answers, until `?disableCookieCache=true` goes to
    the database, finds nothing and expires the cookies."""
    async with serve(make_identity, session=CACHE) as (identity, client):
        browser = Browser()
        response = await sign_up(client, browser)
        token = response.json()["token"]
        assert DATA_NAME in set_cookies(response)
        assert await identity.db.delete("session", eq("token", token))

        cached = await get_session(client, browser)
        assert cached.json()["session"]["token"] == token
        assert cached.json()["user"]["email"] == "ada@example.com"
        assert set_cookie_lines(cached) == []

        direct = await get_session(client, browser, disableCookieCache="true")
        assert direct.json() is None
        assert set_cookies(direct) == EXPIRED


async def test_cookie_cache_in_process(make_identity: MakeIdentity) -> None:
    """`identity.api.get_session` reads the same cookies (and the cache) as HTTP does."""
    async with serve(make_identity, session=CACHE) as (identity, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        await identity.db.delete("session", eq("token", token))
        found = await identity.api.get_session(headers={"cookie": browser.cookie_header()})
        assert found["session"]["token"] == token
        missing = await identity.api.get_session(
            headers={"cookie": browser.cookie_header()}, query={"disableCookieCache": "true"}
        )
        assert missing is None
        with pytest.raises(APIError) as refused:
            await identity.api.list_sessions(headers={"cookie": browser.cookie_header()})
        assert refused.value.status == 401


@pytest.mark.parametrize("tamper", ["flip", "other-session", "expired"])
async def test_tampered_or_foreign_cookie_cache_is_ignored(
    make_identity: MakeIdentity, tamper: str
) -> None:
    """A session_data cookie with a bad signature, one minted for another session, or one
    past its lifetime is not believed: get-session goes to the database (here: no row, so
    `null`)."""
    clock = Clock()
    async with serve(make_identity, clock=clock, session=CACHE) as (identity, client):
        browser, other = Browser(), Browser()
        token = (await sign_up(client, browser)).json()["token"]
        await sign_in(client, other)
        data = browser.jar[DATA_NAME]
        if tamper == "flip":
            middle = len(data) // 2
            browser.jar[DATA_NAME] = (
                data[:middle] + ("A" if data[middle] != "A" else "B") + data[middle + 1 :]
            )
        elif tamper == "other-session":
            browser.jar[DATA_NAME] = other.jar[DATA_NAME]
        else:
            clock.advance(seconds=301)
        await identity.db.delete("session", eq("token", token))
        response = await get_session(client, browser)
        assert response.json() is None
        assert is_expired(set_cookies(response)[DATA_NAME])


async def test_tampered_cookie_cache_is_replaced_from_the_database(
    make_identity: MakeIdentity,
) -> None:
    async with serve(make_identity, session=CACHE) as (_, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        browser.jar[DATA_NAME] = browser.jar[DATA_NAME][:-4] + "AAAA"
        response = await get_session(client, browser)
        assert response.json()["session"]["token"] == token
        assert not is_expired(set_cookies(response)[DATA_NAME])
        assert browser.jar[DATA_NAME] != "AAAA"


# -- tokens (S14) and deleted users (S17) ------------------------------------------------------


async def test_session_tokens_come_from_the_csprng(
    make_identity: MakeIdentity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S14: a session token is 32 characters of [A-Za-z0-9] (about 190 bits) drawn with
    `secrets`, independent of the session id, and new at every sign-in (no fixation).

    Tokens are *not* stored hashed, though S14 asks for it: a database shared with a
    TypeScript better-auth server must hold the raw token in `session.token` (the preamble
    of security.md lists this as a known conflict; compatibility wins)."""
    drawn: list[str] = []
    choice = secrets.choice

    def spy(alphabet: Any) -> Any:
        value = choice(alphabet)
        drawn.append(value)
        return value

    async with serve(make_identity) as (identity, client):
        await sign_up(client)
        monkeypatch.setattr(secrets, "choice", spy)
        tokens = []
        for _ in range(5):
            drawn.clear()
            token = (await sign_in(client)).json()["token"]
            assert re.fullmatch(r"[A-Za-z0-9]{32}", token)
            assert token in "".join(drawn)
            row = await session_row(identity, token)
            assert row is not None
            assert row["token"] == token
            assert row["id"] != token
            tokens.append(token)
        assert len(set(tokens)) == 5


async def test_deleting_a_user_kills_all_sessions(make_identity: MakeIdentity) -> None:
    """S17: `identity.store.delete_user` removes every session of the user: cookies and
    bearer tokens stop working, over HTTP and in-process."""
    async with serve(make_identity) as (identity, client):
        first, second = Browser(), Browser()
        response = await sign_up(client, first)
        user_id = response.json()["user"]["id"]
        t2 = (await sign_in(client, second)).json()["token"]
        await sign_up(client, Browser(), email="bob@example.com")

        await identity.store.delete_user(user_id)
        assert await identity.db.find_many("session", eq("userId", user_id)) == []
        assert await identity.db.find_many("account", eq("userId", user_id)) == []
        assert (await get_session(client, first)).json() is None
        assert (await client.get("/get-session", headers=bearer(t2))).json() is None
        assert await identity.api.get_session(headers={"cookie": second.cookie_header()}) is None
        assert len(await identity.db.find_many("session", eq("userId", user_id))) == 0
        assert await identity.db.count("session") == 1  # bob's


# -- in-process (identity.api) ----------------------------------------------------------------


async def test_in_process_calls_with_the_request_cookies(make_identity: MakeIdentity) -> None:
    """`identity.api.*` runs the endpoints with the cookies a server passes on: a sign-in's
    `APIResponse` carries the Set-Cookie lines and set-auth-token; sign-out and revoke work
    with the cookie alone, as better-auth's `auth.api` calls skip the router's Origin check
    (over HTTP the same request without an Origin is refused, S19)."""
    async with serve(make_identity) as (identity, client):
        await sign_up(client)
        response = await identity.api.sign_in_email(
            body={"email": "ada@example.com", "password": PASSWORD}, as_response=True
        )
        assert response.status == 200
        token = response.body["token"]
        assert response.cookies == [f"{TOKEN_NAME}={signed(token)}; Max-Age=604800; {ATTRIBUTES}"]
        assert response.headers["set-auth-token"] == unquote(signed(token))
        cookie = {"cookie": f"{TOKEN_NAME}={signed(token)}"}

        over_http = await client.post("/sign-out", headers=cookie)
        assert over_http.status_code == 403
        assert over_http.json()["code"] == "MISSING_OR_NULL_ORIGIN"
        assert await session_row(identity, token) is not None

        listed = await identity.api.list_sessions(headers=cookie)
        assert token in [s["token"] for s in listed]
        assert await identity.api.sign_out(headers=cookie) == {"success": True}
        assert await session_row(identity, token) is None
        assert await identity.api.get_session(headers=cookie) is None
        with pytest.raises(APIError) as refused:
            await identity.api.revoke_sessions(headers=cookie)
        assert refused.value.status == 401


# -- the bearer after-hook ----------------------------------------------------------------------


async def test_no_set_auth_token_when_the_session_cookie_is_expired_later(
    make_identity: MakeIdentity,
) -> None:
    """S11: when a later hook expires the session cookie set earlier in the same response
    (as a second factor does after sign-in), the last Set-Cookie wins and no set-auth-token
    goes out."""

    def expire_session_cookie(ctx: Any) -> None:
        if "sign-in" in ctx.endpoint.tags:
            ctx.set_cookies.append(EXPIRED[TOKEN_NAME])

    async with serve(make_identity, hooks={"after": expire_session_cookie}) as (_, client):
        await sign_up(client)
        response = await client.post(
            "/sign-in/email", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200
        assert set_cookie_lines(response)[-1] == EXPIRED[TOKEN_NAME]
        assert "set-auth-token" not in response.headers


async def test_expose_headers_are_merged(make_identity: MakeIdentity) -> None:
    def expose_jwt(ctx: Any) -> None:
        ctx.response_headers["access-control-expose-headers"] = "set-auth-jwt"

    async with serve(make_identity, hooks={"after": expose_jwt}) as (_, client):
        response = await sign_up(client)
        assert response.headers["access-control-expose-headers"] == "set-auth-jwt, set-auth-token"


# -- identity.get_session: the same answers outside the endpoints -------------------------------


async def test_identity_get_session_answers_as_the_endpoint(make_identity: MakeIdentity) -> None:
    """The session and user the get-session endpoint answers (public fields only), from the
    Cookie header whatever its case or form (HTTP/2 sends cookies as separate headers)."""
    async with serve(make_identity, session=CACHE) as (identity, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        endpoint = (await get_session(client, browser)).json()
        cookies = [f"{name}={value}" for name, value in browser.jar.items()]
        for headers in (
            {"cookie": "; ".join(cookies)},
            {"Cookie": "; ".join(cookies)},
            {"cookie": cookies},
            Headers(raw=[(b"cookie", c.encode()) for c in cookies]),
            httpx.Headers([("Cookie", c) for c in cookies]),
        ):
            for trust in ("always", "reads", "never"):
                result = await identity.get_session(headers, trust_cookie_cache=trust)
                assert result.session is not None and result.user is not None, (headers, trust)
                assert result.session["token"] == token
                assert result.user["id"] == endpoint["user"]["id"]
                assert set(result.session) == set(endpoint["session"])
                assert set(result.user) == set(endpoint["user"])
                assert result.set_cookies == ()
        # Each call has its own copy: a caller editing its user edits nothing else.
        result.user["name"] = "changed"
        again = await identity.get_session({"cookie": "; ".join(cookies)})
        assert again.user is not None and again.user["name"] == "Ada"

        assert await identity.get_session({}) == SessionResult(None, None)
        with pytest.raises(ValueError, match="trust_cookie_cache"):
            await identity.get_session({}, trust_cookie_cache="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize("form", ["signed", "raw"])
async def test_identity_get_session_from_a_bearer_token(
    make_identity: MakeIdentity, form: str
) -> None:
    """The bearer token from `Authorization: Bearer` or `bearer=`: signed (`set-auth-token`)
    or raw (the sign-in body's token, signed here as Mastra #19110); a session cookie wins,
    and `require_signature` refuses a raw token."""
    async with serve(make_identity) as (identity, client):
        response = await sign_up(client)
        raw = response.json()["token"]
        token = response.headers["set-auth-token"] if form == "signed" else raw
        for result in (
            await identity.get_session(bearer(token)),
            await identity.get_session({"Authorization": f"Bearer {token}"}),
            await identity.get_session({}, bearer=token),
        ):
            assert result.session is not None and result.session["token"] == raw
            assert result.set_cookies == ()  # a bearer client keeps no cookie
        refused = await identity.get_session(bearer(token), require_signature=True)
        assert (refused.session is None) == (form == "raw")
        assert (await identity.get_session({"authorization": f"Basic {token}"})).session is None

        await sign_up(client, email="bob@example.com", name="Bob")
        bob = (
            await client.post(
                "/sign-in/email", json={"email": "bob@example.com", "password": PASSWORD}
            )
        ).json()
        both = {"cookie": f"{TOKEN_NAME}={signed(bob['token'])}", **bearer(token)}
        result = await identity.get_session(both)
        assert result.user is not None and result.user["id"] == bob["user"]["id"]


async def test_identity_get_session_hands_the_client_its_cookies(
    make_identity: MakeIdentity,
) -> None:
    """A sliding refresh writes the new session cookie; a dead session's cookies are cleared;
    for a bearer token the session is extended and nothing is set."""
    clock = Clock()
    async with serve(make_identity, clock=clock) as (identity, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        clock.advance(days=1)
        result = await identity.get_session(browser.headers())
        assert result.set_cookies == (
            f"{TOKEN_NAME}={signed(token)}; Max-Age=604800; {ATTRIBUTES}",
        )
        row = await session_row(identity, token)
        assert row is not None and row["expiresAt"] == clock.now + timedelta(days=7)
        clock.advance(days=1)
        refreshed = await identity.get_session(bearer(token))
        assert refreshed.session is not None and refreshed.set_cookies == ()
        row = await session_row(identity, token)
        assert row is not None and row["expiresAt"] == clock.now + timedelta(days=7)

        await client.post("/sign-out", headers=browser.headers())
        gone = await identity.get_session(browser.headers())
        assert gone.session is None and gone.user is None
        assert set(gone.set_cookies) == {
            EXPIRED[TOKEN_NAME],
            EXPIRED[DATA_NAME],
            EXPIRED[REMEMBER_NAME],
        }


async def test_identity_get_session_s16_trust_of_the_cookie_cache(
    make_identity: MakeIdentity,
) -> None:
    """S16: once the session is revoked, its cookie cache still reads where it is trusted
    ("always", or "reads" for a GET); a write under "reads", and anything under "never",
    asks storage and is refused, its cookies cleared."""
    async with serve(make_identity, session=CACHE) as (identity, client):
        browser = Browser()
        token = (await sign_up(client, browser)).json()["token"]
        headers = {"cookie": browser.cookie_header()}
        assert (await identity.get_session(headers, method="POST")).session is not None
        await identity.db.delete("session", eq("token", token))  # revoked elsewhere

        assert (await identity.get_session(headers)).session is not None
        trusted = await identity.get_session(headers, method="POST", trust_cookie_cache="always")
        assert trusted.session is not None
        for method, trust in (("POST", "reads"), ("DELETE", "reads"), ("GET", "never")):
            refused = await identity.get_session(headers, method=method, trust_cookie_cache=trust)
            assert refused.session is None, (method, trust)
            assert EXPIRED[TOKEN_NAME] in refused.set_cookies


async def test_identity_cached_session_is_get_session_without_io(
    make_identity: MakeIdentity,
) -> None:
    """`cached_session` answers what `get_session` answers from a trusted cookie cache (its
    own copies), and None wherever `get_session` would ask storage: a request that may not
    trust the cache, no cache, a session this process revoked since."""
    async with serve(make_identity, session=CACHE) as (identity, client):
        browser = Browser()
        await sign_up(client, browser)
        header = browser.cookie_header()
        expected = await identity.get_session({"cookie": header})
        for method, trust in (("GET", "reads"), ("HEAD", "reads"), ("POST", "always")):
            rows = identity.cached_session(header, method, trust)
            assert rows == (expected.session, expected.user), (method, trust)
        rows = identity.cached_session(header)
        assert rows is not None
        rows[1]["name"] = "changed"
        again = identity.cached_session(header)
        assert again is not None and again[1]["name"] == "Ada"

        for method, trust in (("POST", "reads"), ("GET", "never")):
            assert identity.cached_session(header, method, trust) is None, (method, trust)
        token_only = "; ".join(p for p in header.split("; ") if p.startswith(TOKEN_NAME))
        assert identity.cached_session(token_only) is None
        assert identity.cached_session("") is None
        with pytest.raises(ValueError, match="trust_cookie_cache"):
            identity.cached_session(header, "GET", "sometimes")  # type: ignore[arg-type]

        await client.post("/sign-out", headers=browser.headers())  # revoked in this process
        assert identity.cached_session(header) is None
        assert (await identity.get_session({"cookie": header})).session is None


async def test_identity_cached_session_without_the_cookie_cache_is_none(
    make_identity: MakeIdentity,
) -> None:
    async with serve(make_identity) as (identity, client):
        browser = Browser()
        await sign_up(client, browser)
        assert identity.cached_session(browser.cookie_header()) is None
        assert (await identity.get_session(browser.headers())).session is not None


async def test_the_get_session_example_of_the_docs_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/identity-auth.md's `identity.get_session` example, served beside the Identity."""
    docs = (Path(__file__).parents[2] / "docs" / "identity-auth.md").read_text()
    section = docs[docs.index("## Reading a session yourself") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    monkeypatch.chdir(tmp_path)  # the example's SQLite file
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), "identity-auth.md", "exec"), namespace)
    identity = namespace["identity"]
    await identity.migrate()
    app = Starlette(
        routes=[Route("/whoami", namespace["whoami"]), Mount("/api/auth", identity.app)]
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            assert (await client.get("/whoami")).status_code == 401
            response = await client.post(
                "/api/auth/sign-up/email",
                json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD},
                headers={"origin": "http://localhost"},
            )
            assert response.status_code == 200, response.text
            whoami = await client.get("/whoami")  # the client keeps the session cookie
            assert whoami.status_code == 200
            assert whoami.json() == {"email": "ada@example.com"}
    finally:
        await identity.close()
