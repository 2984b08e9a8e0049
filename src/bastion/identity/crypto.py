"""Random identifiers and (later) the other primitives better-auth uses."""

from __future__ import annotations

import secrets
import string

__all__ = ["generate_id"]

_ALPHABET = string.ascii_letters + string.digits


def generate_id(length: int = 32) -> str:
    """better-auth's id and token shape: `length` characters of [A-Za-z0-9] from a CSPRNG."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
