r"""Trusted origins (spec §6.2): which URLs and Origin headers point at a trusted origin.

Pure functions over strings and mappings: no I/O, no framework. The HTTP layer builds one
`TrustedOrigins` at start-up with `TrustedOrigins.from_options(base_url, entries, env)`,
widens it per request with `await resolve(...)` when `trusted_origins` is a callable, and
asks `is_trusted`; the open-redirect and Origin/CSRF rules built on it are in `security`.

Matching, as better-auth 1.7.25 does it (`auth/trusted-origins.ts`):

* a plain `http(s)` entry equals the URL's origin (scheme, host, port; the path is ignored,
  so `https://app.example.com/` and `https://app.example.com/cb?x` both have the origin
  `https://app.example.com`);
* an entry with `*`, `**` or `?` is a glob with `/` as separator: against the URL's origin
  when the entry contains `://`, else against its `host[:port]`. `*` never crosses a `/`
  but does cross dots, so `https://*.example.com` matches every subdomain depth. A glob
  host made of digits, dots and wildcards (`192.168.*.*`) admits IPv4 addresses only;
* a custom-scheme entry (`myapp://`, `exp://host/path`) matches by scheme; a pinned
  authority must be equal, a pinned path equal or a parent (`/cb` admits `/cb/x`, not
  `/cbx`, nor `/cb/../x`); in a custom-scheme glob (`exp://192.168.*.*:*/*`) authority
  and path are globs, and a URL with user info never matches;
* a relative URL is trusted only where allowed, and only if it matches spec §6.2's
  `^/(?!/|\\|%2f|%5c)[\w\-.+/@]*(\?[\w\-.+/=&%@]*)?$` (1.7.25 accepts more).

Where better-auth is looser, this module fails closed:

* URLs are parsed the way browsers parse them (WHATWG): `\` counts as `/` in http(s)
  URLs, the host follows the *last* `@`, `https:evil.com` has the host `evil.com`. A host
  that is not plain ASCII letters, digits, `.`, `-`, `_` (percent-escapes, IDN in Unicode
  form), not a canonical IPv4 address (`0x7f.1`) or not a bracketed IPv6 address is never
  trusted, nor is a URL containing whitespace or control characters (they would also let
  a redirect split the `Location` header).
* `javascript:`, `data:`, `vbscript:`, `file:` and `blob:` URLs are never trusted, and such
  entries are refused.
* A host-only glob (`*.example.com`) admits only http(s) URLs; better-auth also lets it
  admit `javascript://x.example.com/%0Aalert(1)`.
* Static entries are checked when built: an http(s) entry with a path, fragment or user
  info, an entry without a scheme that is not a glob, or `host:port`, raises `ValueError`
  (better-auth keeps them and they match nothing). Per-request entries are filtered.
* Plain http(s) entries are canonicalized (`https://App.example.com:443/` is
  `https://app.example.com`; better-auth compares the text as given) and globs match
  ASCII letters in either case.
"""

from __future__ import annotations

import inspect
import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar
from urllib.parse import unquote

from .._url_masking import mask_userinfo

__all__ = ["ENV_VARS", "DynamicOrigins", "TrustedOrigins", "resolve"]

R = TypeVar("R")

#: `trusted_origins` given as a callable: `(request) -> origins`, async or not. The
#: HTTP layer passes its own request type; `None` and `""` entries are skipped.
DynamicOrigins: TypeAlias = Callable[[R], Awaitable[Iterable[str | None]] | Iterable[str | None]]

#: Comma-separated extra entries, read by `TrustedOrigins.from_options` from its `env`.
ENV_VARS = ("BETTER_AUTH_TRUSTED_ORIGINS", "BASTION_TRUSTED_ORIGINS")

_SPECIAL_PORTS = {"http": 80, "https": 443}
_DANGEROUS_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob"})

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_UNSAFE_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f]")
_RELATIVE = re.compile(r"/(?!/|\\|%2[fF]|%5[cC])[\w\-.+/@]*(\?[\w\-.+/=&%@]*)?", re.ASCII)
_DOMAIN = re.compile(r"[A-Za-z0-9._\-]+")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_DIGITS = re.compile(r"[0-9]+")
_IP_RANGE = re.compile(r"(?=.*[0-9])[0-9*?.]+")
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"({_OCTET}\.){{3}}{_OCTET}")


# --------------------------------------------------------------------------- URL parsing


