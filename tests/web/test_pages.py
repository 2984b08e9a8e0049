"""Every page of bastion.web over HTTP (in-process): the CSP and security headers, HTML that
parses cleanly (closed tags, one <main>, a label for every field, no inline script or
style), what the sign-in page offers for what the Identity has on, the hashed static files,
the wiring (`Bastion(ui=...)`, `web_app`, `bastion serve`) and the mail links."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import (
    Identity,
    email_otp,
    magic_link,
    organization,
    two_factor,
    username,
)
from bastion.server import Bastion
from bastion.standalone import create_app
from bastion.web import Pages, to_pages, web_app
from bastion.web._links import page_url
from tests.web.pagecheck import check_headers, check_html

SECRET = "web-pages-tests-secret-0123456789abcdef"
ORIGIN = "http://127.0.0.1:4111"


async def nothing(*args: Any) -> None:
    return None


def identity(**options: Any) -> Identity:
    values: dict[str, Any] = {
        "env": {},
        "secret": SECRET,
        "base_url": ORIGIN,
        "database": "sqlite+aiosqlite:///:memory:",
        "email_and_password": {"enabled": True, "send_reset_password": nothing},
        **options,
    }
    return Identity(**values)


def everything() -> Identity:
    """Every sign-in method the page knows, on."""
    return identity(
        social_providers={"github": {"client_id": "id", "client_secret": "secret"}},
        plugins=[
            username(),
            magic_link(send_magic_link=nothing),
            email_otp(send_verification_otp=nothing),
            two_factor(otp={"send_otp": nothing}),
            organization(),
        ],
    )


async def client_for(app: Any, the_identity: Identity) -> AsyncIterator[httpx.AsyncClient]:
    await the_identity.migrate()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http
    await the_identity.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A Bastion with the pages and every sign-in method on."""
    the_identity = everything()
    app = Bastion(auth=IdentityAuth(the_identity), ui=Pages())
    async for client in client_for(app, the_identity):
        yield client


async def page(http: httpx.AsyncClient, path: str, status: int = 200) -> str:
    response = await http.get(path)
    assert response.status_code == status, f"{path}: {response.status_code}"
    check_headers(response.headers, path)
    assert response.headers["cache-control"] == "no-store"
    check_html(response.text, path)
    return response.text


PAGES = [
    "/sign-in",
    "/sign-in?error=account_not_linked&email=a%40b.co",
    "/sign-in?reset=1",
    "/sign-in?verified=1",
    "/sign-up",
    "/forgot-password",
    "/reset-password",
    "/reset-password?token=abc",
    "/reset-password?error=INVALID_TOKEN",
    "/verify-email",
    "/verify-email?sent=1",
    "/verify-email?verified=1",
    "/verify-email?error=TOKEN_EXPIRED",
    "/magic-link",
    "/magic-link?error=EXPIRED_TOKEN",
    "/two-factor",
    "/two-factor?methods=otp",
]


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_is_clean_html_with_the_csp(http: httpx.AsyncClient, path: str) -> None:
    await page(http, path)


async def test_an_unknown_page_is_a_404_page(http: httpx.AsyncClient) -> None:
    text = await page(http, "/no/such/page", 404)
    assert "Page not found" in text
    # A form posted without app.js (JavaScript off): a page that says so, not a 405.
    response = await http.post("/sign-in", data={"email": "a@b.co", "password": "x"})
    assert response.status_code == 400
    assert "needs JavaScript" in response.text


async def test_the_sign_in_page_offers_what_the_identity_has_on(http: httpx.AsyncClient) -> None:
    text = await page(http, "/sign-in")
    for form in ("sign-in-email", "sign-in-username", "sign-in-magic-link", "sign-in-email-otp"):
        assert f'id="{form}"' in text
    assert "Continue with GitHub" in text
    assert 'data-api="/api/auth/sign-in/social"' in text

    only_password = identity()
    app = Bastion(auth=IdentityAuth(only_password), ui=Pages())
    async for plain in client_for(app, only_password):
        text = await page(plain, "/sign-in")
        assert 'id="sign-in-email"' in text
        for absent in ("sign-in-username", "sign-in-magic-link", "sign-in-email-otp", "Continue"):
            assert absent not in text
        # Pages of plugins that are off are not there.
        assert (await plain.get("/two-factor")).status_code == 404
        assert (await plain.get("/magic-link")).status_code == 404


