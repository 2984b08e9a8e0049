"""A cheap password hash for the tests whose subject is not scrypt.

better-auth's scrypt costs ~0.1 s of CPU per sign-up or sign-in, which most tests spend
hundreds of times over for nothing. They plug this one in through the public option
(`email_and_password.password`, better-auth's `emailAndPassword.password`):

    Identity(..., email_and_password=cheap_password({"enabled": True}))
    running(...)                # tests/identity/conftest.py does it for its tests

Tests where scrypt is the subject (hash format, timing equalisation, hashes shared with
TypeScript better-auth) ask for it explicitly: `{"enabled": True, "password": SCRYPT}`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from bastion.identity.options import EmailAndPassword, PasswordOptions

__all__ = ["CHEAP", "PREFIX", "SCRYPT", "cheap_hash", "cheap_password"]

PREFIX = "cheap$"
"""Every cheap hash starts with it (and no scrypt hash does)."""


def _digest(salt: str, password: str) -> str:
    # surrogatepass: tests send lone surrogates, which scrypt's TextEncoder turns into U+FFFD
    data = (salt + password).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


async def cheap_hash(password: str) -> str:
    """The cheap hash of `password`, as CHEAP stores it (for a test that sets one itself)."""
    salt = secrets.token_hex(8)
    return f"{PREFIX}{salt}${_digest(salt, password)}"


async def _verify(data: dict[str, str]) -> bool:
    stored = data["hash"]
    if not stored.startswith(PREFIX):
        return False
    salt, _, digest = stored[len(PREFIX) :].partition("$")
    return hmac.compare_digest(digest, _digest(salt, data["password"]))


CHEAP = PasswordOptions(hash=cheap_hash, verify=_verify)
"""The cheap hash: salted SHA-256, still refusing every wrong password."""

SCRYPT = PasswordOptions()
"""better-auth's scrypt, named: the option left at its default."""


def cheap_password(email_and_password: Mapping[str, Any] | EmailAndPassword | None = None) -> Any:
    """`email_and_password` (default: enabled) with the cheap hash, unless it names one."""
    if email_and_password is None:
        email_and_password = {"enabled": True}
    if isinstance(email_and_password, EmailAndPassword):
        return email_and_password  # built by the test: as it is
    if "password" in email_and_password:
        return email_and_password
    return {**email_and_password, "password": CHEAP}
