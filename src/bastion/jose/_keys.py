"""Verification keys: a shared HMAC secret, the public keys of a JWK set, and the protocol a
verifier gets them through. A key says which algorithms it may check (S22)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import HMACAlgorithm
from jwt.exceptions import InvalidKeyError

from ._algorithms import ASYMMETRIC_ALGORITHMS, EDDSA_NAMES, HMAC_ALGORITHMS
from ._errors import AlgorithmNotAllowed, ConfigurationError, KeyNotFound

__all__ = ["AsymmetricKey", "KeySet", "KeySource", "PublicKey", "SecretKey", "key_accepts"]

AsymmetricKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One verification key from a JWKS, with what it may be used for."""

    key: AsymmetricKey
    kty: str  # "RSA" | "EC" | "OKP"
    crv: str | None = None  # EC or OKP curve name, JWK spelling ("P-256", "Ed25519")
    kid: str | None = None
    alg: str | None = None  # the JWK's own "alg", when it declares one

    def accepts(self, alg: str) -> bool:
        """Whether a token signed with `alg` may be checked with this key (S22)."""
        family = ASYMMETRIC_ALGORITHMS.get(alg)
        if family is None:
            return False
        kty, crv = family
        if self.kty != kty or (crv is not None and self.crv != crv):
            return False
        if alg == "EdDSA" and self.crv not in ("Ed25519", "Ed448"):
            return False
        if self.alg is not None and self.alg != alg:
            # EdDSA and Ed25519 name the same signature for an Ed25519 key.
            return self.alg in EDDSA_NAMES and alg in EDDSA_NAMES
        return True


@dataclass(frozen=True)
class KeySet:
    """The usable keys of one JWKS, by kid."""

    keys: tuple[PublicKey, ...]
    by_kid: Mapping[str, tuple[PublicKey, ...]] = field(init=False)

    def __post_init__(self) -> None:
        by_kid: dict[str, list[PublicKey]] = {}
        for key in self.keys:
            if key.kid is not None:
                by_kid.setdefault(key.kid, []).append(key)
        object.__setattr__(self, "by_kid", {k: tuple(v) for k, v in by_kid.items()})

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, kid: str | None, alg: str) -> PublicKey | None:
        """The key for (kid, alg); None when the kid is unknown (a refresh may help).

        Raises AlgorithmNotAllowed when the kid is known but its key is of another type,
        and KeyNotFound for a kid-less token when the set holds several keys (S33)."""
        if kid is None:
            if not self.keys:
                return None
            if len(self.keys) > 1:
                raise KeyNotFound("the token has no kid and the key set holds several keys")
            candidates: tuple[PublicKey, ...] = self.keys
        else:
            found = self.by_kid.get(kid)
            if found is None:
                return None
            candidates = found
        for key in candidates:
            if key.accepts(alg):
                return key
        raise AlgorithmNotAllowed(f"alg {alg} does not match the key's type")


class KeySource(Protocol):
    """Where a verifier gets the key for a token: a secret, a JWKS URL, OIDC discovery."""

    symmetric: bool

    async def key_for(self, kid: str | None, alg: str) -> Any:
        """The key to check a token with this `kid` header (None when absent) and `alg`.
        Raises KeyNotFound, AlgorithmNotAllowed or KeysUnavailable."""
        ...


class SecretKey:
    """A shared HMAC secret (HS256/HS384/HS512), usable as a KeySource and to sign.

    `min_length=False` skips RFC 7518's length floor, for secrets another implementation
    already accepts (better-auth's own secret may be shorter than 32 bytes)."""

    symmetric = True

    def __init__(
        self,
        secret: str | bytes,
        algorithms: Collection[str] = ("HS256",),
        *,
        owner: str = "SecretKey",
        min_length: bool = True,
    ) -> None:
        self.algorithms = tuple(algorithms)
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        try:
            # PyJWT refuses PEM, DER, SSH and JWK-shaped input as an HMAC secret: a public
            # key must never become a shared secret (S21, CVE-2022-29217, CVE-2026-48526).
            self.secret: bytes = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(raw)
        except InvalidKeyError as error:
            raise ConfigurationError(f"{owner}: secret is not usable: {error}") from None
        need = max(HMAC_ALGORITHMS[name] for name in algorithms) if min_length else 1
        if len(self.secret) < need:
            # RFC 7518 §3.2: the key must be at least as long as the hash output.
            raise ConfigurationError(
                f"{owner}: secret must be at least {need} bytes for "
                f"{', '.join(sorted(algorithms))} (got {len(self.secret)}); "
                "`bastion secret` prints a good one"
            )

    async def key_for(self, kid: str | None, alg: str) -> bytes:
        return self.secret


def key_accepts(alg: str, key: Any) -> bool:
    """The key object a source gave is of the algorithm's kind (defence in depth beside
    PublicKey.accepts): bytes for HMAC, a PublicKey that accepts `alg` otherwise."""
    if alg in HMAC_ALGORITHMS:
        return isinstance(key, bytes)
    return isinstance(key, PublicKey) and key.accepts(alg)