async def test_error_codes_become_sentences_never_the_query_text(http: httpx.AsyncClient) -> None:
    text = await page(http, "/sign-in?error=state_mismatch")
    assert "took too long" in text
    text = await page(http, "/sign-in?error=Your+account+is+locked,+call+555")
    assert "555" not in text and "That did not work" in text


async def test_next_stays_on_this_site(http: httpx.AsyncClient) -> None:
    for hostile in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"):
        text = await page(http, "/sign-in?next=" + hostile)
        assert 'data-next="/playground"' in text, hostile
    text = await page(http, "/sign-in?next=/account%3Ftab%3D2")
    assert 'data-next="/account?tab=2"' in text


async def test_home_sends_to_sign_in_or_the_playground(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    signed_up = await http.post(
        "/api/auth/sign-up/email",
        json={"name": "Ada", "email": "ada@example.com", "password": "correct-horse-1"},
        headers={"origin": ORIGIN},
    )
    assert signed_up.status_code == 200
    response = await http.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/playground"
    # Signed in: the header names the user and offers to sign out.
    text = await page(http, "/verify-email?verified=1")
    assert "ada@example.com" in text and 'data-api="/api/auth/sign-out"' in text
    response = await http.get("/sign-in")
    assert response.status_code == 303 and response.headers["location"] == "/playground"


async def test_the_api_answers_beside_the_pages(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}
    assert (await http.get("/api")).json()["name"] == "bastion"
    # Under /api the pages never answer: the API's own JSON (here: who are you?).
    missing = await http.get("/api/no-such-route")
    assert missing.headers["content-type"].startswith("application/json")
    assert "content-security-policy" not in missing.headers


async def test_static_files_have_hashed_names_and_long_lives(http: httpx.AsyncClient) -> None:
    text = await page(http, "/sign-in")
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', text)
    assert {u.split(".")[0] for u in urls} == {"/static/app"}
    for url in urls:
        assert re.fullmatch(r"/static/app\.[0-9a-f]{12}\.(js|css)", url), url
        response = await http.get(url)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        again = await http.get(url, headers={"if-none-match": response.headers["etag"]})
        assert again.status_code == 304
    stale = await http.get("/static/app.000000000000.js")
    assert stale.status_code == 404 and stale.headers["cache-control"] == "no-store"


async def test_pages_name_logo_and_colours() -> None:
    the_identity = identity()
    pages = Pages(app_name="Acme", logo_url="/static/none.svg", colors={"accent": "#0f766e"})
    app = Bastion(auth=IdentityAuth(the_identity), ui=pages)
    async for http in client_for(app, the_identity):
        text = await page(http, "/sign-in")
        assert "<title>Sign in · Acme</title>" in text
        assert '<img src="/static/none.svg"' in text
        theme = re.search(r'href="(/static/theme\.[0-9a-f]{12}\.css)"', text)
        assert theme is not None
        css = (await http.get(theme.group(1))).text
        assert "--accent: #0f766e;" in css


def test_pages_refuse_what_would_break_them() -> None:
    with pytest.raises(ValueError, match="app_name"):
        Pages(app_name=" ")
    with pytest.raises(ValueError, match="sign_in_redirect"):
        Pages(sign_in_redirect="https://evil.example/")
    the_identity = identity()
    with pytest.raises(ValueError, match="colors"):
        Bastion(auth=IdentityAuth(the_identity), ui=Pages(colors={"accent": "red; } body {"}))
    with pytest.raises(TypeError, match="ui"):
        Bastion(auth=IdentityAuth(the_identity), ui="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Identity"):
        Bastion(ui=Pages())


async def test_web_app_of_an_identity_serves_its_api_too() -> None:
    the_identity = identity()
    async for http in client_for(web_app(the_identity, Pages(app_name="Solo")), the_identity):
        assert "Solo" in await page(http, "/sign-in")
        assert (await http.get("/api/auth/ok")).json() == {"ok": True}


def test_mail_links_land_on_the_pages() -> None:
    base = "http://127.0.0.1:4111/api/auth"
    verify = page_url(f"{base}/verify-email?token=t.k.n&callbackURL=%2F")
    assert verify == f"{base}/verify-email?token=t.k.n&callbackURL=%2Fverify-email%3Fverified%3D1"
    reset = page_url(f"{base}/reset-password/abc?callbackURL=")
    assert reset == f"{base}/reset-password/abc?callbackURL=%2Freset-password"
    # A link that names its own page is left alone.
    own = f"{base}/verify-email?token=x&callbackURL=%2Fwelcome"
    assert page_url(own) == own
    assert page_url(f"{base}/magic-link/verify?token=x") == f"{base}/magic-link/verify?token=x"


async def test_to_pages_sends_the_landing_link() -> None:
    from bastion.identity.email import EmailLink

    sent: list[str] = []

    def sender(link: EmailLink, request: Any) -> None:
        sent.append(link.url)

    link = EmailLink(
        user={"id": "u"}, url=f"{ORIGIN}/api/auth/reset-password/t?callbackURL=", token="t"
    )
    await to_pages(sender)(link, None)
    assert sent == [f"{ORIGIN}/api/auth/reset-password/t?callbackURL=%2Freset-password"]


async def test_bastion_serve_shows_the_pages(tmp_path: Any) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/b.db", "BASTION_SECRET": SECRET}
    served = create_app(env)
    async with (
        served.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url=ORIGIN) as http,
    ):
        response = await http.get("/")
        assert response.status_code == 303 and response.headers["location"] == "/sign-in"
        text = await page(http, "/sign-in")
        assert 'id="sign-in-email"' in text
        await page(http, "/two-factor")  # two-factor is on in the default app