@dataclass(frozen=True, slots=True)
class _HttpURL:
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


def _scheme_of(url: str) -> str | None:
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else None


def _parse_http(url: str, scheme: str) -> _HttpURL | None:
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
        if port == _SPECIAL_PORTS[scheme]:
            port = None
    return _HttpURL(scheme, host, port, has_userinfo, tail)


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
    if _ends_in_a_number(host) and not _IPV4.fullmatch(host):
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
class _CustomURL:
    """A custom-scheme URL (`myapp://host/path`), split with string operations only."""

    scheme: str
    authority: str
    path: str


def _split_custom(value: str, *, pattern: bool = False) -> _CustomURL | None:
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
    return _CustomURL(scheme, authority.lower(), _normalize_path(path))


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


# ----------------------------------------------------------------------------- matchers


@dataclass(frozen=True, slots=True)
class _Candidate:
    """The URL under test, parsed once: `http` for http(s) URLs, else `custom`."""

    raw: str
    http: _HttpURL | None
    custom: _CustomURL | None


@dataclass(frozen=True, slots=True)
class _Exact:
    origin: str

    def matches(self, url: _Candidate) -> bool:
        return url.http is not None and url.http.origin == self.origin


def _ip_range(pattern_authority: str) -> bool:
    """Whether a glob host names an address range (`192.168.*.*`, `10.*`): it then admits
    IPv4 addresses only, since `*` crosses dots and would admit `192.168.evil.com`."""
    return _IP_RANGE.fullmatch(pattern_authority.split(":")[0]) is not None


@dataclass(frozen=True, slots=True)
class _HostGlob:
    """A glob without `://`: against the `host[:port]` of http(s) URLs only."""

    glob: _Glob
    ip_only: bool

    def matches(self, url: _Candidate) -> bool:
        http = url.http
        if http is None or not self.glob.fullmatch(http.host_port):
            return False
        return not self.ip_only or _IPV4.fullmatch(http.host) is not None


@dataclass(frozen=True, slots=True)
class _OriginGlob:
    """A glob with `://`: against the origin of an http(s) URL; against the authority and
    path, separately, of a custom-scheme URL (whose scheme must be the pattern's)."""

    glob: _Glob
    ip_only: bool
    custom: _CustomURL | None
    authority: _Glob | None
    path: _Glob | None

    def matches(self, url: _Candidate) -> bool:
        if url.http is not None:
            if not self.glob.fullmatch(url.http.origin):
                return False
            return not self.ip_only or _IPV4.fullmatch(url.http.host) is not None
        got, want = url.custom, self.custom
        if got is None or want is None or got.scheme != want.scheme or "@" in got.authority:
            return False
        if self.authority is not None:
            if not self.authority.fullmatch(got.authority):
                return False
            if _ip_range(want.authority) and not _IPV4.fullmatch(got.authority.split(":")[0]):
                return False
        return self.path is None or self.path.fullmatch(got.path or "/")


def _origin_glob(text: str) -> _OriginGlob:
    authority = text[text.index("://") + 3 :]
    custom = _split_custom(text, pattern=True)
    return _OriginGlob(
        glob=_Glob(text),
        ip_only=_ip_range(re.split(r"[/#]", authority, maxsplit=1)[0]),
        custom=custom,
        authority=_Glob(custom.authority) if custom and custom.authority else None,
        path=_Glob(custom.path) if custom and custom.path else None,
    )


@dataclass(frozen=True, slots=True)
class _Custom:
    pattern: _CustomURL

    def matches(self, url: _Candidate) -> bool:
        got, want = url.custom, self.pattern
        if got is None or got.scheme != want.scheme:
            return False
        if want.authority and got.authority != want.authority:
            return False
        return not want.path or got.path == want.path or got.path.startswith(want.path + "/")


_Matcher: TypeAlias = _Exact | _OriginGlob | _HostGlob | _Custom

_SEPARATORS = "/\\"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SKIPPABLE = frozenset({"star", "sep*", "**", "**+"})


