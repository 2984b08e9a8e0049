"""The trusted origins of one identity: built and checked once at start-up, widened per
request when `trusted_origins` is a callable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

from ..._callbacks import call_user
from ._matchers import Candidate, Matcher, base_origin, compile_all
from ._urls import (
    DANGEROUS_SCHEMES,
    RELATIVE,
    SPECIAL_PORTS,
    UNSAFE_CHAR,
    parse_http,
    scheme_of,
    split_custom,
)

__all__ = ["ENV_VARS", "DynamicOrigins", "TrustedOrigins", "resolve"]

R = TypeVar("R")

#: `trusted_origins` given as a callable: `(request) -> origins`, async or not. The
#: HTTP layer passes its own request type; `None` and `""` entries are skipped.
DynamicOrigins: TypeAlias = Callable[[R], Awaitable[Iterable[str | None]] | Iterable[str | None]]

#: Comma-separated extra entries, read by `TrustedOrigins.from_options` from its `env`.
ENV_VARS = ("BETTER_AUTH_TRUSTED_ORIGINS", "BASTION_TRUSTED_ORIGINS")


@dataclass(frozen=True, slots=True)
class TrustedOrigins:
    """The origins redirects and requests may come from or go to (spec §6.2).

    `TrustedOrigins(("https://app.example.com", "*.example.com"))` checks every entry and
    raises `ValueError` for one that could never match. `entries` keeps them in order,
    without duplicates, plain origins in canonical form (`https://App.example.com:443/`
    becomes `https://app.example.com`).
    """

    entries: tuple[str, ...] = ()
    _matchers: tuple[Matcher, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.entries, str):
            raise TypeError("entries is a sequence of origins, not one string")
        self._set(compile_all(self.entries, strict=True))

    def _set(self, compiled: Iterable[tuple[str, Matcher]]) -> None:
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
        collected = [base_origin(base_url)] if base_url else []
        collected.extend(entries)
        for name in ENV_VARS:
            collected.extend(item for item in (env or {}).get(name, "").split(",") if item.strip())
        return cls(tuple(collected))

    def extend(self, entries: Iterable[str | None], *, strict: bool = True) -> TrustedOrigins:
        """A copy with more entries. With `strict=False` (per-request entries), empty and
        unusable entries are dropped instead of raising."""
        added = compile_all((e for e in entries if e), strict=strict)
        if not added:
            return self
        result = TrustedOrigins()
        result._set([*zip(self.entries, self._matchers, strict=True), *added])
        return result

    def is_trusted(self, url: str, *, allow_relative: bool = False) -> bool:
        """Whether `url` (an absolute URL, an Origin header, or with `allow_relative` a
        path such as `/dashboard?tab=1`) points at a trusted origin."""
        if not isinstance(url, str) or not url or UNSAFE_CHAR.search(url):
            return False
        if url.startswith("/"):
            return allow_relative and RELATIVE.fullmatch(url) is not None
        scheme = scheme_of(url)
        if scheme is None or scheme in DANGEROUS_SCHEMES:
            return False
        if scheme in SPECIAL_PORTS:
            http = parse_http(url, scheme)
            if http is None:
                return False
            candidate = Candidate(url, http, None)
        else:
            candidate = Candidate(url, None, split_custom(url))
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
    added: list[str | None] = [base_origin(base_url)] if base_url else []
    if source is not None:
        values = await call_user(source, request)
        if isinstance(values, str):
            raise TypeError("trusted_origins callable returned a string, not a list")
        added.extend(values)
    return trusted.extend(added, strict=False)