async def test_an_app_replaces_one_template(tmp_path: Any) -> None:
    (tmp_path / "magic-link.html").write_text("nope")  # not a page of this Identity: unused
    (tmp_path / "forgot-password.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1>Ask the help desk</h1>{% endblock %}'
    )
    the_identity = identity()
    app = Bastion(auth=IdentityAuth(the_identity), ui=Pages(templates=tmp_path))
    async for http in client_for(app, the_identity):
        assert "Ask the help desk" in await page(http, "/forgot-password")
        assert 'id="sign-in-email"' in await page(http, "/sign-in")  # still ours
    with pytest.raises(ValueError, match="templates"):
        Pages(templates=tmp_path / "missing")


async def test_the_social_button_posts_what_the_endpoint_accepts(http: httpx.AsyncClient) -> None:
    """The hidden fields of "Continue with GitHub", posted as app.js posts them: the answer
    is the provider's URL for the browser to follow."""
    text = await page(http, "/sign-in?next=/account")
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', text))
    assert fields["callbackURL"] == "/account"
    body = {"provider": "github", "callbackURL": "/account", "errorCallbackURL": "/sign-in"}
    answer = await http.post("/api/auth/sign-in/social", json=body, headers={"origin": ORIGIN})
    assert answer.status_code == 200, answer.text
    assert answer.json()["redirect"] is True
    assert answer.json()["url"].startswith("https://github.com/login/oauth/authorize?")