class _Glob:
    """A glob with `/` as separator, with the semantics of better-auth's
    `wildcardMatch(pattern)`: `*` is any run of non-separators, `?` one non-separator,
    `**` any number of segments, `\\` escapes the next character; a `/` in the pattern
    matches one or more `/` or `\\`, and a trailing one is optional. ASCII letters match
    in either case.

    better-auth compiles it to a backtracking regex, which takes seconds on a few hundred
    characters once a segment has several `*` (`*a*a*a*.example.com`). This runs the same
    automaton breadth-first instead: linear in the text for a given pattern.
    """

    __slots__ = ("tokens",)

    def __init__(self, pattern: str) -> None:
        tokens: list[tuple[str, str]] = []
        segments = pattern.translate(_ASCII_LOWER).split("/")
        for index, segment in enumerate(segments):
            if not segment and index > 0:
                continue
            following = segments[index + 1] if index + 1 < len(segments) else None
            if following is None:
                separator = [("sep*", "")]  # optional at the end
            elif following != "**":
                separator = [("sep", ""), ("sep*", "")]  # one or more
            else:
                separator = []
            if segment == "**":
                if separator:
                    tokens.extend(separator if index > 0 else [])
                    # (non-separators, then the separator) repeated: any text when the
                    # separator is optional, else empty or ending with a separator
                    tokens.append(("**" if following is None else "**+", ""))
                continue
            chars = iter(segment)
            for ch in chars:
                if ch == "\\":
                    escaped = next(chars, None)
                    if escaped is not None:
                        tokens.append(("lit", escaped))
                elif ch in "?*":
                    tokens.append(("any" if ch == "?" else "star", ""))
                else:
                    tokens.append(("lit", ch))
            tokens.extend(separator)
        self.tokens = tuple(tokens)

    def _enter(self, states: set[tuple[int, bool]], index: int) -> None:
        """Add state `index` and those reachable from it without reading a character."""
        while (index, False) not in states:
            states.add((index, False))
            if index == len(self.tokens) or self.tokens[index][0] not in _SKIPPABLE:
                return
            index += 1

    def fullmatch(self, text: str) -> bool:
        end = len(self.tokens)
        current: set[tuple[int, bool]] = set()
        self._enter(current, 0)
        for ch in text.translate(_ASCII_LOWER):
            is_sep = ch in _SEPARATORS
            following: set[tuple[int, bool]] = set()
            for index, _inside in current:
                if index == end:
                    continue
                kind, literal = self.tokens[index]
                if kind == "lit":
                    if ch == literal:
                        self._enter(following, index + 1)
                elif kind in ("any", "sep"):
                    if is_sep == (kind == "sep"):
                        self._enter(following, index + 1)
                elif kind in ("star", "sep*"):
                    if is_sep == (kind == "sep*"):
                        self._enter(following, index)
                elif kind == "**" or is_sep:
                    self._enter(following, index)
                else:  # "**+" inside a segment: may stop only after a separator
                    following.add((index, True))
            if not following:
                return False
            current = following
        return (end, False) in current


def _compile(entry: str) -> tuple[str, _Matcher]:
    """One configured entry -> (its canonical text, its matcher); ValueError if unusable."""
    text = entry.strip()
    if not text:
        raise ValueError("a trusted origin entry is empty")
    if _UNSAFE_CHAR.search(text):
        raise ValueError(f"trusted origin {entry!r} contains whitespace or control characters")
    if "*" in text or "?" in text:
        if "://" in text:
            return text, _origin_glob(text)
        return text, _HostGlob(_Glob(text), _ip_range(text))
    scheme = _scheme_of(text)
    if scheme is None:
        raise ValueError(
            f"trusted origin {entry!r} has no scheme: write it as https://{text} "
            f"(or as a pattern such as *.{text})"
        )
    if scheme in _DANGEROUS_SCHEMES:
        raise ValueError(f"trusted origin {entry!r}: the {scheme}: scheme is never trusted")
    if re.fullmatch(r"[^:/]+:[0-9]+/?", text):
        raise ValueError(f"trusted origin {entry!r} reads as host:port: write https://{text}")
    if scheme in _SPECIAL_PORTS:
        parsed = _parse_http(text, scheme)
        if parsed is None or parsed.has_userinfo or parsed.tail not in ("", "/"):
            raise ValueError(
                f"trusted origin {entry!r} is not an origin: give scheme, host and port "
                "only, such as https://app.example.com"
            )
        return parsed.origin, _Exact(parsed.origin)
    custom = _split_custom(text)
    assert custom is not None  # the scheme regex matched
    return text, _Custom(custom)


def _compile_all(entries: Iterable[str], *, strict: bool) -> list[tuple[str, _Matcher]]:
    out: list[tuple[str, _Matcher]] = []
    for entry in entries:
        try:
            out.append(_compile(entry))
        except ValueError:
            if strict:
                raise
    return out


