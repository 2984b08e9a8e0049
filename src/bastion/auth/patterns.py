"""Path patterns of `public`, `protected` and rule paths (spec §2.5, regexparam syntax).

A pattern is one of:

- a string, compiled once: `:name` matches one segment, `:name?` an optional segment,
  `*` the rest of the path (with the `/` before it, so `/api/*` matches `/api/` and
  `/api/x` but not `/api`), `*?` an optional rest; anchored at both ends, a trailing `/`
  optional, letters compared case-insensitively (as regexparam does). Other characters
  are literal.
- a compiled regex, searched in the path (as JavaScript's `RegExp.test`);
- a tuple `(pattern, method)` or `(pattern, [methods])`: the path must match AND the
  method must be one of those listed. `"ALL"` is a literal method name here, not a
  wildcard (spec §2.5).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from re import Pattern

from .provider import RoutePattern

__all__ = ["PatternSet", "compile_path", "path_matcher"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

PathMatcher = Callable[[str], object]


def _body(pattern: str) -> str:
    """The regex of a string pattern, without its anchors."""
    parts: list[str] = []
    for segment in pattern.split("/"):
        if not segment:
            continue
        if segment in ("*", "*?"):
            parts.append("(?:/(.*))?" if segment == "*?" else "/(.*)")
        elif segment.startswith(":"):
            optional = segment.endswith("?")
            name = segment[1:-1] if optional else segment[1:]
            if not _NAME.fullmatch(name):
                raise ValueError(f"bad parameter {segment!r} in path pattern {pattern!r}")
            parts.append("(?:/([^/]+?))?" if optional else "/([^/]+?)")
        elif "*" in segment:
            # The old `/api/agents*` prefix form would silently never match: refuse it.
            raise ValueError(f"'*' must be a whole segment in path pattern {pattern!r}")
        else:
            parts.append("/" + re.escape(segment))
    return "".join(parts)


def compile_path(pattern: str) -> Pattern[str]:
    """The anchored, case-insensitive regex of a string pattern."""
    # `\Z`, not `$`: `$` also matches before a final "\n", so "/api/public\n" would match.
    return re.compile(f"^{_body(pattern)}/?\\Z", re.IGNORECASE)


def path_matcher(pattern: str | Pattern[str]) -> PathMatcher:
    """A function telling whether a path matches `pattern` (truthy) or not."""
    if isinstance(pattern, str):
        return compile_path(pattern).match
    if isinstance(pattern, re.Pattern):
        return pattern.search
    raise TypeError(f"a path pattern is a string or a compiled regex, not {pattern!r}")


def _methods(value: str | Sequence[str]) -> frozenset[str]:
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(name, str) for name in names):
        raise TypeError(f"methods must be a method name or a list of them, not {value!r}")
    # Request methods arrive upper-case; `"get"` in a config means GET.
    return frozenset(name.upper() for name in names)


class PatternSet:
    """A list of route patterns compiled once; `matches` runs on every request.

    All method-less string patterns are joined into one regex, so the defaults cost a
    single match per request.
    """

    __slots__ = ("_any", "_with_method")

    def __init__(self, patterns: Iterable[RoutePattern]) -> None:
        bodies: list[str] = []
        regexes: list[PathMatcher] = []
        with_method: list[tuple[PathMatcher, frozenset[str]]] = []
        for entry in patterns:
            if isinstance(entry, tuple):
                if len(entry) != 2:
                    raise TypeError(f"a (pattern, methods) entry has two items, not {entry!r}")
                with_method.append((path_matcher(entry[0]), _methods(entry[1])))
            elif isinstance(entry, str):
                bodies.append(_body(entry))
            else:
                regexes.append(path_matcher(entry))
        if bodies:
            joined = "|".join(f"(?:{body})" for body in dict.fromkeys(bodies))
            regexes.insert(0, re.compile(f"^(?:{joined})/?\\Z", re.IGNORECASE).match)
        self._any = tuple(regexes)
        self._with_method = tuple(with_method)

    def matches(self, path: str, method: str) -> bool:
        for match in self._any:
            if match(path):
                return True
        return any(method in methods and match(path) for match, methods in self._with_method)

    def __bool__(self) -> bool:
        return bool(self._any or self._with_method)
