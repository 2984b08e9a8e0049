"""Reading a compact JWS (RFC 7515 §7.1): three segments of strict base64url, a JSON header
and a JSON payload. Strict so that one token has exactly one encoding, and bounded (S23)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Final

from ._errors import MalformedToken

__all__ = ["Compact", "b64decode", "json_object", "split_compact"]

_B64URL: Final = re.compile(rb"[A-Za-z0-9_-]*")
_B64URL_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SEXTETS: Final = {char: value for value, char in enumerate(_B64URL_ALPHABET)}
# Segment length mod 4 -> the low bits of its last character that carry no data (RFC 4648
# §3.5): a segment is canonical exactly when they are zero.
_UNUSED_BITS: Final = {2: 0b1111, 3: 0b11}


def b64decode(segment: bytes, what: str) -> bytes:
    """Strict base64url without padding: the alphabet only and canonical trailing bits."""
    tail = len(segment) % 4
    if tail == 1 or not _B64URL.fullmatch(segment):
        raise MalformedToken(f"{what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken(f"{what} is not base64url") from None
    if tail and _SEXTETS[segment[-1]] & _UNUSED_BITS[tail]:
        raise MalformedToken(f"{what} is not canonical base64url")
    return data


def json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))  # RFC 7519 §7.2: UTF-8 JSON
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise MalformedToken(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"{what} is not a JSON object")
    return value


# header, header segment, payload segment, signature segment. A plain tuple: it is built
# once per token on the hot path, where a dataclass or NamedTuple costs measurably more.
Compact = tuple[dict[str, Any], bytes, bytes, bytes]


def split_compact(token: str, max_header_bytes: int) -> Compact:
    """The header and the three segments of `token`; MalformedToken when it is not a
    compact JWS or its header is larger than `max_header_bytes` base64url characters. The
    payload is decoded only once the signature is known good."""
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedToken("token is not ASCII") from None
    parts = raw.split(b".")
    if len(parts) != 3:
        raise MalformedToken("not a compact JWS (three segments)")
    header_segment, payload_segment, signature_segment = parts
    if len(header_segment) > max_header_bytes:
        raise MalformedToken("header too large")
    header = json_object(b64decode(header_segment, "header"), "header")
    return header, header_segment, payload_segment, signature_segment
