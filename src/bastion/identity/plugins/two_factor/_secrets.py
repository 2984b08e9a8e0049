"""The second factor's secrets, as better-auth 1.7.25 makes and keeps them.

* TOTP (RFC 6238 through pyotp): the key is the UTF-8 bytes of a 32-character random string
  (`base32:<secret>` for one imported from elsewhere: its base32 bytes), encrypted at rest
  with better-auth's `symmetricEncrypt`; the `otpauth://` URI is built byte for byte as
  better-auth builds it.
* Backup codes: `xxxxx-xxxxx` from a CSPRNG, kept as a JSON list, encrypted (or plain, or
  hashed one by one, or your own functions).
* One-time codes sent by email or SMS: kept plain, encrypted or hashed in the verification
  table, `<code>:<failed attempts>`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from ...._callbacks import call_user
from ...crypto import ALPHANUMERIC, random_string, sha256_base64url
from ...symmetric import decrypt, encrypt
from ._options import BackupCodeOptions, OTPOptions

if TYPE_CHECKING:
    import pyotp

__all__ = [
    "BASE32_PREFIX",
    "constant_time_equal",
    "encode_backup_codes",
    "encode_kept_codes",
    "generate_backup_codes",
    "matching_code",
    "read_backup_codes",
    "store_otp",
    "totp_code",
    "totp_key",
    "totp_uri",
    "unstore_otp",
    "use_backup_code",
]

BASE32_PREFIX = "base32:"
"""A secret imported from another provider is stored as `base32:<its base32 text>`."""


def totp_key(secret: str) -> bytes:
    """The HMAC key of a decrypted secret: its UTF-8 bytes, or the bytes an imported
    `base32:` secret encodes (better-auth's `decryptTOTPSecret`)."""
    if not secret.startswith(BASE32_PREFIX):
        return secret.encode("utf-8")
    text = secret[len(BASE32_PREFIX) :].upper().rstrip("=")
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("an imported TOTP secret is not base32") from None


@functools.cache
def _totp_class() -> type[pyotp.TOTP]:
    """pyotp's TOTP, imported when a code is first checked (not by `import bastion`)."""
    import pyotp

    class TOTP(pyotp.TOTP):
        # better-auth takes any key: an imported 80-bit secret (16 base32 characters, common
        # in older apps) must keep working. Secrets made here have 192 bits (32 characters).
        min_secret_length_bits = 0

    return TOTP


def _totp(key: bytes, digits: int, period: int) -> pyotp.TOTP:
    totp_class = _totp_class()
    return totp_class(base64.b32encode(key).decode("ascii"), digits=digits, interval=period)


def matching_code(key: bytes, code: str, *, digits: int, period: int, now: float) -> int | None:
    """The time step (`now // period`, ±1) whose code `code` is, or None.

    Only ASCII digits of the right length can match: pyotp compares NFKC-normalised text,
    which would let full-width digits through where better-auth compares the characters."""
    if len(code) != digits or not (code.isascii() and code.isdigit()):
        return None
    from pyotp.exceptions import OTPVerificationError

    try:
        return _totp(key, digits, period).verify_and_get_timecode(
            code, for_time=now, valid_window=1
        )
    except OTPVerificationError:
        return None


def totp_code(key: bytes, *, digits: int, period: int, now: float) -> str:
    """The code of the time step `now` falls in."""
    return _totp(key, digits, period).at(now)


def _component(text: str) -> str:
    """JavaScript's encodeURIComponent."""
    return quote(text, safe="-_.!~*'()")


def _form(text: str) -> str:
    """URLSearchParams' encoding of a value (application/x-www-form-urlencoded)."""
    return quote(text, safe="*-._ ").replace(" ", "+")


def totp_uri(key: bytes, *, issuer: str, account: str, digits: int, period: int) -> str:
    """`otpauth://totp/<issuer>:<account>?secret=…&issuer=…&digits=…&period=…`, as
    better-auth's `createOTP(secret).url(issuer, account)` writes it."""
    secret = base64.b32encode(key).decode("ascii").rstrip("=")
    query = "&".join(
        f"{name}={_form(value)}"
        for name, value in (
            ("secret", secret),
            ("issuer", issuer),
            ("digits", str(digits)),
            ("period", str(period)),
        )
    )
    return f"otpauth://totp/{_component(issuer)}:{_component(account)}?{query}"


# -- backup codes --------------------------------------------------------------------------


def generate_backup_codes(options: BackupCodeOptions) -> list[str]:
    """`amount` codes of `length` [A-Za-z0-9] characters, split after the fifth by `-`."""
    if options.generate is not None:
        return [str(code) for code in options.generate()]
    codes = (random_string(options.code_length, ALPHANUMERIC) for _ in range(options.amount))
    return [f"{code[:5]}-{code[5:]}" for code in codes]


async def encode_backup_codes(codes: Sequence[str], secret: str, options: BackupCodeOptions) -> str:
    """The column's value for `codes`."""
    store = options.store
    if store == "hashed":
        return json.dumps([_hashed(code) for code in codes], separators=(",", ":"))
    text = json.dumps(list(codes), separators=(",", ":"), ensure_ascii=False)
    if store == "encrypted":
        return encrypt(secret, text)
    if isinstance(store, Mapping):
        return str(await call_user(store["encrypt"], text))
    return text


async def encode_kept_codes(codes: Sequence[str], secret: str, options: BackupCodeOptions) -> str:
    """The column's value for codes as `read_backup_codes` gave them (hashes stay hashes)."""
    if options.store == "hashed":
        return json.dumps(list(codes), separators=(",", ":"))
    return await encode_backup_codes(codes, secret, options)


async def read_backup_codes(
    value: str, secret: str, options: BackupCodeOptions
) -> list[str] | None:
    """The codes a column holds (their hashes when stored hashed); None when it holds no
    list. Raises DecryptionFailed for a value this secret did not encrypt."""
    store = options.store
    if store == "encrypted":
        text = decrypt(secret, value)
    elif isinstance(store, Mapping):
        text = str(await call_user(store["decrypt"], value))
    else:
        text = value
    try:
        codes = json.loads(text)
    except ValueError:
        return None
    if not isinstance(codes, list):
        return None
    return [code for code in codes if isinstance(code, str)]


def _hashed(code: str) -> str:
    return sha256_base64url(code)


def use_backup_code(
    codes: Sequence[str], code: str, options: BackupCodeOptions
) -> list[str] | None:
    """The stored `codes` without `code`, or None when `code` is not among them. Every one is
    compared, in constant time."""
    given = (_hashed(code) if options.store == "hashed" else code).encode("utf-8")
    left = [stored for stored in codes if not hmac.compare_digest(stored.encode("utf-8"), given)]
    return None if len(left) == len(codes) else left


# -- one-time codes sent by email or SMS -----------------------------------------------------


async def store_otp(code: str, secret: str, options: OTPOptions) -> str:
    """How a code is kept (better-auth's `storeOTP`)."""
    store = options.store_otp
    if store == "hashed":
        return sha256_base64url(code)
    if isinstance(store, Mapping):
        if "hash" in store:
            return str(await call_user(store["hash"], code))
        return str(await call_user(store["encrypt"], code))
    if store == "encrypted":
        return encrypt(secret, code)
    return code


async def unstore_otp(stored: str, given: str, secret: str, options: OTPOptions) -> tuple[str, str]:
    """The two values to compare: the stored code and the one given, each as kept."""
    store = options.store_otp
    if store == "hashed":
        return stored, sha256_base64url(given)
    if store == "encrypted":
        return decrypt(secret, stored), given
    if isinstance(store, Mapping):
        if "hash" in store:
            return stored, str(await call_user(store["hash"], given))
        return str(await call_user(store["decrypt"], stored)), given
    return stored, given


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
