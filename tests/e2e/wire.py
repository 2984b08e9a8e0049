"""Comparing two HTTP answers the way a better-auth client would notice a difference.

`compare_answers(theirs, ours)` lists what differs between better-auth's answer and Bastion's:
status; content type; the other headers (`location` after the caller's substitution of
random values; `set-auth-token` and `x-retry-after` by presence); the set of Set-Cookie names
with their attributes in order (values aside); the JSON body key for key, type for type, and
value for value except the volatile fields (ids, tokens, dates) — so error `code` and
`message` compare exactly. Fields and headers that only plugins add are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "ADAPTER_NULLS",
    "PLUGIN_FIELDS",
    "PLUGIN_HEADERS",
    "VOLATILE_FIELDS",
    "VOLATILE_HEADERS",
    "Answer",
    "compare_answers",
    "compare_json",
    "cookie_shapes",
]

# What plugins add, ignored on both sides (keep this short).
PLUGIN_FIELDS = frozenset(
    {
        "twoFactorEnabled",  # two-factor: user
        "username",  # username: user
        "displayUsername",  # username: user
        "role",  # admin: user
        "banned",  # admin: user
        "activeOrganizationId",  # organization: session
    }
)
PLUGIN_HEADERS = frozenset({"set-auth-jwt"})  # jwt; also dropped from expose-headers lists

# Values that differ from run to run: compared by JSON type only. (ipAddress: better-auth
# stores "" when no client-IP header is trusted, errata 13; Bastion stores the peer's address.)
VOLATILE_FIELDS = frozenset(
    {"id", "userId", "token", "createdAt", "updatedAt", "expiresAt", "ipAddress"}
)
# better-auth's memory adapter (the golden runs) leaves unset nullable columns out; on a SQL
# database better-auth answers them as null, as Bastion does.
ADAPTER_NULLS = frozenset({"image"})
VOLATILE_HEADERS = frozenset({"set-auth-token", "x-retry-after"})  # a token; seconds left
_NOT_COMPARED = frozenset(
    {"content-length", "set-cookie", "date", "server", "connection", "keep-alive"}
    | {"transfer-encoding"}
    # Bastion adds the standard Retry-After beside better-auth's X-Retry-After (S5).
    | {"retry-after"}
)
_EXPOSE = "access-control-expose-headers"


@dataclass
class Answer:
    """One HTTP answer. `headers` is None when it was not recorded (lower-case names)."""

    status: int
    headers: dict[str, str] | None
    set_cookies: list[str]
    text: str

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        """From a response whose body has been read."""
        headers = {k.lower(): v for k, v in response.headers.items() if k.lower() != "set-cookie"}
        return cls(
            response.status_code, headers, response.headers.get_list("set-cookie"), response.text
        )


def cookie_shapes(set_cookies: list[str]) -> set[tuple[str, tuple[str, ...]]]:
    """{(name, attributes in order)}: the values aside, duplicates folded."""
    shapes = set()
    for line in set_cookies:
        head, *attributes = (part.strip() for part in line.split(";"))
        shapes.add((head.split("=", 1)[0], tuple(attributes)))
    return shapes


def compare_answers(
    theirs: Answer, ours: Answer, location: Callable[[str], str] = lambda url: url
) -> list[str]:
    """What differs, one line each; `location` maps their Location onto ours (tokens)."""
    problems = []
    if ours.status != theirs.status:
        problems.append(f"status: {ours.status}, better-auth has {theirs.status}")
    if theirs.headers is not None and ours.headers is not None:
        problems += _compare_headers(theirs.headers, ours.headers, location)
    t_cookies, o_cookies = cookie_shapes(theirs.set_cookies), cookie_shapes(ours.set_cookies)
    for name, attributes in sorted(t_cookies - o_cookies):
        problems.append(f"Set-Cookie missing: {name}; {'; '.join(attributes)}")
    for name, attributes in sorted(o_cookies - t_cookies):
        problems.append(f"Set-Cookie not in better-auth's answer: {name}; {'; '.join(attributes)}")
    t_body, o_body = _json(theirs.text), _json(ours.text)
    if t_body is _NOT_JSON:
        if o_body is not _NOT_JSON or (theirs.text == "") != (ours.text == ""):
            problems.append(f"body: {ours.text[:80]!r}, better-auth has {theirs.text[:80]!r}")
    else:
        problems += compare_json(t_body, o_body)
    return problems


def _compare_headers(
    theirs: dict[str, str], ours: dict[str, str], location: Callable[[str], str]
) -> list[str]:
    problems = []
    theirs = {k: v for k, v in theirs.items() if k not in PLUGIN_HEADERS}
    if _exposed(ours.get(_EXPOSE)) != _exposed(theirs.get(_EXPOSE)):
        problems.append(
            f"{_EXPOSE}: {ours.get(_EXPOSE)!r}, better-auth has {theirs.get(_EXPOSE)!r}"
        )
    for name in sorted((set(theirs) | set(ours)) - _NOT_COMPARED - {_EXPOSE}):
        mine, their = ours.get(name), theirs.get(name)
        if name in VOLATILE_HEADERS and mine is not None and their is not None:
            continue
        if name == "location" and their is not None:
            their = location(their)
        if mine != their:
            problems.append(f"header {name}: {mine!r}, better-auth has {their!r}")
    return problems


def _exposed(value: str | None) -> set[str]:
    names = {v.strip().lower() for v in (value or "").split(",") if v.strip()}
    return names - PLUGIN_HEADERS


def compare_json(theirs: Any, ours: Any, where: str = "body") -> list[str]:
    """Keys, JSON types, and values (but those of VOLATILE_FIELDS) must be the same."""
    if _kind(theirs) != _kind(ours):
        return [f"{where}: {_kind(ours)} {_short(ours)}, better-auth has {_kind(theirs)}"]
    problems = []
    if isinstance(theirs, dict):
        t_keys = set(theirs) - PLUGIN_FIELDS - _null_only(theirs)
        o_keys = set(ours) - PLUGIN_FIELDS - _null_only(ours)
        for key in sorted(t_keys - o_keys):
            problems.append(f"{where}.{key}: missing (better-auth: {_short(theirs[key])})")
        for key in sorted(o_keys - t_keys):
            problems.append(f"{where}.{key}: not in better-auth's answer ({_short(ours[key])})")
        for key in sorted(t_keys & o_keys):
            if key in VOLATILE_FIELDS:
                if _kind(theirs[key]) != _kind(ours[key]):
                    problems.append(f"{where}.{key}: {_kind(ours[key])}, not {_kind(theirs[key])}")
            else:
                problems += compare_json(theirs[key], ours[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        if len(theirs) != len(ours):
            problems.append(f"{where}: {len(ours)} items, better-auth has {len(theirs)}")
        for i, (t, o) in enumerate(zip(theirs, ours, strict=False)):
            problems += compare_json(t, o, f"{where}[{i}]")
    elif theirs != ours:
        problems.append(f"{where}: {_short(ours)}, better-auth has {_short(theirs)}")
    return problems


def _null_only(row: dict[str, Any]) -> set[str]:
    return {key for key in ADAPTER_NULLS if key in row and row[key] is None}


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


_NOT_JSON: Any = object()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "not JSON")


def _short(value: Any) -> str:
    text = json.dumps(value) if value is not _NOT_JSON else "<not JSON>"
    return text if len(text) <= 120 else text[:117] + "..."
