"""The crypto primitives better-auth uses, byte-compatible with better-auth 1.7 (spec §4, §7).

* Random identifiers: `generate_id`, `random_string` and the named alphabets.
* HMAC-SHA256 signatures (`hmac_sign`, `hmac_verify`) and identifier hashing (`sha256_base64url`).
* Password hashing in better-auth's scrypt format (`PasswordHasher`), or the user's own
  (`PasswordHashing`, `PasswordFunctions`; `password_hashing` builds the Identity's from its
  `email_and_password.password` option).
* The HS256 email-verification JWT (`sign_jwt`, `verify_jwt`).

Strings are turned into bytes as JavaScript's `TextEncoder` does (UTF-8, a lone surrogate becomes
U+FFFD), so a value signed here verifies there and back.

Exceptions::

    TokenError          a JWT was refused
    ├── InvalidToken    malformed, badly signed, wrong algorithm, bad or missing claims
    └── TokenExpired    well signed, but `exp` has passed
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import math
import os
import secrets
import string
import sys
import threading
import unicodedata
import weakref
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from .._callbacks import call_user
from ..jose import ExpiredToken, JWTError, JWTPolicy, SecretKey, sign, verify_with_key

__all__ = [
    "ALPHANUMERIC",
    "DIGITS",
    "LETTERS",
    "LOWER_ALPHANUMERIC",
    "URL_SAFE",
    "HmacKey",
    "InvalidToken",
    "PasswordFunctions",
    "PasswordHasher",
    "PasswordHashing",
    "TokenError",
    "TokenExpired",
    "decode_base64_any",
    "generate_id",
    "hmac_sha256",
    "hmac_sign",
    "hmac_verify",
    "password_hashing",
    "random_string",
    "sha256_base64url",
    "sign_jwt",
    "verify_jwt",
]

# ---------------------------------------------------------------------------------------------
# Random identifiers (§4)

ALPHANUMERIC: Final = string.ascii_uppercase + string.ascii_lowercase + string.digits
"""[A-Za-z0-9]: row ids, session tokens, reset tokens, backup codes."""
LOWER_ALPHANUMERIC: Final = string.digits + string.ascii_lowercase
"""[0-9a-z]: the delete-account token."""
URL_SAFE: Final = string.ascii_lowercase + string.digits + string.ascii_uppercase + "-_"
"""[a-z0-9A-Z-_]: OAuth state, PKCE verifier, TOTP secret, 2FA and trust-device ids."""
LETTERS: Final = string.ascii_letters
"""[a-zA-Z]: the magic-link token."""
DIGITS: Final = string.digits
"""[0-9]: email and 2FA one-time codes."""


def random_string(length: int, alphabet: str) -> str:
    """`length` characters drawn uniformly from `alphabet` with a CSPRNG (`secrets`, no modulo
    bias, like better-auth's rejection sampling)."""
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if not alphabet or len(set(alphabet)) != len(alphabet):
        raise ValueError("alphabet must be non-empty, without repeated characters")
    return "".join(secrets.choice(alphabet) for _ in range(length))


def generate_id(length: int = 32) -> str:
    """better-auth's id and token shape: `length` characters of [A-Za-z0-9] from a CSPRNG."""
    return random_string(length, ALPHANUMERIC)


# ---------------------------------------------------------------------------------------------
# Bytes, base64, HMAC (§7.2)


def _utf8(text: str) -> bytes:
    """UTF-8 as JavaScript's TextEncoder writes it: a lone surrogate becomes U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        wellformed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return wellformed.encode("utf-8")


_URL_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")


def decode_base64_any(text: str) -> bytes:
    """Decode base64 as better-auth's decoder does: the URL-safe alphabet when the text holds
    `-` or `_`, else the standard one; padding optional (decoding stops at the first `=`).

    Raises `ValueError` on a character outside the chosen alphabet or an impossible length.
    """
    urlsafe = "-" in text or "_" in text
    try:
        body = text.partition("=")[0].encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("invalid base64 character") from None
    if urlsafe:
        if b"+" in body or b"/" in body:
            raise ValueError("invalid base64 character")
        body = body.translate(_URL_TO_STANDARD)
    if len(body) % 4 == 1:
        raise ValueError("invalid base64 length")
    # strict_mode checks the alphabet in C: a cookie-cache value is ~900 characters, read on
    # every request that misses the memo of verified values.
    try:
        return binascii.a2b_base64(body + b"=" * (-len(body) % 4), strict_mode=True)
    except binascii.Error:
        raise ValueError("invalid base64 character") from None


class HmacKey:
    """A secret ready to sign or verify many values: its keyed HMAC-SHA256 state is made
    once and copied for each value. cryptography's HMAC, whose copy, update and finalize
    are each one native call: about half the cost of the hmac module's copy (Python code
    around OpenSSL), a third of its one-shot `hmac.digest`, which looks the digest up on
    every call (docs/benchmarks.md)."""

    __slots__ = ("_keyed",)

    def __init__(self, secret: str) -> None:
        self._keyed = crypto_hmac.HMAC(_utf8(secret), hashes.SHA256())

    def digest(self, value: str | bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(value if isinstance(value, bytes) else _utf8(value))
        return mac.finalize()


def hmac_sha256(secret: str | HmacKey, value: str | bytes) -> bytes:
    """The raw HMAC-SHA256 of `value` keyed with `secret` (text as UTF-8)."""
    if isinstance(secret, HmacKey):
        return secret.digest(value)
    return hmac.digest(_utf8(secret), value if isinstance(value, bytes) else _utf8(value), "sha256")


def hmac_sign(secret: str | HmacKey, value: str, *, urlsafe: bool = False) -> str:
    """better-auth's `createHMAC("SHA-256", enc).sign`: standard base64 with padding (44
    characters, the signed-cookie form), or base64url without padding when `urlsafe`."""
    digest = hmac_sha256(secret, value)
    if urlsafe:
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return base64.b64encode(digest).decode("ascii")


def hmac_verify(secret: str | HmacKey, value: str | bytes, signature: str) -> bool:
    """Constant-time check of an HMAC-SHA256 signature in either base64 alphabet, padded or
    not (better-auth's verifier auto-detects). Anything undecodable is simply invalid."""
    try:
        provided = decode_base64_any(signature)
    except ValueError:
        return False
    return hmac.compare_digest(hmac_sha256(secret, value), provided)


def sha256_base64url(value: str) -> str:
    """Identifier hashing: base64url, unpadded, of SHA-256(UTF-8(value))."""
    digest = hashlib.sha256(_utf8(value)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# ---------------------------------------------------------------------------------------------
# Password hashing (§7.1)

_SCRYPT_N: Final = 16384
_SCRYPT_R: Final = 16
_SCRYPT_P: Final = 1
_SCRYPT_DKLEN: Final = 64
_SCRYPT_MAXMEM: Final = 128 * _SCRYPT_N * _SCRYPT_R * 2  # 64 MiB, as better-auth sets it
_SALT_BYTES: Final = 16


def _scrypt(password: str, salt: str) -> bytes:
    """better-auth's key: scrypt over NFKC(password) with the salt *string's* bytes as salt."""
    return hashlib.scrypt(
        _utf8(unicodedata.normalize("NFKC", password)),
        salt=_utf8(salt),
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        dklen=_SCRYPT_DKLEN,
        maxmem=_SCRYPT_MAXMEM,
    )


def _parse_hash(stored: object) -> tuple[str, bytes] | None:
    """`"<salt>:<128 hex>"` → (salt, key); None when it has any other shape."""
    if not isinstance(stored, str):
        return None
    salt, sep, key_hex = stored.partition(":")
    if not sep or not salt or len(key_hex) != 2 * _SCRYPT_DKLEN:
        return None
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        return None
    if len(key) != _SCRYPT_DKLEN:  # fromhex skips whitespace; 128 chars must be 64 bytes
        return None
    return salt, key


_HASH_NICENESS: Final = 10  # added to the process's nice value for the hash threads


def _lower_priority() -> None:
    """Run this (hash) thread at a lower priority than the event loop's thread. Linux keeps a
    nice value per thread; elsewhere `setpriority` would renice the whole process, so nothing
    is done. Raising one's own nice value needs no privilege."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + _HASH_NICENESS))


class PasswordHashing(Protocol):
    """What sign-up/sign-in need from a password hasher; plug in your own to replace scrypt
    (better-auth's `emailAndPassword.password.{hash, verify}`)."""

    def hash(self, password: str) -> Awaitable[str]:
        """A storable hash of `password`."""
        ...

    def verify(self, hash: str, password: str) -> Awaitable[bool]:
        """Whether `password` matches the stored `hash`; False (never an error) when the stored
        value is malformed."""
        ...

    def dummy_verify(self, password: str) -> Awaitable[None]:
        """Spend what a `verify` costs, for a user that does not exist (timing equalisation)."""
        ...


@dataclass(frozen=True, slots=True)
class PasswordFunctions:
    """A `PasswordHashing` built from two functions, as better-auth's options take them:
    `hash(password)` and `verify(hash, password)`. `dummy_verify` hashes the password and
    discards the result, which is what better-auth does for an unknown user."""

    hash: Callable[[str], Awaitable[str]]
    verify: Callable[[str, str], Awaitable[bool]]

    async def dummy_verify(self, password: str) -> None:
        await self.hash(password)


class PasswordHasher:
    """better-auth's scrypt password hash: N=16384, r=16, p=1, 64-byte key, stored as
    `"<32 hex salt>:<128 hex key>"`, where the salt hex string itself is the scrypt salt.

    Each scrypt runs in the hasher's own threads, at most `max_concurrency` at a time (default:
    the number of CPUs), so the loop keeps serving requests while passwords hash. On Linux
    those threads run at a lower priority (nice +10): with every core busy hashing, the event
    loop's thread still gets a core when it has work, so other requests are not slowed down by
    a burst of sign-ins; on an otherwise idle machine hashing runs at full speed. A slot is held
    until the thread has finished, even when the awaiting task is cancelled, so cancelled
    requests cannot pile up extra scrypt threads. The limit applies per event loop; the hasher
    may be built before any loop runs.
    """

    __slots__ = ("_dummy_hash", "_executor", "_max_concurrency", "_semaphores")

    def __init__(self, max_concurrency: int | None = None) -> None:
        if max_concurrency is None:
            max_concurrency = os.cpu_count() or 1
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self._max_concurrency = max_concurrency
        self._executor: ThreadPoolExecutor | None = None  # started on the first hash
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()
        # Well-formed, matches no password: verifying against it costs one full scrypt.
        self._dummy_hash = f"{secrets.token_hex(_SALT_BYTES)}:{secrets.token_hex(_SCRYPT_DKLEN)}"

    @property
    def max_concurrency(self) -> int:
        return self._max_concurrency

    async def hash(self, password: str) -> str:
        salt = secrets.token_hex(_SALT_BYTES)
        key = await self._derive(password, salt)
        return f"{salt}:{key.hex()}"

    async def verify(self, hash: str, password: str) -> bool:
        parsed = _parse_hash(hash)
        if parsed is None:
            return False
        salt, expected = parsed
        derived = await self._derive(password, salt)
        return hmac.compare_digest(derived, expected)

    async def dummy_verify(self, password: str) -> None:
        await self.verify(self._dummy_hash, password)

    def _threads(self) -> ThreadPoolExecutor:
        # Idle threads end when the hasher is garbage-collected (the executor's workers hold
        # only a weak reference to it).
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self._max_concurrency,
                thread_name_prefix="bastion-scrypt",
                initializer=_lower_priority,
            )
        return self._executor

    def _semaphore(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = asyncio.Semaphore(self._max_concurrency)
            self._semaphores[loop] = semaphore
        return semaphore

    async def _derive(self, password: str, salt: str) -> bytes:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphore(loop)
        await semaphore.acquire()
        try:
            future = loop.run_in_executor(self._threads(), _scrypt, password, salt)
        except BaseException:
            semaphore.release()
            raise
        future.add_done_callback(lambda _: semaphore.release())
        # shield: a cancelled caller stops waiting, but the slot is freed only by the thread.
        return await asyncio.shield(future)


class _UserPasswordHashing:
    """better-auth's `emailAndPassword.password` functions, each sync (run in a thread: a
    hash is CPU work) or async, with scrypt for the one not given."""

    __slots__ = ("_dummy_hash", "_dummy_password", "_hash", "_scrypt", "_verify")

    def __init__(self, hash: Callable[..., Any] | None, verify: Callable[..., Any] | None) -> None:
        self._hash = hash
        self._verify = verify
        self._scrypt = PasswordHasher() if None in (hash, verify) else None
        # An unknown user's password is checked against the hash of a password nobody sends:
        # the same `verify` call, the same cost as for a real account.
        self._dummy_password = secrets.token_urlsafe(24)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        if self._hash is None:
            assert self._scrypt is not None
            return await self._scrypt.hash(password)
        return str(await call_user(self._hash, password))

    async def verify(self, hash: str, password: str) -> bool:
        if self._verify is None:
            assert self._scrypt is not None
            return await self._scrypt.verify(hash, password)
        return bool(await call_user(self._verify, {"hash": hash, "password": password}))

    async def dummy_verify(self, password: str) -> None:
        if self._dummy_hash is None:  # made once; a race only makes it twice
            self._dummy_hash = await self.hash(self._dummy_password)
        await self.verify(self._dummy_hash, password)


def password_hashing(
    hash: Callable[..., Any] | None = None, verify: Callable[..., Any] | None = None
) -> PasswordHashing:
    """The Identity's hasher: better-auth's scrypt, or the functions of
    `email_and_password.password` (`hash(password)`, `verify({"hash", "password"})`)."""
    if hash is None and verify is None:
        return PasswordHasher()
    return _UserPasswordHashing(hash, verify)


# ---------------------------------------------------------------------------------------------
# Email-verification JWT (§7.4)


class TokenError(Exception):
    """A JWT was refused."""


class InvalidToken(TokenError):
    """Malformed, badly signed, not HS256, or with a missing or ill-typed claim."""


class TokenExpired(TokenError):
    """Correctly signed, but its `exp` has passed."""


# jose's checks, as better-auth runs them on its own tokens: HS256 only, `exp` required and
# past once `exp <= now`, `nbf` honoured, no leeway, `iat` only typed (not compared).
_POLICY: Final = JWTPolicy(algorithms=("HS256",), leeway=0, check_issued_at=False)


@functools.lru_cache(maxsize=8)
def _secret_key(secret: str) -> SecretKey:
    # better-auth takes any secret length; a secret PyJWT refuses (PEM-shaped) fails here.
    return SecretKey(_utf8(secret), owner="the identity secret", min_length=False)


def _epoch_seconds(now: datetime | None) -> int:
    if now is None:
        now = datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return math.floor(now.timestamp())


def sign_jwt(
    secret: str, payload: Mapping[str, Any], expires_in: int, now: datetime | None = None
) -> str:
    """An HS256 JWT as better-auth signs it with jose: header `{"alg":"HS256"}`, the payload
    followed by `iat` (whole seconds) and `exp = iat + expires_in`."""
    if expires_in <= 0:
        raise ValueError(f"expires_in must be > 0, got {expires_in}")
    issued_at = _epoch_seconds(now)
    claims = {**payload, "iat": issued_at, "exp": issued_at + expires_in}
    return sign(claims, _secret_key(secret), algorithm="HS256")


def verify_jwt(secret: str, token: str, now: datetime | None = None) -> dict[str, Any]:
    """The claims of an HS256 JWT signed with `secret`; any other algorithm (`none` included)
    is refused. `exp` is required and, like jose, the token is expired once `exp <= now`.

    Raises `TokenExpired` or `InvalidToken` (both `TokenError`).
    """
    current = _epoch_seconds(now)
    try:
        return verify_with_key(token, _secret_key(secret), _POLICY, now=current)
    except ExpiredToken as exc:
        raise TokenExpired("the token has expired") from exc
    except JWTError as exc:
        raise InvalidToken(str(exc)) from exc
