"""Path patterns (spec §2.5): regexparam strings, regexes, (pattern, methods) tuples."""

from __future__ import annotations

import re

import pytest

from bastion.auth.patterns import PatternSet, compile_path


def matches(pattern: str, path: str) -> bool:
    return compile_path(pattern).match(path) is not None


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # A parameter is exactly one segment.
        ("/api/agents/:id", "/api/agents/weather", True),
        ("/api/agents/:id", "/api/agents", False),
        ("/api/agents/:id", "/api/agents/weather/generate", False),
        ("/api/agents/:id/generate", "/api/agents/w/generate", True),
        # An optional parameter may be absent.
        ("/api/agents/:id?", "/api/agents", True),
        ("/api/agents/:id?", "/api/agents/weather", True),
        ("/api/agents/:id?", "/api/agents/a/b", False),
        # `*` is the rest, the slash before it included.
        ("/api/*", "/api/", True),
        ("/api/*", "/api/agents", True),
        ("/api/*", "/api/agents/x/generate", True),
        ("/api/*", "/api", False),
        ("/api/*", "/apix", False),
        ("/api/*?", "/api", True),
        ("/api/*?", "/api/x/y", True),
        # Anchored at both ends.
        ("/api/agents", "/v1/api/agents", False),
        ("/api/agents", "/api/agents/x", False),
        ("/api/agents", "/api/agentsx", False),
        # A trailing slash is optional.
        ("/api/agents", "/api/agents/", True),
        ("/api/agents/", "/api/agents", True),
        # Letters are compared case-insensitively, as regexparam does.
        ("/api/agents", "/API/Agents", True),
        # Other characters are literal, not regex syntax.
        ("/api/a.b", "/api/a.b", True),
        ("/api/a.b", "/api/axb", False),
        ("/api/(x)", "/api/(x)", True),
        ("/", "/", True),
        ("/", "/x", False),
    ],
)
def test_string_patterns(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


@pytest.mark.parametrize("bad", ["/api/agents*", "/api/:bad-name", "/api/:", "/api/x*y"])
def test_malformed_patterns_fail_at_construction(bad: str) -> None:
    with pytest.raises(ValueError):
        compile_path(bad)


def test_regex_is_searched_in_the_path() -> None:
    patterns = PatternSet([re.compile(r"/internal/")])
    assert patterns.matches("/api/internal/x", "GET")
    assert not patterns.matches("/api/external/x", "GET")


def test_string_pattern_ignores_the_method() -> None:
    patterns = PatternSet(["/api/agents"])
    assert patterns.matches("/api/agents", "GET")
    assert patterns.matches("/api/agents", "DELETE")


def test_tuple_needs_the_path_and_an_exact_method() -> None:
    patterns = PatternSet([("/api/agents", "GET"), ("/api/tools/:id", ["POST", "PUT"])])
    assert patterns.matches("/api/agents", "GET")
    assert not patterns.matches("/api/agents", "POST")
    assert patterns.matches("/api/tools/x", "PUT")
    assert not patterns.matches("/api/tools/x", "GET")
    assert not patterns.matches("/api/tools", "POST")


def test_all_is_a_literal_method_not_a_wildcard() -> None:
    patterns = PatternSet([("/api/mcp/*", "ALL")])
    assert not patterns.matches("/api/mcp/x", "GET")
    assert patterns.matches("/api/mcp/x", "ALL")


def test_tuple_methods_are_upper_cased_once() -> None:
    assert PatternSet([("/api/agents", "get")]).matches("/api/agents", "GET")


def test_tuple_with_a_regex() -> None:
    patterns = PatternSet([(re.compile(r"^/api/x/\d+$"), "GET")])
    assert patterns.matches("/api/x/12", "GET")
    assert not patterns.matches("/api/x/ab", "GET")


@pytest.mark.parametrize("bad", [("/a", "GET", "POST"), ("/a", []), ("/a", [1]), 42, ("/a",)])
def test_malformed_entries_fail_at_construction(bad: object) -> None:
    with pytest.raises(TypeError):
        PatternSet([bad])  # type: ignore[list-item]


def test_many_string_patterns_are_one_set() -> None:
    patterns = PatternSet(["/api", "/api/auth/*", "/health", "/api/x/:id?"])
    for path in ("/api", "/api/auth/sign-in", "/health", "/api/x", "/api/x/1"):
        assert patterns.matches(path, "GET"), path
    for path in ("/api/agents", "/healthz", "/api/x/1/2"):
        assert not patterns.matches(path, "GET"), path
    assert not PatternSet([])
    assert PatternSet(["/x"])
