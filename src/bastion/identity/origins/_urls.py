"""URLs and hosts as a browser parses them (WHATWG), reduced to what origin checks need:
http(s) URLs split into scheme, host, port and the rest; custom-scheme URLs (`myapp://x/cb`)
split with string operations, their paths normalized so traversal cannot escape a pinned
path. Anything a browser would rewrite (`0x7f.1`, percent-escaped or Unicode hosts) fails to
parse, so it is never trusted."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = [
    "DANGEROUS_SCHEMES",
    "IPV4",
    "RELATIVE",
    "SPECIAL_PORTS",
    "UNSAFE_CHAR",
    "CustomURL",
    "HttpURL",
    "parse_http",
    "scheme_of",
    "split_custom",
]

SPECIAL_PORTS = {"http": 80, "https": 443}
DANGEROUS_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob"})

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
UNSAFE_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f]")
RELATIVE = re.compile(r"/(?!/|\\|%2[fF]|%5[cC])[\w\-.+/@]*(\?[\w\-.+/=&%@]*)?", re.ASCII)
_DOMAIN = re.compile(r"[A-Za-z0-9._\-]+")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_DIGITS = re.compile(r"[0-9]+")
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = re.compile(rf"({_OCTET}\.){{3}}{_OCTET}")


@dataclass(frozen=True, slots=True)
class HttpURL:
    """An http(s) URL split as a browser would: only what origin checks need."""

    scheme: str
    host: str
    port: int | None  # None when absent or the scheme's default
    has_userinfo: bool
    tail: str  # path, query and fragment, from the first "/", "?" or "#"

    @property
    def host_port(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host_port}"


def scheme_of(url: str) -> str | None:
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else None


def parse_http(url: str, scheme: str) -> HttpURL | None:
    """WHATWG parsing of a special (http/https) URL with no base, or None on failure."""
    rest = url[len(scheme) + 1 :].replace("\\", "/").lstrip("/")
    end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
    authority, tail = rest[:end], rest[end:]
    has_userinfo = "@" in authority
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        close = host_port.find("]")
        if close == -1:
            return None
        raw_host, after = host_port[: close + 1], host_port[close + 1 :]
        if after and not after.startswith(":"):
            return None
        raw_port = after[1:]
    else:
        raw_host, _, raw_port = host_port.partition(":")
    host = _parse_host(raw_host)
    if host is None:
        return None
    port: int | None = None
    if raw_port:
        if not _DIGITS.fullmatch(raw_port) or int(raw_port) > 65535:
            return None
        port = int(raw_port)
        if port == SPECIAL_PORTS[scheme]:
            port = None
    return HttpURL(scheme, host, port, has_userinfo, tail)


def _parse_host(raw: str) -> str | None:
    if _IPV6.fullmatch(raw):
        try:
            value = int(ipaddress.IPv6Address(raw[1:-1]))
        except ValueError:
            return None
        return f"[{_ipv6_serialize(value)}]"
    if not _DOMAIN.fullmatch(raw):
        return None  # empty, percent-escaped, Unicode, or a forbidden code point
    host = raw.lower()
    if _ends_in_a_number(host) and not IPV4.fullmatch(host):
        return None  # 0x7f.1, 2130706433, 010.0.0.1: IPv4 in a form browsers rewrite
    return host


def _ipv6_serialize(value: int) -> str:
    """WHATWG's IPv6 serializer: lower-case hex, the first longest run (≥2) of 0s as `::`."""
    pieces = [(value >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    best_start, best_len, i = -1, 1, 0
    while i < 8:
        if pieces[i] == 0:
            j = i
            while j < 8 and pieces[j] == 0:
                j += 1
            if j - i > best_len:
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    if best_start < 0:
        return ":".join(f"{p:x}" for p in pieces)
    head = ":".join(f"{p:x}" for p in pieces[:best_start])
    tail = ":".join(f"{p:x}" for p in pieces[best_start + best_len :])
    return f"{head}::{tail}"


def _ends_in_a_number(host: str) -> bool:
    """WHATWG's test for an IPv4 host: the last label is decimal, or hex with `0x`."""
    last = host.removesuffix(".").rpartition(".")[2]
    return bool(_DIGITS.fullmatch(last) or re.fullmatch(r"0[xX][0-9A-Fa-f]*", last))


@dataclass(frozen=True, slots=True)
class CustomURL:
    """A custom-scheme URL (`myapp://host/path`), split with string operations only."""

    scheme: str
    authority: str
    path: str


def split_custom(value: str, *, pattern: bool = False) -> CustomURL | None:
    """Scheme, lower-cased authority and normalized path. In a glob `pattern` a `?` is a
    wildcard, so only `/` and `#` end the authority and only `#` ends the path."""
    colon = value.find(":")
    if colon <= 0:
        return None
    scheme, rest, authority = value[:colon].lower(), value[colon + 1 :], ""
    if rest.startswith("//"):
        rest = rest[2:]
        stops = "/#" if pattern else "/?#"
        end = next((i for i, ch in enumerate(rest) if ch in stops), len(rest))
        authority, rest = rest[:end], rest[end:]
    path = re.split(r"#" if pattern else r"[?#]", rest, maxsplit=1)[0]
    return CustomURL(scheme, authority.lower(), _normalize_path(path))


def _normalize_path(path: str) -> str:
    """Percent-decode, then resolve `.`/`..` so traversal cannot escape a pinned path."""
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        decoded = path
    segments: list[str] = []
    for segment in decoded.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in (".", ""):
            segments.append(segment)
    return "/" + "/".join(segments) if segments else ""
