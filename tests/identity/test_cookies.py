"""bastion.identity.cookies against better-auth 1.7's golden cookies (spec §5.1 to §5.4)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bastion.identity.cookies import (
    MAX_CHUNKS,
    CookieAttributes,
    CookieNames,
    chunk_cookie,
    cookie_name,
    decode_cookie_cache,
    decode_cookie_value,
    encode_cookie_cache,
    expire_cookie,
    join_chunks,
    parse_cookie_header,
    serialize_cookie,
    sign_cookie_value,
    unsign_cookie_value,
)
from bastion.identity.crypto import hmac_sign

SECRET = "a-very-long-secret-value-for-golden-tests-0123456789"

# better-auth-golden/run1.out: sign-up over http
GOLDEN_TOKEN = "BzsyjvPniWKwf687dwkxqmjH70vi4Ay3"
GOLDEN_SIGNED = (
    "BzsyjvPniWKwf687dwkxqmjH70vi4Ay3.%2FcSbVrViBEjvNBmwD%2BQDOlBp3x9yC6IMabjcUCCASsE%3D"
)
GOLDEN_SET_COOKIE = (
    f"better-auth.session_token={GOLDEN_SIGNED}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"
)
# run1.out: sign-in with rememberMe=false
GOLDEN_DONT_REMEMBER = (
    "better-auth.dont_remember=true.boOQICKF3o%2FNgAfHvxgN6Lzi9n5Q5a67CkoTMjRiZko%3D; "
    "Path=/; HttpOnly; SameSite=Lax"
)
# run2.out: https baseURL, cookie cache enabled (compact, maxAge 300)
GOLDEN_SECURE_SET_COOKIE = (
    "__Secure-better-auth.session_token=NtFZsEdfz4Kc7mmWoh5N9fxnd6xIogkN.j4YZ2uKxPLUAfLBgo3VFz"
    "u01x%2Fwmp%2Bwy%2BHwQBi4gYfE%3D; Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=Lax"
)
GOLDEN_EXPIRED = (
    "__Secure-better-auth.session_token=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
)
GOLDEN_SESSION_DATA = (
    "eyJzZXNzaW9uIjp7InNlc3Npb24iOnsiZXhwaXJlc0F0IjoiMjAyNi0xMS0zMFQwMjo1NzoxMi40NzJaIiwidG9rZW"
    "4iOiJOdEZac0VkZno0S2M3bW1Xb2g1TjlmeG5kNnhJb2drTiIsImNyZWF0ZWRBdCI6IjIwMjYtMTEtMjNUMDI6NTc6"
    "MTIuNDcyWiIsInVwZGF0ZWRBdCI6IjIwMjYtMTEtMjNUMDI6NTc6MTIuNDcyWiIsImlwQWRkcmVzcyI6IjEwLjAuMC"
    "4xIiwidXNlckFnZW50IjoiIiwidXNlcklkIjoiVE9vT3dtT0V2d09yMWwwb0VuOEN4eTJTb0h4c3lMUGoiLCJpZCI6"
    "Ikl2dXpmVFpMcmdoZTFmaE9tSVlGZU5PczNEY00zRXpnIn0sInVzZXIiOnsibmFtZSI6IkFsaWNlIiwiZW1haWwiOi"
    "JhbGljZUBleGFtcGxlLmNvbSIsImVtYWlsVmVyaWZpZWQiOmZhbHNlLCJjcmVhdGVkQXQiOiIyMDI2LTExLTIzVDAy"
    "OjU3OjEyLjQ3MFoiLCJ1cGRhdGVkQXQiOiIyMDI2LTExLTIzVDAyOjU3OjEyLjQ3MFoiLCJ0d29GYWN0b3JFbmFibG"
    "VkIjpmYWxzZSwiaWQiOiJUT29Pd21PRXZ3T3IxbDBvRW44Q3h5MlNvSHhzeUxQaiJ9LCJ1cGRhdGVkQXQiOjE3OTU0"
    "MDI2MzI0NzUsInZlcnNpb24iOiIxIn0sImV4cGlyZXNBdCI6MTc5NTQwMjkzMjQ3NSwic2lnbmF0dXJlIjoiRGFfTE"
    "0xdjZaeEVlRm5SVTMwY2d0ZUtRaWtvWDVFbU4yemo5cHhYaE91RSJ9"
)
GOLDEN_CACHE_UPDATED_AT = 1795402632475
GOLDEN_CACHE_EXPIRES_AT = 1795402932475
GOLDEN_CACHE_SESSION: dict[str, Any] = {
    "expiresAt": "2026-11-30T02:57:12.472Z",
    "token": "NtFZsEdfz4Kc7mmWoh5N9fxnd6xIogkN",
    "createdAt": "2026-11-23T02:57:12.472Z",
    "updatedAt": "2026-11-23T02:57:12.472Z",
    "ipAddress": "10.0.0.1",
    "userAgent": "",
    "userId": "TOoOwmOEvwOr1l0oEn8Cxy2SoHxsyLPj",
    "id": "IvuzfTZLrghe1fhOmIYFeNOs3DcM3Ezg",
}
GOLDEN_CACHE_USER: dict[str, Any] = {
    "name": "Alice",
    "email": "alice@example.com",
    "emailVerified": False,
    "createdAt": "2026-11-23T02:57:12.470Z",
    "updatedAt": "2026-11-23T02:57:12.470Z",
    "twoFactorEnabled": False,
    "id": "TOoOwmOEvwOr1l0oEn8Cxy2SoHxsyLPj",
}


def b64url_json(value: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def to_b64url(data: Any) -> str:
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- names -----------------------------------------------------------------------------------


def test_cookie_names() -> None:
    assert cookie_name() == "better-auth.session_token"
    assert cookie_name(secure=True) == "__Secure-better-auth.session_token"
    assert cookie_name("my-app", "session_data") == "my-app.session_data"
    assert cookie_name("better-auth", "two_factor", True) == "__Secure-better-auth.two_factor"


@pytest.mark.parametrize(("prefix", "name"), [("", "x"), ("a", ""), ("my app", "x"), ("a;b", "x")])
def test_cookie_name_refuses_what_cannot_be_a_cookie_name(prefix: str, name: str) -> None:
    with pytest.raises(ValueError):
        cookie_name(prefix, name)


def test_cookie_names_for_a_configuration() -> None:
    names = CookieNames.create(secure=True)
    assert names.session_token == "__Secure-better-auth.session_token"
    assert names.session_data == "__Secure-better-auth.session_data"
    assert names.dont_remember == "__Secure-better-auth.dont_remember"
    assert names.account_data == "__Secure-better-auth.account_data"
    assert CookieNames.create("app").session_token == "app.session_token"


# --- signed values ---------------------------------------------------------------------------


def test_sign_cookie_value_matches_the_golden_cookie() -> None:
    assert sign_cookie_value(SECRET, GOLDEN_TOKEN) == GOLDEN_SIGNED


def test_golden_set_cookie_lines() -> None:
    session = CookieAttributes(max_age=604800)
    assert (
        serialize_cookie(cookie_name(), sign_cookie_value(SECRET, GOLDEN_TOKEN), session)
        == GOLDEN_SET_COOKIE
    )
    secure = CookieAttributes(max_age=604800, secure=True)
    name = cookie_name(secure=True)
    value = sign_cookie_value(SECRET, "NtFZsEdfz4Kc7mmWoh5N9fxnd6xIogkN")
    assert serialize_cookie(name, value, secure) == GOLDEN_SECURE_SET_COOKIE
    browser_session = CookieAttributes(max_age=None)
    assert (
        serialize_cookie(
            cookie_name(name="dont_remember"), sign_cookie_value(SECRET, "true"), browser_session
        )
        == GOLDEN_DONT_REMEMBER
    )
    assert expire_cookie(name, secure) == GOLDEN_EXPIRED


def test_unsign_reads_the_golden_cookie_encoded_or_not() -> None:
    assert unsign_cookie_value(SECRET, GOLDEN_SIGNED) == GOLDEN_TOKEN
    # errata 8: a value that is not URI-encoded is accepted too
    plain = "BzsyjvPniWKwf687dwkxqmjH70vi4Ay3./cSbVrViBEjvNBmwD+QDOlBp3x9yC6IMabjcUCCASsE="
    assert unsign_cookie_value(SECRET, plain) == GOLDEN_TOKEN


@pytest.mark.parametrize("value", ["true", "a.b.c", "2fa-abc", "é ü/+=", "x" * 300])
def test_sign_and_unsign_round_trip(value: str) -> None:
    signed = sign_cookie_value(SECRET, value)
    assert unsign_cookie_value(SECRET, signed) == value


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


PLAIN_SIGNATURE = hmac_sign(SECRET, GOLDEN_TOKEN)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_flip(GOLDEN_SIGNED, 0), id="tampered-token"),
        pytest.param(_flip(GOLDEN_SIGNED, 40), id="tampered-signature"),
        pytest.param(GOLDEN_TOKEN + "x." + PLAIN_SIGNATURE, id="other-value"),
        pytest.param(GOLDEN_TOKEN, id="unsigned"),
        pytest.param(f"{GOLDEN_TOKEN}.{PLAIN_SIGNATURE[:-1]}", id="43-chars"),
        pytest.param(f"{GOLDEN_TOKEN}.{PLAIN_SIGNATURE}A", id="45-chars"),
        pytest.param(f"{GOLDEN_TOKEN}.{PLAIN_SIGNATURE[:-1]}A", id="no-trailing-equals"),
        pytest.param(
            f"{GOLDEN_TOKEN}.{PLAIN_SIGNATURE.replace('/', '_').replace('+', '-')}",
            id="url-safe-signature",
        ),
        pytest.param(f".{PLAIN_SIGNATURE}", id="empty-value"),
        pytest.param("", id="empty"),
        pytest.param(".", id="dot"),
        pytest.param(f"{GOLDEN_TOKEN}%zz.{PLAIN_SIGNATURE}", id="malformed-escape"),
    ],
)
def test_unsign_refuses_tampered_or_malformed_values(raw: str) -> None:
    assert unsign_cookie_value(SECRET, raw) is None


def test_unsign_refuses_another_secret() -> None:
    assert unsign_cookie_value(SECRET + "x", GOLDEN_SIGNED) is None


def test_unsign_splits_at_the_last_dot() -> None:
    signed = sign_cookie_value(SECRET, "a.b")
    assert signed.startswith("a.b.")
    assert unsign_cookie_value(SECRET, signed) == "a.b"


def test_decode_cookie_value_is_better_calls_try_decode() -> None:
    assert decode_cookie_value("a%2Fb%3D") == "a/b="
    assert decode_cookie_value("plain+value") == "plain+value"  # no % → as is; + stays +
    assert decode_cookie_value("%E2%9C%93") == "\u2713"
    assert decode_cookie_value("100%") == "100%"  # decodeURIComponent throws → raw
    assert decode_cookie_value("%zz%41") == "%zz%41"
    assert decode_cookie_value("%FF") == "%FF"  # not UTF-8 → raw
    assert decode_cookie_value("%ED%A0%80") == "%ED%A0%80"  # an encoded surrogate → raw
    # A signature's escapes beside others: every escape decoded, or none (a stray %).
    assert decode_cookie_value("a%2Bb%2F%3D%E2%9C%93") == "a+b/=\u2713"
    assert decode_cookie_value("a%2B%zz") == "a%2B%zz"
    assert decode_cookie_value("a%2b%2f%3d") == "a+/="  # lower-case hex, as JS accepts it
    assert decode_cookie_value("%252B") == "%2B"  # an escaped %, decoded once


# --- the Cookie header -----------------------------------------------------------------------


def test_parse_cookie_header_basic() -> None:
    header = f"better-auth.session_token={GOLDEN_SIGNED}; theme=dark;lang=en"
    assert parse_cookie_header(header) == {
        "better-auth.session_token": GOLDEN_SIGNED,  # raw, not decoded
        "theme": "dark",
        "lang": "en",
    }


def test_parse_cookie_header_first_duplicate_wins() -> None:
    header = "a=first; b=1; a=second; a=third"
    assert parse_cookie_header(header) == {"a": "first", "b": "1"}


def test_parse_cookie_header_accepts_values_that_are_not_encoded() -> None:
    plain = "tok./cSbVrViBEjvNBmwD+QDOlBp3x9yC6IMabjcUCCASsE="
    header = f'x={plain}; y=a=b=c; z="quoted value"; w= spaced ; u=caf\u00e9'
    assert parse_cookie_header(header) == {
        "x": plain,
        "y": "a=b=c",
        "z": "quoted value",
        "w": "spaced",
        "u": "caf\u00e9",
    }


def test_parse_cookie_header_skips_segments_without_equals() -> None:
    assert parse_cookie_header("flag; a=1; other; b=2") == {"a": "1", "b": "2"}
    assert parse_cookie_header("") == {}
    assert parse_cookie_header("no-equals-at-all") == {}
    assert parse_cookie_header("a=") == {"a": ""}
    assert parse_cookie_header(" ; ; a=1 ;") == {"a": "1"}


# --- Set-Cookie ------------------------------------------------------------------------------


def test_serialize_writes_attributes_in_better_calls_order() -> None:
    attrs = CookieAttributes(
        max_age=60,
        path="/api",
        domain="example.com",
        http_only=True,
        secure=True,
        same_site="none",
        partitioned=True,
        expires=datetime(2026, 11, 30, 2, 56, 39, tzinfo=UTC),
    )
    assert serialize_cookie("n", "v", attrs) == (
        "n=v; Max-Age=60; Domain=example.com; Path=/api; Expires=Mon, 30 Nov 2026 02:56:39 GMT; "
        "HttpOnly; Secure; SameSite=None; Partitioned"
    )


def test_serialize_minimal_and_same_site_case() -> None:
    attrs = CookieAttributes(max_age=None, path=None, http_only=False, same_site=None)
    assert serialize_cookie("n", "", attrs) == "n="
    assert CookieAttributes(max_age=1, same_site="strict").same_site == "Strict"
    shouted = CookieAttributes(1, same_site="LAX")  # type: ignore[arg-type]
    assert serialize_cookie("n", "v", shouted).endswith("SameSite=Lax")


def test_expires_is_written_in_gmt() -> None:
    local = datetime(2026, 11, 30, 4, 56, 39, tzinfo=timezone(timedelta(hours=2)))
    line = serialize_cookie("n", "v", CookieAttributes(None, expires=local))
    assert "Expires=Mon, 30 Nov 2026 02:56:39 GMT" in line


def test_secure_and_host_prefixes_imply_their_attributes() -> None:
    attrs = CookieAttributes(max_age=10, domain="example.com", path="/x")
    assert serialize_cookie("__Secure-a", "v", attrs) == (
        "__Secure-a=v; Max-Age=10; Domain=example.com; Path=/x; HttpOnly; Secure; SameSite=Lax"
    )
    assert serialize_cookie("__Host-a", "v", attrs) == (
        "__Host-a=v; Max-Age=10; Path=/; HttpOnly; Secure; SameSite=Lax"
    )


def test_expire_keeps_the_attributes() -> None:
    attrs = CookieAttributes(max_age=300, domain="example.com", secure=True)
    assert expire_cookie("better-auth.session_data", attrs) == (
        "better-auth.session_data=; Max-Age=0; Domain=example.com; Path=/; HttpOnly; Secure; "
        "SameSite=Lax"
    )
    assert (
        expire_cookie("x", CookieAttributes(None))
        == "x=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("a b", "v"), ("a;b", "v"), ("", "v"), ("a", "v;w"), ("a", "v w"), ("a", 'v"'), ("a", "é")],
)
def test_serialize_refuses_header_breaking_names_and_values(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        serialize_cookie(name, value, CookieAttributes(None))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_age": -1},
        {"max_age": 34_560_001},
        {"max_age": 1, "same_site": "sometimes"},
        {"max_age": 1, "expires": datetime(2030, 1, 1)},
        {"max_age": 1, "path": "/a; Secure"},
        {"max_age": 1, "domain": "example.com\r\nX-Evil: 1"},
        {"max_age": 1, "domain": "exämple.com"},
        {"max_age": True},
    ],
)
def test_cookie_attributes_check_their_input(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CookieAttributes(**kwargs)


# --- cookie cache (compact) ------------------------------------------------------------------


def test_encode_cookie_cache_reproduces_the_golden_value() -> None:
    value = encode_cookie_cache(
        SECRET, GOLDEN_CACHE_SESSION, GOLDEN_CACHE_USER, 300, GOLDEN_CACHE_UPDATED_AT
    )
    assert value == GOLDEN_SESSION_DATA


def test_decode_cookie_cache_reads_the_golden_value() -> None:
    payload = decode_cookie_cache(SECRET, GOLDEN_SESSION_DATA, GOLDEN_CACHE_UPDATED_AT)
    assert payload == {
        "session": GOLDEN_CACHE_SESSION,
        "user": GOLDEN_CACHE_USER,
        "updatedAt": GOLDEN_CACHE_UPDATED_AT,
        "version": "1",
    }
    assert list(payload) == ["session", "user", "updatedAt", "version"]


def test_cookie_cache_layout() -> None:
    value = encode_cookie_cache(SECRET, {"id": "s"}, {"id": "u"}, 60, 1_000)
    assert "=" not in value
    data = b64url_json(value)
    assert list(data) == ["session", "expiresAt", "signature"]
    assert data["expiresAt"] == 61_000
    signed = (
        '{"session":{"id":"s"},"user":{"id":"u"},"updatedAt":1000,"version":"1","expiresAt":61000}'
    )
    assert data["signature"] == hmac_sign(SECRET, signed, urlsafe=True)


def test_cookie_cache_expires_after_max_age() -> None:
    value = encode_cookie_cache(SECRET, {"id": "s"}, {"id": "u"}, 300, 1_000)
    assert decode_cookie_cache(SECRET, value, 301_000) is not None  # better-auth: expiresAt < now
    assert decode_cookie_cache(SECRET, value, 301_001) is None


def test_cookie_cache_round_trips_unicode_and_a_custom_version() -> None:
    user = {"id": "u", "name": "Zoë 日本 😀", "emailVerified": True, "image": None}
    value = encode_cookie_cache(SECRET, {"id": "s"}, user, 60, 0, version="2")
    payload = decode_cookie_cache(SECRET, value, 0)
    assert payload is not None
    assert payload["user"] == user
    assert payload["version"] == "2"
    # JSON.stringify keeps non-ASCII as is: the signed text holds the raw characters.
    assert "Zoë" in base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()


def _reencode(value: str, change: Any) -> str:
    data = b64url_json(value)
    change(data)
    return to_b64url(data)


def _set_name(data: Any) -> None:
    data["session"]["user"]["name"] = "Mallory"


def _extend(data: Any) -> None:
    data["expiresAt"] += 1


def _resign_with_other_secret(data: Any) -> None:
    signed = json.dumps({**data["session"], "expiresAt": data["expiresAt"]}, separators=(",", ":"))
    data["signature"] = hmac_sign("not-the-secret", signed, urlsafe=True)


def _drop_signature(data: Any) -> None:
    del data["signature"]


@pytest.mark.parametrize("change", [_set_name, _extend, _resign_with_other_secret, _drop_signature])
def test_cookie_cache_refuses_tampering(change: Any) -> None:
    tampered = _reencode(GOLDEN_SESSION_DATA, change)
    assert decode_cookie_cache(SECRET, tampered, GOLDEN_CACHE_UPDATED_AT) is None


def test_cookie_cache_refuses_another_secret() -> None:
    assert decode_cookie_cache(SECRET + "x", GOLDEN_SESSION_DATA, GOLDEN_CACHE_UPDATED_AT) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "!!!",
        "a",
        to_b64url([1, 2]),
        to_b64url({"session": "x", "expiresAt": 1, "signature": "s"}),
        to_b64url({"session": {}, "expiresAt": "1", "signature": "s"}),
        to_b64url({"session": {}, "expiresAt": True, "signature": "s"}),
        base64.urlsafe_b64encode(b"\xff\xfe not json").decode(),
        base64.urlsafe_b64encode(b'{"session":{},"expiresAt":NaN,"signature":"s"}').decode(),
    ],
)
def test_cookie_cache_refuses_garbage(value: str) -> None:
    assert decode_cookie_cache(SECRET, value, 0) is None


def test_cookie_cache_needs_session_and_user_objects() -> None:
    now = 1_000
    data: dict[str, Any] = {"session": {"version": "1"}, "expiresAt": now + 1}
    signed = json.dumps({**data["session"], "expiresAt": data["expiresAt"]}, separators=(",", ":"))
    data["signature"] = hmac_sign(SECRET, signed, urlsafe=True)
    assert decode_cookie_cache(SECRET, to_b64url(data), now) is None


def _signed_cache(payload: dict[str, Any], expires_at: int, body: Any) -> str:
    """A session_data value for `payload`, signed as better-auth signs it, its body written
    by `body(payload, expires_at, signature)`."""
    signed = json.dumps(
        {**payload, "expiresAt": expires_at}, separators=(",", ":"), ensure_ascii=False
    )
    signature = hmac_sign(SECRET, signed, urlsafe=True)
    raw = body(payload, expires_at, signature).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_PAYLOAD: dict[str, Any] = {"session": {"id": "s"}, "user": {"name": "Zoë"}, "updatedAt": 0}


@pytest.mark.parametrize(
    "body",
    [
        # Spaces, another key order, escaped characters: not JSON.stringify's own text, but
        # the same values, so the signature still holds.
        lambda p, e, s: json.dumps({"signature": s, "expiresAt": e, "session": p}, indent=1),
        lambda p, e, s: json.dumps({"session": p, "expiresAt": e, "signature": s}),
        lambda p, e, s: json.dumps(  # "ë" written as \u00eb
            {"session": p, "expiresAt": e, "signature": s}, separators=(",", ":")
        ),
        # JSON.stringify's own text after a byte-order mark, which TextDecoder drops.
        lambda p, e, s: (
            "\ufeff"
            + json.dumps(
                {"session": p, "expiresAt": e, "signature": s},
                separators=(",", ":"),
                ensure_ascii=False,
            )
        ),
    ],
)
def test_cookie_cache_accepts_any_layout_of_a_signed_payload(body: Any) -> None:
    value = _signed_cache(_PAYLOAD, 5_000, body)
    assert decode_cookie_cache(SECRET, value, 0) == _PAYLOAD


def test_cookie_cache_with_an_expires_at_in_its_payload() -> None:
    # {...payload, expiresAt}: the payload's own key keeps its place and takes the new value.
    payload = {"session": {"id": "s"}, "expiresAt": 1, "user": {"id": "u"}}
    value = _signed_cache(
        payload,
        5_000,
        lambda p, e, s: json.dumps(
            {"session": p, "expiresAt": e, "signature": s}, separators=(",", ":")
        ),
    )
    assert decode_cookie_cache(SECRET, value, 0) == payload
    assert decode_cookie_cache(SECRET, value, 5_001) is None


def test_cookie_cache_reads_only_what_was_signed() -> None:
    # The text before `,"expiresAt":` is what the fast check verifies. A member slipped in
    # beside the payload, a second payload object, or a payload cut short must never be read
    # as the session: either the genuine payload or nothing.
    genuine = decode_cookie_cache(SECRET, GOLDEN_SESSION_DATA, GOLDEN_CACHE_UPDATED_AT)
    text = json.dumps(b64url_json(GOLDEN_SESSION_DATA), separators=(",", ":"), ensure_ascii=False)
    forged = [
        text.replace(',"expiresAt":', ',"user":{"id":"mallory"},"expiresAt":', 1),
        text.replace('{"session":{', '{"session":{"user":{"id":"mallory"}},"session":{', 1),
        text.replace('},"updatedAt":', '},"user":{"id":"mallory"},"updatedAt":', 1),
        text.replace('"},"expiresAt":', '"}},"expiresAt":', 1),
    ]
    for body in forged:
        assert body != text
        value = base64.urlsafe_b64encode(body.encode()).rstrip(b"=").decode()
        read = decode_cookie_cache(SECRET, value, GOLDEN_CACHE_UPDATED_AT)
        assert read is None or read == genuine, body
        assert "mallory" not in json.dumps(read)


def test_cookie_cache_max_age_must_be_positive() -> None:
    with pytest.raises(ValueError):
        encode_cookie_cache(SECRET, {}, {}, 0, 0)


# --- chunking --------------------------------------------------------------------------------


def test_a_small_value_is_one_cookie() -> None:
    assert chunk_cookie("n", "abc") == [("n", "abc")]
    assert chunk_cookie("n", "x" * 4050) == [("n", "x" * 4050)]


def test_chunk_round_trip() -> None:
    value = encode_cookie_cache(
        SECRET, GOLDEN_CACHE_SESSION, {**GOLDEN_CACHE_USER, "bio": "b" * 9000}, 300, 0
    )
    chunks = chunk_cookie("better-auth.session_data", value)
    assert [name for name, _ in chunks] == [f"better-auth.session_data.{i}" for i in range(4)]
    assert all(len(part) <= 4050 for _, part in chunks)
    header = "; ".join(f"{name}={part}" for name, part in reversed(chunks))
    cookies = parse_cookie_header(f"other=1; {header}")
    joined = join_chunks(cookies, "better-auth.session_data")
    assert joined == value
    assert decode_cookie_cache(SECRET, joined, 0) is not None


def test_chunks_are_joined_by_numeric_index() -> None:
    cookies = {f"n.{i}": str(i) + "|" for i in range(12)}
    assert join_chunks(cookies, "n") == "".join(f"{i}|" for i in range(12))


def test_join_prefers_the_whole_cookie_and_ignores_strangers() -> None:
    assert join_chunks({"n": "whole", "n.0": "part"}, "n") == "whole"
    assert join_chunks({"n": "", "n.0": "part"}, "n") == "part"
    assert join_chunks({"n.x": "a", "n.-1": "b", "nn.0": "c", "n.0.1": "d"}, "n") is None
    assert join_chunks({}, "n") is None


def test_chunking_stops_at_100_chunks() -> None:
    assert len(chunk_cookie("n", "x" * (10 * MAX_CHUNKS), limit=10)) == MAX_CHUNKS
    with pytest.raises(ValueError):
        chunk_cookie("n", "x" * (10 * MAX_CHUNKS + 1), limit=10)
    with pytest.raises(ValueError):
        chunk_cookie("n", "x", limit=0)
