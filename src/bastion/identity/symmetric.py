"""better-auth's `symmetricEncrypt` / `symmetricDecrypt` (spec §7.3), byte-compatible.

XChaCha20-Poly1305 (libsodium, through PyNaCl) with the key SHA-256(UTF-8(key string)), a
random 24-byte nonce prepended, no associated data, the whole written as lower-case hex.
better-auth uses it for OAuth tokens (`account.encrypt_oauth_tokens`), the OAuth state cookie
and, in its plugins, TOTP secrets and backup codes. Where a value is bound to one purpose
(the state cookie), the key string is first derived with `purpose_key` (HKDF-SHA256), as
better-auth 1.7.25's `derivePurposeKey` does.
"""

from __future__ import annotations

import binascii
import hashlib
import os
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

__all__ = ["DecryptionFailed", "decrypt", "encrypt", "looks_encrypted", "purpose_key"]

_NONCE_BYTES: Final = 24
_TAG_BYTES: Final = 16
_PURPOSE_SALT: Final = b"better-auth:oauth-encryption:v1"


class DecryptionFailed(ValueError):
    """Not a value this key encrypted: not hex, too short, or the tag does not verify."""


def _key_bytes(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def encrypt(key: str, data: str) -> str:
    """hex(nonce || ciphertext || tag) of UTF-8 `data`."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
        data.encode("utf-8"), None, nonce, _key_bytes(key)
    )
    return (nonce + sealed).hex()


def decrypt(key: str, value: str) -> str:
    """The text `encrypt(key, …)` sealed; DecryptionFailed for anything else."""
    try:
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raise DecryptionFailed("not hex") from None
    if len(raw) < _NONCE_BYTES + _TAG_BYTES:
        raise DecryptionFailed("too short")
    try:
        plain = crypto_aead_xchacha20poly1305_ietf_decrypt(
            raw[_NONCE_BYTES:], None, raw[:_NONCE_BYTES], _key_bytes(key)
        )
    except CryptoError:
        raise DecryptionFailed("the tag does not verify") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionFailed("not UTF-8") from None


def looks_encrypted(value: str) -> bool:
    """better-auth's `isLikelyEncrypted`: a versioned envelope, or even-length hex. A token
    stored before encryption was turned on is read as it is."""
    if value.startswith("$ba$"):
        return True
    if not value or len(value) % 2:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def purpose_key(secret: str, purpose: str) -> str:
    """`derivePurposeKey`: hex of HKDF-SHA256(secret, salt, "better-auth:<purpose>:v1", 32)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_PURPOSE_SALT,
        info=f"better-auth:{purpose}:v1".encode(),
    )
    return hkdf.derive(secret.encode("utf-8")).hex()