def _base_origin(base_url: str) -> str:
    scheme = _scheme_of(base_url)
    parsed = None
    if scheme in _SPECIAL_PORTS and not _UNSAFE_CHAR.search(base_url):
        parsed = _parse_http(base_url, scheme)
    if parsed is None:
        raise ValueError(f"base URL {mask_userinfo(base_url)!r} is not an http:// or https:// URL")
    return parsed.origin


# ------------------------------------------------------------------------ TrustedOrigins


@dataclass(frozen=True, slots=True)
class TrustedOrigins:
    """The origins redirects and requests may come from or go to (spec §6.2).

    `TrustedOrigins(("https://app.example.com", "*.example.com"))` checks every entry and
    raises `ValueError` for one that could never match. `entries` keeps them in order,
    without duplicates, plain origins in canonical form (`https://App.example.com:443/`
    becomes `https://app.example.com`).
    """

    entries: tuple[str, ...] = ()
    _matchers: tuple[_Matcher, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.entries, str):
            raise TypeError("entries is a sequence of origins, not one string")
        self._set(_compile_all(self.entries, strict=True))

    def _set(self, compiled: Iterable[tuple[str, _Matcher]]) -> None:
        unique = dict(compiled)  # keeps the first of equal canonical entries
        object.__setattr__(self, "entries", tuple(unique))
        object.__setattr__(self, "_matchers", tuple(unique.values()))

    @classmethod
    def from_options(
        cls,
        base_url: str | None,
        entries: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> TrustedOrigins:
        """The origin of `base_url`, then `entries` (options and plugins), then the
        comma-separated `BETTER_AUTH_TRUSTED_ORIGINS` / `BASTION_TRUSTED_ORIGINS` of `env`.

        `env` is only what is passed (give `os.environ` at the edge); blank items are
        skipped. A non-http(s) `base_url` or an unusable entry raises `ValueError`.
        """
        if isinstance(entries, str):
            raise TypeError("entries is a sequence of origins, not one string")
        collected = [_base_origin(base_url)] if base_url else []
        collected.extend(entries)
        for name in ENV_VARS:
            collected.extend(item for item in (env or {}).get(name, "").split(",") if item.strip())
        return cls(tuple(collected))

    def extend(self, entries: Iterable[str | None], *, strict: bool = True) -> TrustedOrigins:
        """A copy with more entries. With `strict=False` (per-request entries), empty and
        unusable entries are dropped instead of raising."""
        added = _compile_all((e for e in entries if e), strict=strict)
        if not added:
            return self
        result = TrustedOrigins()
        result._set([*zip(self.entries, self._matchers, strict=True), *added])
        return result

    def is_trusted(self, url: str, *, allow_relative: bool = False) -> bool:
        """Whether `url` (an absolute URL, an Origin header, or with `allow_relative` a
        path such as `/dashboard?tab=1`) points at a trusted origin."""
        if not isinstance(url, str) or not url or _UNSAFE_CHAR.search(url):
            return False
        if url.startswith("/"):
            return allow_relative and _RELATIVE.fullmatch(url) is not None
        scheme = _scheme_of(url)
        if scheme is None or scheme in _DANGEROUS_SCHEMES:
            return False
        if scheme in _SPECIAL_PORTS:
            http = _parse_http(url, scheme)
            if http is None:
                return False
            candidate = _Candidate(url, http, None)
        else:
            candidate = _Candidate(url, None, _split_custom(url))
        return any(m.matches(candidate) for m in self._matchers)


async def resolve(
    trusted: TrustedOrigins,
    source: DynamicOrigins[R] | None,
    request: R,
    *,
    base_url: str | None = None,
) -> TrustedOrigins:
    """The trusted origins for one request: `trusted` plus what `source(request)` gives
    (better-auth's `trustedOrigins: async (request) => string[]`) plus the origin of
    `base_url` when it is derived from the request. Unusable dynamic entries are dropped.
    """
    added: list[str | None] = [_base_origin(base_url)] if base_url else []
    if source is not None:
        result = source(request)
        values = await result if inspect.isawaitable(result) else result
        if isinstance(values, str):
            raise TypeError("trusted_origins callable returned a string, not a list")
        added.extend(values)
    return trusted.extend(added, strict=False)
