"""better-auth's `wildcardMatch` globs, matched in linear time."""

from __future__ import annotations

__all__ = ["Glob"]

_SEPARATORS = "/\\"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SKIPPABLE = frozenset({"star", "sep*", "**", "**+"})


class Glob:
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
