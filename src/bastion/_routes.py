"""A route table: path templates with `{name}` parameters, each holding a value per method.

One design for both servers: the identity endpoints and the agent server's router. A
parameter matches one path segment. Static paths are found in a dict, templated ones in the
order added after them, so `/api/agents/featured` wins over `/api/agents/{agentId}`. Two
templates that differ only in their parameter names clash, and a method is served once per
template: both are errors at construction, not surprises on a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from re import Pattern
from typing import Generic, TypeVar

__all__ = ["Route", "RouteTable", "compile_template"]

V = TypeVar("V")

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def compile_template(template: str) -> tuple[Pattern[str] | None, str]:
    """The regex of a `{name}` template (None when it has no parameter), and its shape:
    the template with its parameter names blanked, to find two routes that would clash."""
    if not template.startswith("/"):
        raise ValueError(f"a route path starts with '/': {template!r}")
    if template != "/" and template.endswith("/"):
        raise ValueError(f"a route path does not end with '/': {template!r}")
    literal = _PARAM.sub("", template)
    if "{" in literal or "}" in literal:
        raise ValueError(f"bad parameter in route path {template!r}: use {{name}}")
    names = _PARAM.findall(template)
    if not names:
        return None, template
    if len(set(names)) != len(names):
        raise ValueError(f"a parameter name appears twice in {template!r}")
    # split() alternates literal text and parameter names.
    pieces = _PARAM.split(template)
    body = "".join(
        re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>[^/]+)" for i, piece in enumerate(pieces)
    )
    return re.compile(body), _PARAM.sub("{}", template)  # fullmatch: `$` allows a final "\n"


@dataclass(slots=True)
class Route(Generic[V]):
    template: str
    regex: Pattern[str] | None
    methods: dict[str, V] = field(default_factory=dict)


class RouteTable(Generic[V]):
    def __init__(self) -> None:
        self._static: dict[str, Route[V]] = {}
        self._dynamic: list[Route[V]] = []
        self._shapes: dict[str, Route[V]] = {}

    def add(self, template: str, methods: Iterable[str], value: V) -> None:
        regex, shape = compile_template(template)
        route = self._shapes.get(shape)
        if route is None:
            route = Route(template, regex)
            self._shapes[shape] = route
            if regex is None:
                self._static[template] = route
            else:
                self._dynamic.append(route)
        elif route.template != template:
            raise ValueError(f"route {template!r} clashes with {route.template!r}")
        for method in methods:
            if method in route.methods:
                raise ValueError(f"{method} {template} is served twice")
            route.methods[method] = value

    @property
    def routes(self) -> list[Route[V]]:
        """Every route, in the order added."""
        return list(self._shapes.values())

    def find(self, path: str) -> tuple[Route[V] | None, dict[str, str]]:
        """The route serving `path`, and its parameters."""
        route = self._static.get(path)
        if route is not None:
            return route, {}
        for candidate in self._dynamic:
            found = candidate.regex.fullmatch(path) if candidate.regex else None
            if found:
                return candidate, found.groupdict()
        return None, {}
