"""better-auth's cookies, byte-compatible with better-auth 1.7 and better-call (spec §5.1 to §5.4).

* Names: `cookie_name`, `CookieNames` (`[__Secure-]<prefix>.<name>`).
* Signed values (session_token, dont_remember, state, two_factor, trust_device):
  `sign_cookie_value`, `unsign_cookie_value`.
* Reading the `Cookie` header: `parse_cookie_header` (lenient, first duplicate wins, raw values)
  and `decode_cookie_value` (better-call's "decode when it holds %").
* Writing `Set-Cookie`: `CookieAttributes`, `serialize_cookie`, `expire_cookie`.
* The session-data cookie cache, `compact` strategy: `encode_cookie_cache`,
  `decode_cookie_cache` (`verify_cookie_cache` without the expiry check), and the chunking
  of large values: `chunk_cookie`, `join_chunks`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final, Literal, Self
from urllib.parse import quote, unquote, unquote_to_bytes

import orjson

from bastion.identity.crypto import (
    HmacKey,
    decode_base64_any,
    hmac_sha256,
    hmac_sign,
    hmac_verify,
)

__all__ = [
    "CACHE_VERSION",
    "CHUNK_LIMIT",
    "MAX_CHUNKS",
    "SECURE_PREFIX",
    "CookieAttributes",
    "CookieNames",
    "SameSite",
    "chunk_cookie",
    "cookie_name",
    "decode_cookie_cache",
    "decode_cookie_value",
    "encode_cookie_cache",
    "expire_cookie",
    "join_chunks",
    "parse_cookie_header",
    "serialize_cookie",
    "sign_cookie_value",
    "unsign_cookie_value",
    "verify_cookie_cache",
]

SECURE_PREFIX: Final = "__Secure-"
_HOST_PREFIX: Final = "__Host-"
CACHE_VERSION: Final = "1"
CHUNK_LIMIT: Final = 4050
MAX_CHUNKS: Final = 100
_MAX_AGE_LIMIT: Final = 34_560_000  # 400 days; better-call refuses more
_SIGNATURE_LENGTH: Final = 44  # standard base64 of 32 bytes, one "=" of padding

# RFC 6265: a cookie name is an RFC 7230 token; a value is made of cookie-octets.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_OCTETS: Final = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CHUNK_INDEX: Final = re.compile(r"[0-9]+")
# What JavaScript's String.prototype.trim removes.
_JS_WHITESPACE: Final = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_LONE_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")


# ---------------------------------------------------------------------------------------------
# Names (§5.1)


def cookie_name(
    prefix: str = "better-auth", name: str = "session_token", secure: bool = False
) -> str:
    """`<prefix>.<name>`, with `__Secure-` in front when the cookies are secure."""
    full = f"{prefix}.{name}"
    if not prefix or not name or not _TOKEN.fullmatch(full):
        raise ValueError(f"not a valid cookie name: {full!r}")
    return f"{SECURE_PREFIX}{full}" if secure else full


@dataclass(frozen=True, slots=True, kw_only=True)
class CookieNames:
    """The names of the core cookies for one configuration."""

    session_token: str
    session_data: str
    dont_remember: str
    account_data: str

    @classmethod
    def create(cls, prefix: str = "better-auth", *, secure: bool = False) -> Self:
        return cls(
            session_token=cookie_name(prefix, "session_token", secure),
            session_data=cookie_name(prefix, "session_data", secure),
            dont_remember=cookie_name(prefix, "dont_remember", secure),
            account_data=cookie_name(prefix, "account_data", secure),
        )


# ---------------------------------------------------------------------------------------------
# Signed values (§5.2)


def sign_cookie_value(secret: str | HmacKey, value: str) -> str:
    """`encodeURIComponent(value + "." + base64(HMAC-SHA256(secret, value)))`."""
    return quote(f"{value}.{hmac_sign(secret, value)}", safe="-_.!~*'()")


def decode_cookie_value(raw: str) -> str:
    """better-call's `tryDecode`: `decodeURIComponent` when the value holds `%`; a value it
    cannot decode (a stray `%`, bad UTF-8) is kept as it is."""
    if "%" not in raw:
        return raw
    # A signed value escapes only its signature's base64 `+`, `/` and `=`, as
    # encodeURIComponent writes them: three C-level replaces instead of a Python loop.
    plain = raw.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
    if "%" not in plain:
        return plain
    if _BAD_ESCAPE.search(raw) is not None:
        return raw
    try:
        if raw.isascii():  # the usual case, twice as fast as unquote
            return unquote_to_bytes(raw).decode("utf-8")
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return raw


def unsign_cookie_value(secret: str | HmacKey, raw: str) -> str | None:
    """The value of a signed cookie, or None when it is absent, malformed or badly signed.

    As better-call reads it: URL-decode when it holds `%`, split at the last `.`, require a
    non-empty value and a 44-character standard-base64 signature ending in `=`, then check the
    HMAC in constant time.
    """
    decoded = decode_cookie_value(raw)
    dot = decoded.rfind(".")
    if dot < 1:
        return None
    value, signature = decoded[:dot], decoded[dot + 1 :]
    if len(signature) != _SIGNATURE_LENGTH or not signature.endswith("="):
        return None
    try:
        provided = binascii.a2b_base64(signature, strict_mode=True)
    except ValueError:  # binascii.Error, or not ASCII
        return None
    if not hmac.compare_digest(hmac_sha256(secret, value), provided):
        return None
    return value


# ---------------------------------------------------------------------------------------------
# The Cookie header


def parse_cookie_header(header: str) -> dict[str, str]:
    """Name → raw value, parsed as leniently as better-call: values need not be URI-encoded,
    a duplicated name keeps its first value, segments without `=` are skipped, one pair of
    surrounding double quotes is removed. Values are *not* URL-decoded (`unsign_cookie_value`
    and `decode_cookie_value` do that)."""
    cookies: dict[str, str] = {}
    for segment in header.split(";"):
        name, eq, value = segment.partition("=")
        if not eq:
            continue
        name = name.strip(_JS_WHITESPACE)
        if name not in cookies:
            value = value.strip(_JS_WHITESPACE)
            if value.startswith('"'):
                value = value[1:-1]
            cookies[name] = value
    return cookies


# ---------------------------------------------------------------------------------------------
# Set-Cookie (§5.1)

SameSite = Literal["Strict", "Lax", "None", "strict", "lax", "none"]


@dataclass(frozen=True, slots=True)
class CookieAttributes:
    """The attributes of one `Set-Cookie`; `max_age=None` makes a browser-session cookie.
    `same_site` is written with a capital first letter whatever case it is given in."""

    max_age: int | None
    path: str | None = "/"
    domain: str | None = None
    http_only: bool = True
    secure: bool = False
    same_site: SameSite | None = "Lax"
    partitioned: bool = False
    expires: datetime | None = None

    def __post_init__(self) -> None:
        if self.max_age is not None and (
            isinstance(self.max_age, bool) or not 0 <= self.max_age <= _MAX_AGE_LIMIT
        ):
            raise ValueError(f"max_age must be within 0..{_MAX_AGE_LIMIT}, got {self.max_age}")
        if self.same_site is not None:
            normalised = self.same_site.capitalize()
            if normalised not in ("Strict", "Lax", "None"):
                raise ValueError(f"same_site must be Strict, Lax or None, got {self.same_site!r}")
            object.__setattr__(self, "same_site", normalised)
        if self.expires is not None and self.expires.utcoffset() is None:
            raise ValueError("expires must be timezone-aware")
        for label, text in (("path", self.path), ("domain", self.domain)):
            if text is not None and (";" in text or not (text.isascii() and text.isprintable())):
                raise ValueError(f"{label} must be printable ASCII without ';': {text!r}")


def serialize_cookie(name: str, value: str, attrs: CookieAttributes) -> str:
    """A `Set-Cookie` value in better-call's order:
    `name=value; Max-Age=N; Domain=…; Path=…; Expires=…; HttpOnly; Secure; SameSite=…; Partitioned`.

    `value` is written as given (a signed value is already URI-encoded); it must consist of
    cookie-octets. As in better-call, a `__Secure-` name implies Secure, and a `__Host-` name
    implies Secure, `Path=/` and no Domain.
    """
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"not a valid cookie name: {name!r}")
    if not _COOKIE_OCTETS.fullmatch(value):
        raise ValueError(f"cookie value holds characters that must be encoded: {value!r}")
    secure, path, domain = attrs.secure, attrs.path, attrs.domain
    if name.startswith(SECURE_PREFIX):
        secure = True
    if name.startswith(_HOST_PREFIX):
        secure, path, domain = True, "/", None

    parts = [f"{name}={value}"]
    if attrs.max_age is not None:
        parts.append(f"Max-Age={attrs.max_age}")
    if domain:
        parts.append(f"Domain={domain}")
    if path:
        parts.append(f"Path={path}")
    if attrs.expires is not None:
        parts.append(f"Expires={format_datetime(attrs.expires.astimezone(UTC), usegmt=True)}")
    if attrs.http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    if attrs.same_site is not None:
        parts.append(f"SameSite={attrs.same_site}")
    if attrs.partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


def expire_cookie(name: str, attrs: CookieAttributes) -> str:
    """The `Set-Cookie` that deletes a cookie: same name and attributes, empty value,
    `Max-Age=0`."""
    return serialize_cookie(name, "", replace(attrs, max_age=0))


# ---------------------------------------------------------------------------------------------
# Session-data cookie cache, compact strategy (§5.4)


def _js_json(data: Any) -> str:
    """`JSON.stringify`: no whitespace, non-ASCII kept, a lone surrogate written as `\\uXXXX`.

    Values must be JSON-native (str, int, bool, None, lists, dicts); floats are not formatted
    the way JavaScript formats them.
    """
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# json.loads(text, parse_constant=...) builds a decoder on every call; a decoder keeps no
# state between calls, so one serves all.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(text: str | bytes) -> Any:
    """JSON.parse: orjson (~3x faster), and the json module for the lone surrogates orjson
    refuses. NaN and Infinity are not JSON for either. ValueError when it is not JSON; text
    given as bytes is UTF-8."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _DECODER.decode(text if isinstance(text, str) else text.decode("utf-8"))