async def test_require_session_sends_to_sign_in_and_back() -> None:
    """A page module's `await web.require_session(request)`, on a page added here (the
    account and playground modules use it the same way)."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    the_identity = identity()
    asgi = web_app(the_identity)

    async def private(request: Request) -> Response:
        session = await asgi.state.web.require_session(request)
        return Response(f"hello {session['user']['email']}")

    asgi.router.routes.insert(0, Route("/private", private))
    async for http in client_for(asgi, the_identity):
        away = await http.get("/private?tab=2")
        assert away.status_code == 303
        assert away.headers["location"] == "/sign-in?next=/private%3Ftab%3D2"
        assert away.headers["content-security-policy"]
        text = await page(http, away.headers["location"])
        assert 'data-next="/private?tab=2"' in text
        body = {"name": "Ada", "email": "ada@example.com", "password": "correct-horse-1"}
        await http.post("/api/auth/sign-up/email", json=body, headers={"origin": ORIGIN})
        back = await http.get("/sign-in?next=/private%3Ftab%3D2")
        assert back.headers["location"] == "/private?tab=2"
        assert (await http.get("/private?tab=2")).text == "hello ada@example.com"


async def test_the_qr_route_refuses_hostile_bodies_cleanly(http: httpx.AsyncClient) -> None:
    """The one page route that reads a body (POST /account/two-factor/qr): deep nesting, a
    lone surrogate, a NUL, huge and wrong-typed values are a 400 with a sentence, never a
    500; a real otpauth link gets its QR code."""
    signed_up = await http.post(
        "/api/auth/sign-up/email",
        json={"name": "Ada", "email": "ada@example.com", "password": "correct-horse-1"},
        headers={"origin": ORIGIN},
    )
    assert signed_up.status_code == 200
    hostile = [
        b"[" * 50_000 + b"]" * 50_000,
        b'{"totpURI": "otpauth://totp/a\\ud800?secret=A"}',
        b'{"totpURI": "otpauth://totp/a\\u0000?secret=A"}',
        b'{"totpURI": "otpauth://totp/' + b"a" * 1_000_000 + b'"}',
        b'{"totpURI": 42}',
        b'{"totpURI": ["otpauth://totp/a"]}',
        b'{"totpURI": "https://evil.example/"}',
        b"not json",
        b"",
    ]
    for body in hostile:
        answer = await http.post(
            "/account/two-factor/qr", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400, (body[:40], answer.status_code)
        assert answer.json() == {"message": "That is not an authenticator link."}
    good = await http.post(
        "/account/two-factor/qr", json={"totpURI": "otpauth://totp/Bastion:ada?secret=JBSWY3DP"}
    )
    assert good.status_code == 200 and good.json()["src"].startswith("data:image/svg+xml")


HOSTILE_QUERY = ["%00", "%ED%A0%80", "a" * 20_000, "%0d%0aSet-Cookie:x=1", "//evil.example"]
HOSTILE_PATHS = [
    "/",
    "/sign-in",
    "/sign-up",
    "/forgot-password",
    "/reset-password",
    "/verify-email",
    "/magic-link",
    "/two-factor",
    "/account",
    "/playground",
]


async def test_hostile_query_values_never_fail_a_page(http: httpx.AsyncClient) -> None:
    """Every page, signed out and in, with hostile values in the parameters pages read
    (NUL, a lone surrogate's bytes, 20 KB, CRLF, another site): never a 5xx, never a
    redirect off this site, never a header split."""
    for signed_in in (False, True):
        if signed_in:
            signed_up = await http.post(
                "/api/auth/sign-up/email",
                json={"name": "Ada", "email": "ada@example.com", "password": "correct-horse-1"},
                headers={"origin": ORIGIN},
            )
            assert signed_up.status_code == 200
        for path in HOSTILE_PATHS:
            for key in ("next", "error", "token", "methods", "email"):
                for value in HOSTILE_QUERY:
                    answer = await http.get(f"{path}?{key}={value}")
                    where = (signed_in, path, key, value[:12])
                    assert answer.status_code < 500, where
                    assert "set-cookie: x=1" not in str(answer.headers).lower(), where
                    location = answer.headers.get("location", "/")
                    assert location.startswith("/") and not location.startswith("//"), where
