"""Declarative allow rules (spec §2.9): the third authorization mechanism of a plain config.

Rules are checked in order. A rule applies when its `path` matches (absent: every path)
and its `methods` list the request method (absent: every method). An applying rule with a
`condition` allows when the condition returns true, and otherwise hands over to the next
rule (a false condition is not a deny). An applying rule without a condition allows when
`allow` is true. When no rule allows, the request is denied: there are no deny rules, and
`allow=False` without a condition is simply skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from re import Pattern
from typing import Any

from .._callbacks import call_user
from .patterns import PathMatcher, path_matcher

__all__ = ["Condition", "Rule", "check_rules", "to_rules"]

logger = logging.getLogger("bastion.auth")

Condition = Callable[[Any], bool | Awaitable[bool]]
RulePath = str | Pattern[str] | Sequence[str | Pattern[str]]


@dataclass(frozen=True, slots=True)
class Rule:
    path: RulePath | None = None
    methods: str | Sequence[str] | None = None
    condition: Condition | None = None
    allow: bool | None = None
    _matchers: tuple[PathMatcher, ...] = field(init=False, repr=False, compare=False)
    _methods: frozenset[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        paths: Sequence[str | Pattern[str]]
        if self.path is None:
            paths = ()
        elif isinstance(self.path, str | Pattern):
            paths = (self.path,)
        else:
            paths = tuple(self.path)
            if not paths:
                raise ValueError("a rule's path list is empty: it would match nothing")
        object.__setattr__(self, "_matchers", tuple(path_matcher(p) for p in paths))
        methods: frozenset[str] | None = None
        if self.methods is not None:
            names = [self.methods] if isinstance(self.methods, str) else list(self.methods)
            # Exact comparison with the request method (upper-case); "ALL" is literal.
            methods = frozenset(name.upper() for name in names)
        object.__setattr__(self, "_methods", methods)
        if self.condition is not None and not callable(self.condition):
            raise TypeError("a rule's condition is a function of the user")

    def applies(self, path: str, method: str) -> bool:
        if self._matchers and not any(match(path) for match in self._matchers):
            return False
        return self._methods is None or method in self._methods

    @classmethod
    def of(cls, value: Rule | Mapping[str, Any]) -> Rule:
        if isinstance(value, Rule):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"path", "methods", "condition", "allow"}
            if unknown:
                raise TypeError(f"unknown rule keys: {sorted(unknown)}")
            return cls(**value)
        raise TypeError(f"a rule is a Rule or a dict, not {value!r}")


def to_rules(values: Iterable[Rule | Mapping[str, Any]]) -> tuple[Rule, ...]:
    return tuple(Rule.of(value) for value in values)


async def check_rules(rules: Sequence[Rule], path: str, method: str, user: Any) -> bool:
    """True when a rule allows `user` to call `method path`."""
    for rule in rules:
        if not rule.applies(path, method):
            continue
        if rule.condition is not None:
            try:
                if await call_user(rule.condition, user):
                    return True
            except Exception as exc:  # a failing condition counts as false (spec §2.9)
                logger.warning("rule condition raised %s; treated as false", type(exc).__name__)
            continue
        if rule.allow:
            return True
    return False