def encode_cookie_cache(
    secret: str,
    session: Mapping[str, Any],
    user: Mapping[str, Any],
    max_age: int,
    now_ms: int,
    *,
    version: str = CACHE_VERSION,
) -> str:
    """The `session_data` value, byte-compatible with better-auth's `compact` strategy:
    base64url (unpadded) of `{"session": payload, "expiresAt": ms, "signature": sig}` where
    `payload = {session, user, updatedAt: now_ms, version}`, `expiresAt = now_ms + max_age s`
    and `sig` is the base64url HMAC of `{...payload, expiresAt}`.

    Dates in `session` and `user` must already be ISO strings, and fields not meant to be
    returned already removed. better-auth uses 60 s when the cookie itself has no Max-Age
    (rememberMe=false).
    """
    if max_age <= 0:
        raise ValueError(f"max_age must be > 0, got {max_age}")
    payload = {
        "session": dict(session),
        "user": dict(user),
        "updatedAt": now_ms,
        "version": version,
    }
    expires_at = now_ms + max_age * 1000
    signature = hmac_sign(secret, _js_json({**payload, "expiresAt": expires_at}), urlsafe=True)
    body = _js_json({"session": payload, "expiresAt": expires_at, "signature": signature})
    return base64.urlsafe_b64encode(body.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_cookie_cache(secret: str, value: str, now_ms: int) -> dict[str, Any] | None:
    """The payload `{session, user, updatedAt, version}` of a `compact` `session_data` value,
    or None when it is undecodable, badly signed, or past its `expiresAt`.

    The other checks of get-session (the token matches the session cookie, the version is the
    configured one, `session.expiresAt` is in the future) belong to the caller.
    """
    verified = verify_cookie_cache(secret, value)
    if verified is None or verified[1] < now_ms:
        return None
    return verified[0]


def verify_cookie_cache(secret: str | HmacKey, value: str) -> tuple[dict[str, Any], float] | None:
    """`(payload, expiresAt)` of a `compact` `session_data` value that decodes and is well
    signed, expired or not; None otherwise. `decode_cookie_cache` adds the expiry check."""
    try:
        raw = decode_base64_any(decode_cookie_value(value))
    except ValueError:
        return None
    # The body as TextDecoder reads it, in UTF-8: what better-auth parses and signs. An ASCII
    # body, the usual one, is that already: no need to decode it and encode it again.
    if not raw.isascii():
        raw = raw.decode("utf-8", errors="replace").removeprefix("\ufeff").encode("utf-8")
    return _verify_as_written(secret, raw) or _verify_parsed(secret, raw.decode("utf-8"))


# How JSON.stringify writes the cookie's body: {"session":<payload>,"expiresAt":<ms>,
# "signature":"<base64url>"}. The signature covers JSON.stringify({...payload, expiresAt}),
# which for a body written so is the payload's own text with `expiresAt` appended.
_BODY_START: Final = b'{"session":'
_BODY_END: Final = re.compile(rb',"expiresAt":([0-9]{1,16}),"signature":"([A-Za-z0-9_-]{43})"}')


def _verify_as_written(secret: str | HmacKey, body: bytes) -> tuple[dict[str, Any], float] | None:
    """The payload of a body written by JSON.stringify (UTF-8), checked against the signature
    of its own text: no parse and re-encoding of the whole body. None when the body is not in
    that form or its text does not verify (`_verify_parsed` then decides)."""
    end = body.rfind(b',"expiresAt":')
    if end < 0 or not body.startswith(_BODY_START):
        return None
    tail = _BODY_END.fullmatch(body, end)
    payload_text = body[len(_BODY_START) : end]
    if tail is None or len(payload_text) < 3 or payload_text[-1:] != b"}":
        return None
    expires_text, signature = tail.groups()
    signed = b"".join((payload_text[:-1], b',"expiresAt":', expires_text, b"}"))
    if not hmac_verify(secret, signed, signature.decode("ascii")):
        return None
    # Signed by a holder of the secret, who signs only JSON.stringify of an object: the
    # payload text parses to that object without its `expiresAt`.
    try:
        payload = _parse_json(payload_text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict) or not _has_rows(payload):
        return None
    return payload, int(expires_text)


def _verify_parsed(secret: str | HmacKey, text: str) -> tuple[dict[str, Any], float] | None:
    """The general check: parse the body, and verify the signature against the payload
    written again as JSON.stringify writes it (any spacing, key order or escapes)."""
    try:
        data = _parse_json(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    payload = data.get("session")
    expires_at = data.get("expiresAt")
    signature = data.get("signature")
    if not isinstance(payload, dict) or not isinstance(signature, str):
        return None
    if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
        return None
    if not math.isfinite(expires_at):
        return None
    try:
        signed = _js_json({**payload, "expiresAt": expires_at})
    except ValueError:
        return None
    if not hmac_verify(secret, signed, signature) or not _has_rows(payload):
        return None
    return payload, expires_at


def _has_rows(payload: Mapping[str, Any]) -> bool:
    return isinstance(payload.get("session"), dict) and isinstance(payload.get("user"), dict)


def chunk_cookie(name: str, value: str, limit: int = CHUNK_LIMIT) -> list[tuple[str, str]]:
    """`[(name, value)]` when the value fits in `limit` characters, else the value cut into
    `name.0`, `name.1`, … of at most `limit` characters each (at most 100 chunks).

    Chunks left over from a longer earlier value are the caller's to expire.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if len(value) <= limit:
        return [(name, value)]
    count = math.ceil(len(value) / limit)
    if count > MAX_CHUNKS:
        raise ValueError(f"cookie {name!r} would need {count} chunks (at most {MAX_CHUNKS})")
    return [(f"{name}.{i}", value[i * limit : (i + 1) * limit]) for i in range(count)]


def join_chunks(cookies: Mapping[str, str], name: str) -> str | None:
    """The value of `name` if it is present and non-empty, else its `name.<n>` chunks joined in
    index order; None when there is neither."""
    whole = cookies.get(name)
    if whole:
        return whole
    prefix = f"{name}."
    chunks = sorted(
        (int(key[len(prefix) :]), part)
        for key, part in cookies.items()
        if key.startswith(prefix) and _CHUNK_INDEX.fullmatch(key[len(prefix) :])
    )
    if not chunks:
        return None
    return "".join(part for _, part in chunks)
