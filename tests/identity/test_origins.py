"""Trusted origins, open-redirect checks and the Origin/CSRF rules (spec §6.2 to §6.4, S19)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import pytest
from starlette.datastructures import Headers, QueryParams

from bastion.identity import Code
from bastion.identity.origins import ENV_VARS, TrustedOrigins, resolve
from bastion.identity.security import (
    OriginProblem,
    RedirectProblem,
    check_form_csrf,
    check_origin,
    check_redirect_fields,
)

BASE = "http://localhost:3000/api/auth"
APP = "http://localhost:3000"


def trusted(*entries: str) -> TrustedOrigins:
    return TrustedOrigins.from_options(BASE, entries, {})


# ------------------------------------------------------------------- exact origins


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # the base URL's origin is always trusted, whatever the path
        (APP, True),
        (f"{APP}/", True),  # errata 6: an Origin with a trailing slash passes
        (f"{APP}/some/path?x=1#f", True),
        (BASE, True),
        # a configured origin
        ("https://trusted.com", True),
        ("https://trusted.com/", True),
        ("https://trusted.com/cb?next=/x", True),
        ("https://trusted.com:443", True),  # the default port is no port
        ("https://trusted.com:0443/", True),
        # case of scheme and host does not matter
        ("HTTPS://TRUSTED.COM", True),
        ("hTTps://Trusted.Com/Path", True),
        ("HTTP://LOCALHOST:3000", True),
        # but scheme and port do
        ("http://trusted.com", False),
        ("https://trusted.com:8443", False),
        ("http://localhost:3001", False),
        ("https://localhost:3000", False),
        # no prefix, suffix or subdomain tricks
        ("https://trusted.com.evil.com", False),
        ("https://evil-trusted.com", False),
        ("https://sub.trusted.com", False),
        ("https://trusted.co", False),
        ("https://trusted.com.", False),  # a different host for browsers
        # userinfo: the host is what follows the last "@"
        ("https://trusted.com@evil.com", False),
        ("https://trusted.com:443@evil.com/", False),
        ("https://user:pw@trusted.com", True),
        ("https://a@b@evil.com", False),
        ("https://evil.com#@trusted.com", False),
        ("https://evil.com?@trusted.com", False),
        ("https://evil.com/@trusted.com", False),
        # backslashes are slashes in http(s) URLs, as browsers read them
        ("https://evil.com\\@trusted.com", False),
        ("https://trusted.com\\@evil.com", True),  # browsers go to trusted.com
        ("https:\\\\evil.com", False),
        ("https:\\\\trusted.com", True),
        # missing or extra slashes: browsers still find the host
        ("https:evil.com", False),
        ("https:/evil.com", False),
        ("https:///evil.com", False),
        ("https:trusted.com", True),
        # hosts browsers would rewrite or refuse: never trusted
        ("https://trusted%2ecom", False),
        ("https://evil.com%2f.trusted.com", False),
        ("https://trusted.com%00", False),
        ("https://trüsted.com", False),
        ("https://", False),
        ("https://:443", False),
        ("https://trusted.com:99999", False),
        ("https://trusted.com:44a", False),
        # whitespace and control characters
        ("https://trusted.com/\r\nSet-Cookie:x=1", False),
        (" https://trusted.com", False),
        ("https://trus\tted.com", False),
        # no scheme
        ("trusted.com", False),
        ("//trusted.com", False),
        ("", False),
        ("null", False),
        # dangerous schemes
        ("javascript:alert(1)", False),
        ("javascript://trusted.com/%0Aalert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox(1)", False),
        ("file:///etc/passwd", False),
    ],
)
def test_exact_origins(url: str, expected: bool) -> None:
    assert trusted("https://trusted.com").is_trusted(url) is expected


@pytest.mark.parametrize(
    ("entry", "url", "expected"),
    [
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000/x", True),
        ("http://127.0.0.1:3000", "http://0x7f.0.0.1:3000", False),  # fails closed
        ("http://127.0.0.1:3000", "http://2130706433:3000", False),
        ("http://[::1]:3000", "http://[::1]:3000", True),
        ("http://[::1]:3000", "http://[0:0:0:0:0:0:0:1]:3000/", True),
        ("http://[::1]:3000", "http://[::2]:3000", False),
        ("http://[0:0::1]:3000", "http://[::1]:3000", True),  # the entry is canonicalized
        ("https://xn--bcher-kva.example", "https://XN--BCHER-KVA.example/", True),
        ("https://Trusted.COM:443/", "https://trusted.com", True),
    ],
)
def test_ip_and_canonical_hosts(entry: str, url: str, expected: bool) -> None:
    assert trusted(entry).is_trusted(url) is expected


# ------------------------------------------------------------------------ wildcards


@pytest.mark.parametrize(
    ("entry", "url", "expected"),
    [
        # with "://": against the full origin; "*" crosses dots, so any depth
        ("https://*.example.com", "https://a.example.com", True),
        ("https://*.example.com", "https://a.b.example.com/cb", True),
        ("https://*.example.com", "https://a.b.c.d.example.com", True),
        ("https://*.example.com", "https://A.Example.COM", True),
        ("https://*.example.com", "https://example.com", False),
        ("https://*.example.com", "http://a.example.com", False),  # scheme pinned
        ("https://*.example.com", "https://a.example.com:8443", False),  # so is the port
        ("https://*.example.com", "https://a.example.com.evil.com", False),
        ("https://*.example.com", "https://evil.com?.example.com", False),
        ("https://*.example.com", "https://evil.com#.example.com", False),
        ("https://*.example.com", "https://evil.com\\.example.com", False),
        ("https://*.example.com", "https://a.example.com@evil.com", False),
        ("https://*.example.com", "https://evil.com@a.example.com", True),
        ("https://*.example.com", "https://evil.com%2f.example.com", False),
        ("https://*.example.com", "javascript://a.example.com/%0Aalert(1)", False),
        ("https://*.example.com:*", "https://a.example.com:8443", True),
        ("https://**.example.com", "https://a.b.example.com", True),
        ("*://app.example.com", "http://app.example.com", True),
        ("*://app.example.com", "https://app.example.com", True),
        # "?" is one character
        ("https://app?.example.com", "https://app1.example.com", True),
        ("https://app?.example.com", "https://app12.example.com", False),
        ("https://app?.example.com", "https://app.example.com", False),
        # without "://": against host[:port], any http(s) scheme
        ("*.example.com", "https://a.example.com", True),
        ("*.example.com", "http://a.b.example.com/cb", True),
        ("*.example.com", "https://example.com", False),
        ("*.example.com", "https://a.example.com:8443", False),
        ("*.example.com", "https://a.example.com.evil.com", False),
        ("*.example.com", "malicious.com?.example.com", False),
        ("*.example.com", "https://trusted.com@evil.example.com.evil.com", False),
        ("*.example.com:*", "https://a.example.com:8443", True),
        ("preview-*.example.com", "https://preview-42.example.com", True),
        ("preview-*.example.com", "https://preview-42.evil.com", False),
        # ...but never a custom or dangerous scheme (better-auth admits these)
        ("*.example.com", "javascript://a.example.com/%0Aalert(1)", False),
        ("*.example.com", "myapp://a.example.com", False),
        ("*", "javascript://x/%0Aalert(1)", False),
        ("*", "https://anything.test", True),
        # an all-digits host glob is an address range: IPv4 addresses only
        ("http://192.168.*.*:*", "http://192.168.1.20:8080", True),
        ("http://192.168.*.*:*", "http://192.168.evil.com:80", False),
        ("http://192.168.*.*:*", "http://10.0.0.1:8080", False),
        ("10.*", "http://10.1.2.3", True),
        ("10.*", "http://10.evil.com", False),
    ],
)
def test_wildcards(entry: str, url: str, expected: bool) -> None:
    assert trusted(entry).is_trusted(url) is expected


def test_glob_matching_time_is_linear() -> None:
    """A pattern with several `*` in one segment would make a backtracking regex (as in
    better-auth) take seconds on a long host; the matcher here reads each character once."""
    origins = trusted("https://*a*a*a*a*.example.com", "*.*.*.*.example.com")
    started = time.perf_counter()
    for host in ("a" * 5000 + "b", "a." * 2500 + "b", "a-" * 2500):
        assert not origins.is_trusted(f"https://{host}")
    assert time.perf_counter() - started < 1.0
    assert origins.is_trusted("https://xaayaazaa.example.com")


# -------------------------------------------------------------------- custom schemes


@pytest.mark.parametrize(
    ("entry", "url", "expected"),
    [
        # a host-less entry trusts every host of its scheme
        ("myapp://", "myapp://callback", True),
        ("myapp://", "myapp://other-host/path?x=1", True),
        ("myapp://", "MyApp://Callback", True),
        ("myapp://", "otherapp://callback", False),
        ("myapp://", "myapp2://callback", False),
        ("exp://", "exp://192.168.1.5:8081/--/", True),
        ("myapp:/", "myapp:/auth/callback", True),
        ("myapp:/", "myapp://", True),
        # a pinned authority must be equal (case aside)
        ("myapp://callback", "myapp://callback", True),
        ("myapp://callback", "myapp://callback/", True),
        ("myapp://callback", "myapp://callback/path", True),
        ("myapp://callback", "myapp://callback?token=x", True),
        ("myapp://callback", "myapp://callback#frag", True),
        ("myapp://callback", "myapp://CALLBACK", True),
        ("myapp://callback", "myapp://callback.attacker.tld", False),
        ("myapp://callback", "myapp://callback.attacker.tld/path", False),
        ("myapp://callback", "myapp://callback@attacker.tld", False),
        ("myapp://callback", "myapp://attacker.tld", False),
        # a pinned path: equal, or a parent at a "/" boundary; no traversal
        ("myapp://host/cb", "myapp://host/cb", True),
        ("myapp://host/cb", "myapp://host/cb/extra", True),
        ("myapp://host/cb", "myapp://host/cbx", False),
        ("myapp://host/cb", "myapp://host/other", False),
        ("myapp://host/cb", "myapp://host/cb/../evil", False),
        ("myapp://host/cb", "myapp://host/cb/%2e%2e/evil", False),
        ("myapp://host/cb", "myapp://host/cb%2f..%2fevil", False),
        # globs: scheme pinned, authority and path matched apart
        ("exp://192.168.*.*:*/*", "exp://192.168.1.100:8081/--/", True),
        ("exp://192.168.*.*:*/*", "exp://10.0.0.1:8081/--/", False),
        ("exp://192.168.*.*:*/*", "exp://192.168.evil.com:8081/--/", False),
        ("exp://192.168.*.*:*/*", "exp://x@192.168.1.1:8081/--/", False),
        ("exp://192.168.*.*:*/*", "myapp://192.168.1.100:8081/--/", False),
        ("myapp://*.example.com", "myapp://a.b.example.com/cb", True),
        ("myapp://*.example.com", "myapp://example.com", False),
        ("myapp://host/*", "myapp://host/one", True),
        ("myapp://host/*", "myapp://host/one/two", False),
        ("myapp://host/**", "myapp://host/one/two/three", True),
        ("myapp://host/**", "myapp://host", True),
        ("myapp://host/cb/**", "myapp://host/other/x", False),
        ("myapp://host/a\\*b", "myapp://host/a*b", True),  # "\\" escapes a wildcard
        ("myapp://host/a\\*b", "myapp://host/axb", False),
    ],
)
def test_custom_schemes(entry: str, url: str, expected: bool) -> None:
    assert trusted(entry).is_trusted(url) is expected


# -------------------------------------------------------------------- relative URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/", True),
        ("/dashboard", True),
        ("/a/b-c_d.e+f@g", True),
        ("/dashboard?email=123@email.com", True),
        ("/dashboard+page?test=123+456", True),
        ("/?a=b&c=%2F", True),  # percent-escapes are fine in the query
        ("//evil.com", False),
        ("///evil.com", False),
        ("/\\evil.com", False),
        ("/\\/\\/evil.com", False),
        ("/%2fevil.com", False),
        ("/%2Fevil.com", False),
        ("/%5cevil.com", False),
        ("/%5Cevil.com", False),
        ("/..%2F..%2Fevil.com", False),
        ("/a%20b", False),
        ("/a#fragment", False),
        ("/a?b#fragment", False),
        ("/a b", False),
        ("/é", False),
        ("/a\n", False),
        ("/a\r\nSet-Cookie:x=1", False),
        ("/a?x=<script>", False),
        ("\\evil.com", False),
        ("\\\\evil.com", False),
        ("dashboard", False),
    ],
)
def test_relative_urls(url: str, expected: bool) -> None:
    origins = trusted()
    assert origins.is_trusted(url, allow_relative=True) is expected
    assert origins.is_trusted(url) is False  # never without allow_relative


def test_non_strings_are_not_trusted() -> None:
    origins = trusted("https://trusted.com")
    for value in (None, 42, ["https://trusted.com"], b"https://trusted.com"):
        assert origins.is_trusted(value, allow_relative=True) is False  # type: ignore[arg-type]


# ------------------------------------------------------------------ building the set


def test_from_options_order_dedup_and_env() -> None:
    env = {
        "BETTER_AUTH_TRUSTED_ORIGINS": "https://a.com, https://B.com:443/,,  ",
        "BASTION_TRUSTED_ORIGINS": "myapp://",
        "UNRELATED": "https://c.com",
    }
    origins = TrustedOrigins.from_options(
        "http://localhost:3000/api/auth", ["https://a.com/", "*.x.com"], env
    )
    assert origins.entries == (
        "http://localhost:3000",
        "https://a.com",
        "*.x.com",
        "https://b.com",
        "myapp://",
    )
    assert origins.is_trusted("https://b.com")
    assert not origins.is_trusted("https://c.com")
    assert set(ENV_VARS) == {"BETTER_AUTH_TRUSTED_ORIGINS", "BASTION_TRUSTED_ORIGINS"}


def test_from_options_reads_only_the_env_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BETTER_AUTH_TRUSTED_ORIGINS", "https://from-os-environ.com")
    assert not TrustedOrigins.from_options(BASE).is_trusted("https://from-os-environ.com")
    assert not TrustedOrigins.from_options(BASE, (), {}).is_trusted("https://from-os-environ.com")


def test_without_base_url() -> None:
    origins = TrustedOrigins.from_options(None, ["https://a.com"], {})
    assert origins.entries == ("https://a.com",)
    assert not origins.is_trusted(APP)
    assert TrustedOrigins().entries == ()
    assert not TrustedOrigins().is_trusted("https://a.com")


@pytest.mark.parametrize(
    "entry",
    [
        "",
        "   ",
        "trusted.com",  # no scheme, not a glob
        "localhost:3000",
        "https://trusted.com/app",  # an origin has no path...
        "https://trusted.com/#x",
        "https://user@trusted.com",  # ...nor user info
        "https://",
        "https://tru sted.com",
        "https://tru\nsted.com",
        "example.com:8080",  # host:port reads as a scheme "example.com"
        "javascript:alert(1)",
        "data:",
        "file:///",
    ],
)
def test_unusable_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError):
        trusted(entry)


@pytest.mark.parametrize("base_url", ["myapp://x", "localhost:3000", "ftp://x.com", "https://"])
def test_base_url_must_be_http(base_url: str) -> None:
    with pytest.raises(ValueError):
        TrustedOrigins.from_options(base_url, (), {})


def test_a_string_is_not_a_list_of_entries() -> None:
    with pytest.raises(TypeError):
        TrustedOrigins.from_options(BASE, "https://a.com", {})
    with pytest.raises(TypeError):
        TrustedOrigins("https://a.com")  # type: ignore[arg-type]


def test_extend() -> None:
    base = trusted("https://a.com")
    more = base.extend(["https://b.com", "https://a.com/"])
    assert more.entries == (APP, "https://a.com", "https://b.com")
    assert base.extend([]) is base
    assert not base.is_trusted("https://b.com")  # immutable
    with pytest.raises(ValueError):
        base.extend(["https://b.com/path"])
    lenient = base.extend(["https://b.com/path", None, "", "https://c.com"], strict=False)
    assert lenient.entries == (APP, "https://a.com", "https://c.com")


def test_equality_and_repr() -> None:
    assert trusted("https://a.com") == trusted("https://A.com/")
    assert "https://a.com" in repr(trusted("https://a.com"))


# ------------------------------------------------------------ per-request (dynamic) origins


class FakeRequest:
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant


async def test_resolve_with_an_async_callable() -> None:
    async def per_tenant(request: FakeRequest) -> list[str | None]:
        return [f"https://{request.tenant}.example.com", None, ""]

    static = trusted("https://a.com")
    origins = await resolve(static, per_tenant, FakeRequest("acme"))
    assert origins.is_trusted("https://acme.example.com/cb")
    assert origins.is_trusted("https://a.com")
    assert not origins.is_trusted("https://other.example.com")
    assert not static.is_trusted("https://acme.example.com")


async def test_resolve_with_a_sync_callable_and_the_request_base_url() -> None:
    def fixed(request: object) -> tuple[str, ...]:
        return ("https://b.com",)

    static = TrustedOrigins.from_options(None, (), {})
    origins = await resolve(static, fixed, object(), base_url="https://auth.example.org/api/auth")
    assert origins.entries == ("https://auth.example.org", "https://b.com")


async def test_resolve_drops_unusable_dynamic_entries() -> None:
    async def sloppy(request: object) -> list[str]:
        return ["https://ok.com", "not an origin", "https://x.com/path", "javascript:"]

    origins = await resolve(trusted(), sloppy, object())
    assert origins.entries == (APP, "https://ok.com")


async def test_resolve_without_a_source_is_the_static_set() -> None:
    static = trusted("https://a.com")
    assert await resolve(static, None, object()) is static


async def test_resolve_refuses_a_string() -> None:
    async def wrong(request: object) -> str:
        return "https://a.com"

    with pytest.raises(TypeError):
        await resolve(trusted(), wrong, object())


# ------------------------------------------------------------- open redirects (§6.3)

TRUSTED = trusted("https://trusted.com")


@pytest.mark.parametrize(
    ("body", "query", "expected"),
    [
        (None, {}, None),
        ({}, {}, None),
        ({"callbackURL": "/dashboard"}, {}, None),
        ({"callbackURL": "https://trusted.com/cb"}, {}, None),
        ({"callbackURL": f"{APP}/welcome"}, {}, None),
        (
            {"callbackURL": "https://evil.com"},
            {},
            ("callbackURL", 403, Code.INVALID_CALLBACK_URL, "Invalid callbackURL"),
        ),
        (
            {"callbackURL": "//evil.com"},
            {},
            ("callbackURL", 403, Code.INVALID_CALLBACK_URL, "Invalid callbackURL"),
        ),
        (
            {"callbackURL": "javascript:alert(1)"},
            {},
            ("callbackURL", 403, Code.INVALID_CALLBACK_URL, "Invalid callbackURL"),
        ),
        # callbackURL falls back to the query when the body has none (or a falsy one)
        (
            {},
            {"callbackURL": "https://evil.com"},
            ("callbackURL", 403, Code.INVALID_CALLBACK_URL, "Invalid callbackURL"),
        ),
        (
            {"callbackURL": ""},
            {"callbackURL": "https://evil.com"},
            ("callbackURL", 403, Code.INVALID_CALLBACK_URL, "Invalid callbackURL"),
        ),
        (None, {"callbackURL": "/ok"}, None),
        # a trusted body value wins over the query
        ({"callbackURL": "/ok"}, {"callbackURL": "https://evil.com"}, None),
        # the other fields are read from the body only
        ({}, {"redirectTo": "https://evil.com"}, None),
        (
            {"redirectTo": "https://evil.com/reset"},
            {},
            ("redirectTo", 403, Code.INVALID_REDIRECT_URL, "Invalid redirectURL"),
        ),
        (
            {"errorCallbackURL": "https://evil.com"},
            {},
            ("errorCallbackURL", 403, Code.INVALID_ERROR_CALLBACK_URL, "Invalid errorCallbackURL"),
        ),
        (
            {"newUserCallbackURL": "https://evil.com"},
            {},
            (
                "newUserCallbackURL",
                403,
                Code.INVALID_NEW_USER_CALLBACK_URL,
                "Invalid newUserCallbackURL",
            ),
        ),
        (
            {
                "callbackURL": "/a",
                "redirectTo": "https://trusted.com/b",
                "errorCallbackURL": "/c",
                "newUserCallbackURL": "myapp://x",
            },
            {},
            (
                "newUserCallbackURL",
                403,
                Code.INVALID_NEW_USER_CALLBACK_URL,
                "Invalid newUserCallbackURL",
            ),
        ),
        # the first failing field, in better-auth's order
        (
            {"newUserCallbackURL": "https://evil.com", "redirectTo": "https://evil.com"},
            {},
            ("redirectTo", 403, Code.INVALID_REDIRECT_URL, "Invalid redirectURL"),
        ),
        # non-strings: 400 with a message and no code
        (
            {"callbackURL": {"url": "/x"}},
            {},
            ("callbackURL", 400, None, "Invalid callbackURL: expected a string"),
        ),
        (
            {"callbackURL": []},  # truthy in JavaScript
            {},
            ("callbackURL", 400, None, "Invalid callbackURL: expected a string"),
        ),
        (
            {"redirectTo": 42},
            {},
            ("redirectTo", 400, None, "Invalid redirectURL: expected a string"),
        ),
        (
            {"errorCallbackURL": True},
            {},
            ("errorCallbackURL", 400, None, "Invalid errorCallbackURL: expected a string"),
        ),
        (
            {"newUserCallbackURL": ["/a"]},
            {},
            ("newUserCallbackURL", 400, None, "Invalid newUserCallbackURL: expected a string"),
        ),
        # falsy in JavaScript: not checked
        ({"callbackURL": None, "redirectTo": 0, "errorCallbackURL": False}, {}, None),
        ({"newUserCallbackURL": ""}, {}, None),
        # a body that is not an object has no fields
        (["https://evil.com"], {}, None),
    ],
)
def test_check_redirect_fields(
    body: object,
    query: Mapping[str, object],
    expected: tuple[str, int, str | None, str] | None,
) -> None:
    problem = check_redirect_fields(body, query, TRUSTED)  # type: ignore[arg-type]
    if expected is None:
        assert problem is None
    else:
        assert problem == RedirectProblem(*expected)


def test_repeated_query_callback_url_is_not_a_string() -> None:
    """better-call turns a repeated query parameter into an array: 400, not a crash."""
    query = QueryParams("callbackURL=/a&callbackURL=/b")
    assert check_redirect_fields(None, query, TRUSTED) == RedirectProblem(
        "callbackURL", 400, None, "Invalid callbackURL: expected a string"
    )
    assert check_redirect_fields(None, QueryParams("callbackURL=/a"), TRUSTED) is None
    assert check_redirect_fields(None, QueryParams("callbackURL=//evil.com"), TRUSTED) == (
        RedirectProblem("callbackURL", 403, Code.INVALID_CALLBACK_URL, "Invalid callbackURL")
    )
    assert check_redirect_fields(None, QueryParams(""), TRUSTED) is None


# ---------------------------------------------------------- Origin / CSRF (§6.4, S19)

MISSING = OriginProblem(403, Code.MISSING_OR_NULL_ORIGIN, "Missing or null Origin")
INVALID = OriginProblem(403, Code.INVALID_ORIGIN, "Invalid origin")
CROSS_SITE = OriginProblem(
    403,
    Code.CROSS_SITE_NAVIGATION_LOGIN_BLOCKED,
    "Cross-site navigation login blocked. This request appears to be a CSRF attack.",
)

COOKIE = {"cookie": "better-auth.session_token=abc.def"}
UNRELATED_COOKIE = {"cookie": "theme=dark"}
GOOD_ORIGIN = {"origin": APP}
EVIL_ORIGIN = {"origin": "https://evil.com"}
NAVIGATE_CROSS_SITE = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}


def h(*parts: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in parts:
        out.update(part)
    return out


RULE_A: Sequence[tuple[str, str, dict[str, str], OriginProblem | None]] = [
    # without any Cookie header (bearer, curl, server-to-server): not checked
    ("no cookie, no origin", "POST", {}, None),
    ("no cookie, evil origin", "POST", h(EVIL_ORIGIN), None),
    ("bearer only", "POST", {"authorization": "Bearer x.y"}, None),
    # any Cookie header triggers it, even an unrelated cookie (errata 6)
    ("cookie, no origin", "POST", h(COOKIE), MISSING),
    ("unrelated cookie, no origin", "POST", h(UNRELATED_COOKIE), MISSING),
    ("empty cookie header, no origin", "POST", {"cookie": ""}, MISSING),
    ("cookie, origin null", "POST", h(COOKIE, {"origin": "null"}), MISSING),
    ("cookie, empty origin", "POST", h(COOKIE, {"origin": ""}), MISSING),
    ("cookie, evil origin", "POST", h(COOKIE, EVIL_ORIGIN), INVALID),
    ("unrelated cookie, evil origin", "POST", h(UNRELATED_COOKIE, EVIL_ORIGIN), INVALID),
    ("cookie, trusted origin", "POST", h(COOKIE, GOOD_ORIGIN), None),
    ("cookie, trusted origin + slash", "POST", h(COOKIE, {"origin": f"{APP}/"}), None),
    ("cookie, configured origin", "POST", h(COOKIE, {"origin": "https://trusted.com"}), None),
    ("cookie, relative origin", "POST", h(COOKIE, {"origin": "/"}), INVALID),
    ("cookie, suffix trick", "POST", h(COOKIE, {"origin": f"{APP}.evil.com"}), INVALID),
    ("cookie, userinfo trick", "POST", h(COOKIE, {"origin": f"{APP}@evil.com"}), INVALID),
    # the Referer stands in for a missing Origin (errata 6: a trusted Referer alone passes)
    ("cookie, trusted referer", "POST", h(COOKIE, {"referer": f"{APP}/sign-in?x=1"}), None),
    ("cookie, evil referer", "POST", h(COOKIE, {"referer": "https://evil.com/p"}), INVALID),
    ("cookie, empty origin, trusted referer", "POST",
     h(COOKIE, {"origin": "", "referer": f"{APP}/"}), None),
    # but not for a literal "null" Origin, nor over an Origin that is present
    ("cookie, null origin, trusted referer", "POST",
     h(COOKIE, {"origin": "null", "referer": f"{APP}/"}), MISSING),
    ("cookie, evil origin, trusted referer", "POST",
     h(COOKIE, EVIL_ORIGIN, {"referer": f"{APP}/"}), INVALID),
    ("cookie, trusted origin, evil referer", "POST",
     h(COOKIE, GOOD_ORIGIN, {"referer": "https://evil.com/"}), None),
    # every state-changing method; the safe ones are skipped
    ("PUT", "PUT", h(COOKIE, EVIL_ORIGIN), INVALID),
    ("PATCH", "PATCH", h(COOKIE), MISSING),
    ("DELETE", "DELETE", h(COOKIE, EVIL_ORIGIN), INVALID),
    ("GET", "GET", h(COOKIE, EVIL_ORIGIN), None),
    ("HEAD", "HEAD", h(COOKIE), None),
    ("OPTIONS", "OPTIONS", h(COOKIE, EVIL_ORIGIN), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [case[1:] for case in RULE_A],
    ids=[case[0] for case in RULE_A],
)
def test_rule_a_origin_check(
    method: str, headers: dict[str, str], expected: OriginProblem | None
) -> None:
    """S19: a state-changing request authenticated by cookie needs a trusted Origin
    (or Referer); rule A of spec §6.4 with errata 6."""
    assert check_origin(method, headers, TRUSTED) == expected


RULE_B: Sequence[tuple[str, dict[str, str], OriginProblem | None]] = [
    # cookies present: rule A
    ("cookie, no origin", h(COOKIE), MISSING),
    ("unrelated cookie, no origin", h(UNRELATED_COOKIE), MISSING),
    ("cookie, evil origin", h(COOKIE, EVIL_ORIGIN), INVALID),
    ("cookie, trusted origin", h(COOKIE, GOOD_ORIGIN), None),
    ("cookie, trusted referer", h(COOKIE, {"referer": f"{APP}/login"}), None),
    # Fetch Metadata: a cross-site navigation is refused even with a trusted Origin
    ("cross-site navigate", h(NAVIGATE_CROSS_SITE), CROSS_SITE),
    ("cross-site navigate, trusted origin", h(NAVIGATE_CROSS_SITE, GOOD_ORIGIN), CROSS_SITE),
    ("cross-site navigate, trusted referer",
     h(NAVIGATE_CROSS_SITE, {"referer": f"{APP}/"}), CROSS_SITE),
    ("cross-site navigate, evil origin", h(NAVIGATE_CROSS_SITE, EVIL_ORIGIN), CROSS_SITE),
    ("cross-site navigate, dest document",
     h(NAVIGATE_CROSS_SITE, {"sec-fetch-dest": "document"}, GOOD_ORIGIN), CROSS_SITE),
    ("Cross-Site Navigate (case)",
     {"sec-fetch-site": "Cross-Site", "sec-fetch-mode": " Navigate "}, CROSS_SITE),
    # other Fetch Metadata: the Origin is required even without cookies
    ("cors, no origin (Node fetch)", {"sec-fetch-mode": "cors"}, MISSING),
    ("cors, trusted origin", h({"sec-fetch-mode": "cors"}, GOOD_ORIGIN), None),
    ("cors, evil origin", h({"sec-fetch-mode": "cors"}, EVIL_ORIGIN), INVALID),
    ("same-origin navigate, trusted origin",
     h({"sec-fetch-site": "same-origin", "sec-fetch-mode": "navigate"}, GOOD_ORIGIN), None),
    ("same-origin navigate, no origin",
     {"sec-fetch-site": "same-origin", "sec-fetch-mode": "navigate"}, MISSING),
    ("cross-site cors, trusted origin",
     h({"sec-fetch-site": "cross-site", "sec-fetch-mode": "cors"}, GOOD_ORIGIN), None),
    ("cross-site cors, evil origin",
     h({"sec-fetch-site": "cross-site", "sec-fetch-mode": "cors"}, EVIL_ORIGIN), INVALID),
    ("dest only, trusted referer", h({"sec-fetch-dest": "empty"}, {"referer": f"{APP}/"}), None),
    ("site only, null origin", h({"sec-fetch-site": "cross-site"}, {"origin": "null"}), MISSING),
    ("blank metadata is no metadata", {"sec-fetch-site": " ", "sec-fetch-mode": ""}, None),
    # no cookies, no metadata: an Origin or Referer that is sent must be trusted
    ("trusted origin", h(GOOD_ORIGIN), None),
    ("evil origin", h(EVIL_ORIGIN), INVALID),
    ("null origin (sandboxed form)", {"origin": "null"}, MISSING),
    ("evil referer", {"referer": "https://evil.com/form"}, INVALID),
    ("trusted referer", {"referer": f"{APP}/form"}, None),
    # nothing at all (curl, server-to-server): allowed
    ("nothing", {}, None),
    ("bearer only", {"authorization": "Bearer x.y"}, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "expected"),
    [case[1:] for case in RULE_B],
    ids=[case[0] for case in RULE_B],
)
def test_rule_b_form_csrf(headers: dict[str, str], expected: OriginProblem | None) -> None:
    """S19: login CSRF on sign-in/sign-up, which have no session cookie to protect yet:
    Fetch Metadata and the Origin decide (rule B of spec §6.4, errata 6)."""
    assert check_form_csrf("POST", headers, TRUSTED) == expected


def test_rule_b_skips_safe_methods() -> None:
    """S19: GET never changes state, so no CSRF check applies to it."""
    for method in ("GET", "HEAD", "OPTIONS"):
        assert check_form_csrf(method, h(NAVIGATE_CROSS_SITE), TRUSTED) is None
        assert check_form_csrf(method, h(COOKIE), TRUSTED) is None


def test_starlette_headers_are_case_insensitive() -> None:
    """S19: the checks read Starlette's Headers whatever case the client used."""
    sent = {
        "Cookie": "theme=dark",
        "ORIGIN": "https://evil.com",
        "Sec-Fetch-Site": "cross-site",
        "Sec-Fetch-Mode": "navigate",
    }
    headers = Headers(headers=sent)
    assert check_origin("POST", headers, TRUSTED) == INVALID
    assert check_form_csrf("POST", headers, TRUSTED) == INVALID  # cookies: rule A
    no_cookie = Headers(headers={k: v for k, v in sent.items() if k != "Cookie"})
    assert check_form_csrf("POST", no_cookie, TRUSTED) == CROSS_SITE
    assert check_origin("POST", no_cookie, TRUSTED) is None


def test_problems_carry_the_error_table_wording() -> None:
    """S19: the refusals use better-auth's codes and messages (spec §2.1)."""
    assert (MISSING.status, MISSING.code, MISSING.message) == (
        403,
        Code.MISSING_OR_NULL_ORIGIN,
        "Missing or null Origin",
    )
    assert INVALID.message == "Invalid origin"
    assert CROSS_SITE.message.startswith("Cross-site navigation login blocked.")
