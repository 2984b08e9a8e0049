"""Untrusted input at the edge: JSON parsed with its nesting bounded, and only strings that
every database can store and every response can encode.

Both servers take request bodies through here (the identity's endpoint runner, the agent
server's `read_json_object`), so one rule holds everywhere:

- at most `MAX_JSON_DEPTH` levels of nesting, counted on the text before the parser runs.
  Python's parser recurses (about 1,000 levels raise RecursionError), and pydantic-core
  writes no more than about 255 levels, so a deeper value, once stored, fails every read
  that returns it;
- no NUL character (PostgreSQL refuses it in text and jsonb) and no lone surrogate
  (`"\\ud800"` is valid JSON, but not Unicode: no UTF-8 encoder takes it), in values and
  in keys alike;
- no NaN or infinite numbers: not JSON, and not storable in jsonb.

Values that do not come from request text (an in-process call's dict, a model's tool
arguments, a tool's result) go through `check_value`, which walks them without recursion.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "InvalidInput",
    "NotJSON",
    "check_value",
    "describe_path",
    "parse_json",
    "string_problem",
]

MAX_JSON_DEPTH = 32
"""Containers inside containers, the outermost counting 1: `{"a": [1]}` is 2 deep."""

Path = tuple[str | int, ...]

_SURROGATE = re.compile(r"[\ud800-\udfff]")  # json.loads joins valid pairs: what is left is lone
# A JSON string from its opening quote, escapes included, to its closing quote or, when it
# has none, the end: possessive, so no text is read twice.
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class NotJSON(ValueError):
    """The text is not JSON (or not in an encoding JSON may use)."""


class InvalidInput(ValueError):
    """JSON, but a value refused at the edge. `path` leads to it from the root (keys and
    list indices); `reason` says what is wrong, in words that follow its name:
    `title` + ` contains a NUL character`."""

    def __init__(self, reason: str, path: Path = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


def string_problem(text: str, *, refuse_nul: bool = True) -> str | None:
    """Why `text` cannot be stored and sent back, or None when it can. `refuse_nul=False`
    for text that is only sent (JSON carries a NUL; only storing it fails)."""
    if refuse_nul and "\x00" in text:
        return "contains a NUL character"
    if not text.isascii() and _SURROGATE.search(text) is not None:
        return "is not valid Unicode (a lone surrogate)"
    return None


def describe_path(path: Path, root: str) -> str:
    """Where a value is, as the agent server's messages name it: `messages[0].content`,
    or `root` for the value itself."""
    if not path:
        return root
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _too_deep(depth: int) -> InvalidInput:
    return InvalidInput(f"is nested more than {depth} levels deep")


def parse_json(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The value of JSON text (bytes: UTF-8, or UTF-16/32 as `json.loads` detects them).

    Raises NotJSON, or InvalidInput for nesting deeper than `max_depth` (checked on the text,
    before parsing) and for strings `string_problem` refuses.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode(json.detect_encoding(data))
        except UnicodeDecodeError:
            raise NotJSON("not UTF-8, UTF-16 or UTF-32") from None
    else:
        text = data
    if _depth_exceeds(text, max_depth):
        raise _too_deep(max_depth)
    try:
        value = _DECODER.decode(text)
    except ValueError:
        raise NotJSON("not JSON") from None
    # NUL and lone surrogates come from `\u` escapes (a raw NUL is a syntax error), or
    # from text someone decoded leniently: without either, there is nothing to walk.
    if "\\u" in text or (not text.isascii() and _SURROGATE.search(text) is not None):
        check_value(value, max_depth=max_depth)
    return value


def _depth_exceeds(text: str, limit: int) -> bool:
    """Whether JSON `text` nests more than `limit` containers, read without recursion and
    in linear time (regular expressions and C loops: a megabyte of `[][]…` costs
    milliseconds). Exact for valid JSON; for invalid JSON, exact up to the first error,
    which is as far as the parser gets too."""
    if text.count("[") + text.count("{") <= limit:
        return False  # nearly every body: too few brackets to matter, strings or not
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise ValueError("number out of range")
    return value


# Built once: json.loads with options builds a decoder per call. It keeps no state.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def check_value(value: Any, *, max_depth: int = MAX_JSON_DEPTH, refuse_nul: bool = True) -> None:
    """Raise InvalidInput for a string (value or key) that `string_problem` refuses, or for
    containers (dicts, lists, tuples) nested more than `max_depth` deep. Walks with its own
    stack, so any depth (even a cycle) ends with an answer rather than a RecursionError."""
    pending: list[tuple[Any, Path]] = [(value, ())]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str):
            problem = string_problem(item, refuse_nul=refuse_nul)
            if problem is not None:
                raise InvalidInput(problem, path)
        elif isinstance(item, Mapping):
            if len(path) >= max_depth:
                raise _too_deep(max_depth)
            for key, child in item.items():
                if isinstance(key, str):
                    problem = string_problem(key, refuse_nul=refuse_nul)
                    if problem is not None:
                        raise InvalidInput(f"has a key that {problem}", path)
                pending.append((child, (*path, key)))
        elif isinstance(item, list | tuple):
            if len(path) >= max_depth:
                raise _too_deep(max_depth)
            pending.extend((child, (*path, index)) for index, child in enumerate(item))
