"""Trusted-origin entries compiled to matchers: a plain origin, a host glob, an origin glob,
a custom scheme. Each entry is checked here, once; a URL under test is parsed once into a
`Candidate` that every matcher reads."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from ..._url_masking import mask_userinfo
from ._glob import Glob
from ._urls import (
    DANGEROUS_SCHEMES,
    IPV4,
    SPECIAL_PORTS,
    UNSAFE_CHAR,
    CustomURL,
    HttpURL,
    parse_http,
    scheme_of,
    split_custom,
)

__all__ = ["Candidate", "Matcher", "base_origin", "compile_all", "compile_entry"]

_IP_RANGE = re.compile(r"(?=.*[0-9])[0-9*?.]+")


@dataclass(frozen=True, slots=True)
class Candidate:
    """The URL under test, parsed once: `http` for http(s) URLs, else `custom`."""

    raw: str
    http: HttpURL | None
    custom: CustomURL | None


@dataclass(frozen=True, slots=True)
class Exact:
    origin: str

    def matches(self, url: Candidate) -> bool:
        return url.http is not None and url.http.origin == self.origin


def ip_range(pattern_authority: str) -> bool:
    """Whether a glob host names an address range (`192.168.*.*`, `10.*`): it then admits
    IPv4 addresses only, since `*` crosses dots and would admit `192.168.evil.com`."""
    return _IP_RANGE.fullmatch(pattern_authority.split(":")[0]) is not None


@dataclass(frozen=True, slots=True)
class HostGlob:
    """A glob without `://`: against the `host[:port]` of http(s) URLs only."""

    glob: Glob
    ip_only: bool

    def matches(self, url: Candidate) -> bool:
        http = url.http
        if http is None or not self.glob.fullmatch(http.host_port):
            return False
        return not self.ip_only or IPV4.fullmatch(http.host) is not None


@dataclass(frozen=True, slots=True)
class OriginGlob:
    """A glob with `://`: against the origin of an http(s) URL; against the authority and
    path, separately, of a custom-scheme URL (whose scheme must be the pattern's)."""

    glob: Glob
    ip_only: bool
    custom: CustomURL | None
    authority: Glob | None
    path: Glob | None

    def matches(self, url: Candidate) -> bool:
        if url.http is not None:
            if not self.glob.fullmatch(url.http.origin):
                return False
            return not self.ip_only or IPV4.fullmatch(url.http.host) is not None
        got, want = url.custom, self.custom
        if got is None or want is None or got.scheme != want.scheme or "@" in got.authority:
            return False
        if self.authority is not None:
            if not self.authority.fullmatch(got.authority):
                return False
            if ip_range(want.authority) and not IPV4.fullmatch(got.authority.split(":")[0]):
                return False
        return self.path is None or self.path.fullmatch(got.path or "/")


def origin_glob(text: str) -> OriginGlob:
    authority = text[text.index("://") + 3 :]
    custom = split_custom(text, pattern=True)
    return OriginGlob(
        glob=Glob(text),
        ip_only=ip_range(re.split(r"[/#]", authority, maxsplit=1)[0]),
        custom=custom,
        authority=Glob(custom.authority) if custom and custom.authority else None,
        path=Glob(custom.path) if custom and custom.path else None,
    )


@dataclass(frozen=True, slots=True)
class Custom:
    pattern: CustomURL

    def matches(self, url: Candidate) -> bool:
        got, want = url.custom, self.pattern
        if got is None or got.scheme != want.scheme:
            return False
        if want.authority and got.authority != want.authority:
            return False
        return not want.path or got.path == want.path or got.path.startswith(want.path + "/")


Matcher: TypeAlias = Exact | OriginGlob | HostGlob | Custom


def compile_entry(entry: str) -> tuple[str, Matcher]:
    """One configured entry -> (its canonical text, its matcher); ValueError if unusable."""
    text = entry.strip()
    if not text:
        raise ValueError("a trusted origin entry is empty")
    if UNSAFE_CHAR.search(text):
        raise ValueError(f"trusted origin {entry!r} contains whitespace or control characters")
    if "*" in text or "?" in text:
        if "://" in text:
            return text, origin_glob(text)
        return text, HostGlob(Glob(text), ip_range(text))
    scheme = scheme_of(text)
    if scheme is None:
        raise ValueError(
            f"trusted origin {entry!r} has no scheme: write it as https://{text} "
            f"(or as a pattern such as *.{text})"
        )
    if scheme in DANGEROUS_SCHEMES:
        raise ValueError(f"trusted origin {entry!r}: the {scheme}: scheme is never trusted")
    if re.fullmatch(r"[^:/]+:[0-9]+/?", text):
        raise ValueError(f"trusted origin {entry!r} reads as host:port: write https://{text}")
    if scheme in SPECIAL_PORTS:
        parsed = parse_http(text, scheme)
        if parsed is None or parsed.has_userinfo or parsed.tail not in ("", "/"):
            raise ValueError(
                f"trusted origin {entry!r} is not an origin: give scheme, host and port "
                "only, such as https://app.example.com"
            )
        return parsed.origin, Exact(parsed.origin)
    custom = split_custom(text)
    assert custom is not None  # the scheme regex matched
    return text, Custom(custom)


def compile_all(entries: Iterable[str], *, strict: bool) -> list[tuple[str, Matcher]]:
    out: list[tuple[str, Matcher]] = []
    for entry in entries:
        try:
            out.append(compile_entry(entry))
        except ValueError:
            if strict:
                raise
    return out


def base_origin(base_url: str) -> str:
    scheme = scheme_of(base_url)
    parsed = None
    if scheme in SPECIAL_PORTS and not UNSAFE_CHAR.search(base_url):
        parsed = parse_http(base_url, scheme)
    if parsed is None:
        shown = mask_userinfo(base_url)
        raise ValueError(f"base URL {shown!r} is not an http:// or https:// URL")
    return parsed.origin
