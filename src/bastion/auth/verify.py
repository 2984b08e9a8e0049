"""JWT verification shared by every JWT provider: algorithms, keys, signature, claims.

PyJWT's algorithm objects do the cryptography; the rest is ours, small and explicit, so each
item of the security checklist has one visible line that enforces it:

- the compact JWS is parsed once, strictly, with size caps on the token and its header (S23);
- `alg` must be in the verifier's allow-list, which never holds `none` and is either HMAC only
  (a shared secret) or asymmetric only (a JWKS) (S20, S21, S22);
- the key must be of the algorithm's type and curve (S22), and comes only from the
  configured source: `jku`, `x5u`, `jwk` and `x5c` headers are never read (S24);
- `crit` and unencoded payloads are refused; `typ` is checked when the policy says so (S28);
- claims are checked only after the signature: exp required, nbf/iat with a bounded leeway,
  exact iss, aud string or list (S25-S27, S29).

Errors are types (`JWTError` and subclasses), never strings to compare:

    ConfigurationError            a provider, policy or cache was configured wrongly
    JWTError                      the token was not accepted
    ├── MalformedToken            not a compact JWS, bad base64/JSON, too large, crit, b64
    ├── AlgorithmNotAllowed       alg not allowed (none, HS with a JWKS, ...) or not the key's
    ├── InvalidTokenType          typ is not one this verifier accepts
    ├── KeyNotFound               no key for this kid (after at most one refresh), or ambiguous
    ├── InvalidSignature
    ├── InvalidClaim              .claim names it
    │   ├── MissingClaim
    │   ├── ExpiredToken          exp
    │   ├── ImmatureToken         nbf, or iat in the future
    │   ├── InvalidIssuer         iss
    │   └── InvalidAudience       aud
    └── KeysUnavailable           the issuer's keys could not be had (a fault, not the token's)
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import Algorithm, HMACAlgorithm, OKPAlgorithm, get_default_algorithms
from jwt.exceptions import InvalidKeyError

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "MIN_RSA_BITS",
    "AlgorithmNotAllowed",
    "ConfigurationError",
    "ExpiredToken",
    "ImmatureToken",
    "InvalidAudience",
    "InvalidClaim",
    "InvalidIssuer",
    "InvalidSignature",
    "InvalidTokenType",
    "JWTError",
    "JWTPolicy",
    "JWTVerifier",
    "KeyNotFound",
    "KeySet",
    "KeySource",
    "KeysUnavailable",
    "MalformedToken",
    "MissingClaim",
    "PublicKey",
    "SecretKey",
    "check_algorithms",
    "normalize_token_type",
]


# -- errors ------------------------------------------------------------------------------


class ConfigurationError(ValueError):
    """A provider, verification policy or key cache was configured wrongly. Raised at
    construction, naming the option to fix."""


class JWTError(Exception):
    """The token was not accepted. Providers turn every JWTError into "no user" (None)."""


class MalformedToken(JWTError):
    pass


class AlgorithmNotAllowed(JWTError):
    pass


class InvalidTokenType(JWTError):
    pass


class KeyNotFound(JWTError):
    pass


class InvalidSignature(JWTError):
    pass


class InvalidClaim(JWTError):
    def __init__(self, claim: str, message: str) -> None:
        super().__init__(f"{claim}: {message}")
        self.claim = claim


class MissingClaim(InvalidClaim):
    def __init__(self, claim: str) -> None:
        super().__init__(claim, "required claim is missing")


class ExpiredToken(InvalidClaim):
    pass


class ImmatureToken(InvalidClaim):
    pass


class InvalidIssuer(InvalidClaim):
    pass


class InvalidAudience(InvalidClaim):
    pass


class KeysUnavailable(JWTError):
    """The keys to check the token could not be had (the JWKS endpoint is down and nothing
    usable is cached, ...). Not the token's fault, but it still cannot be accepted: providers
    answer it 503, not 401. `retry_after`: seconds until the keys may be had again, when
    known (the JWKS cache's cooldown)."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# -- algorithms and keys -----------------------------------------------------------------

HMAC_ALGORITHMS: Mapping[str, int] = {"HS256": 32, "HS384": 48, "HS512": 64}  # min key bytes

# alg -> (kty, crv or None when any curve of the family will do)
ASYMMETRIC_ALGORITHMS: Mapping[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "ES256K": ("EC", "secp256k1"),
    "EdDSA": ("OKP", None),  # Ed25519 or Ed448 (RFC 8037)
    "Ed25519": ("OKP", "Ed25519"),  # the fully-specified name (RFC 9864)
}
DEFAULT_ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
_EDDSA_NAMES = frozenset({"EdDSA", "Ed25519"})
MIN_RSA_BITS = 2048

AsymmetricKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey


def _algorithm_objects(names: Iterable[str]) -> dict[str, Algorithm]:
    """PyJWT's implementation of each allowed algorithm, and nothing else (never `none`)."""
    library = get_default_algorithms()
    objects: dict[str, Algorithm] = {}
    for name in names:
        if name == "Ed25519":
            objects[name] = OKPAlgorithm()
        elif name in HMAC_ALGORITHMS or name in ASYMMETRIC_ALGORITHMS:
            objects[name] = library[name]
    return objects


def check_algorithms(algorithms: Iterable[str], *, symmetric: bool, owner: str) -> tuple[str, ...]:
    """Validate an allow-list: known names, no `none`, one family only (S20, S21)."""
    names = tuple(dict.fromkeys(algorithms))
    if not names:
        raise ConfigurationError(f"{owner}: algorithms must name at least one algorithm")
    allowed = HMAC_ALGORITHMS if symmetric else ASYMMETRIC_ALGORITHMS
    for name in names:
        if not isinstance(name, str) or name.lower() == "none":
            raise ConfigurationError(f"{owner}: algorithm {name!r} is never allowed")
        if name not in allowed:
            kind = "HMAC (HS256/HS384/HS512)" if symmetric else "asymmetric (RS*, PS*, ES*, EdDSA)"
            raise ConfigurationError(
                f"{owner}: algorithm {name!r} is not allowed here; this key source takes "
                f"{kind} algorithms only"
            )
    return names


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
            return self.alg in _EDDSA_NAMES and alg in _EDDSA_NAMES
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
    """A shared HMAC secret (HS256/HS384/HS512)."""

    symmetric = True

    def __init__(self, secret: str | bytes, algorithms: Collection[str], *, owner: str) -> None:
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        try:
            # PyJWT refuses PEM, DER, SSH and JWK-shaped input as an HMAC secret: a public
            # key must never become a shared secret (S21, CVE-2022-29217, CVE-2026-48526).
            self._secret = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(raw)
        except InvalidKeyError as error:
            raise ConfigurationError(f"{owner}: secret is not usable: {error}") from None
        need = max(HMAC_ALGORITHMS[name] for name in algorithms)
        if len(self._secret) < need:
            # RFC 7518 §3.2: the key must be at least as long as the hash output.
            raise ConfigurationError(
                f"{owner}: secret must be at least {need} bytes for "
                f"{', '.join(sorted(algorithms))} (got {len(self._secret)}); "
                "`bastion secret` prints a good one"
            )

    async def key_for(self, kid: str | None, alg: str) -> bytes:
        return self._secret


# -- the policy and the verifier ---------------------------------------------------------


def normalize_token_type(value: str) -> str:
    """`typ` compares case-insensitively, with an optional "application/" (RFC 7515 §4.1.9)."""
    lowered = value.strip().lower()
    return lowered.removeprefix("application/")


@dataclass(frozen=True, kw_only=True, slots=True)
class JWTPolicy:
    """What a verifier accepts, apart from the key."""

    algorithms: tuple[str, ...]
    issuer: str | None = None
    audience: tuple[str, ...] | None = None
    leeway: float = 30.0
    # Accepted `typ` values (None: not checked). Compared after normalize_token_type.
    token_types: frozenset[str] | None = None
    required_claims: frozenset[str] = frozenset({"exp"})
    # Claims whose presence rejects the token (Auth0: `nonce` marks an ID token).
    forbidden_claims: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 0 <= self.leeway <= 60:
            raise ConfigurationError(f"leeway must be between 0 and 60 seconds, not {self.leeway}")
        if self.issuer is not None and not self.issuer:
            raise ConfigurationError("issuer must not be empty")
        if self.audience is not None and (
            not self.audience or not all(isinstance(a, str) and a for a in self.audience)
        ):
            raise ConfigurationError("audience must be a non-empty string or list of strings")


_B64URL = re.compile(rb"[A-Za-z0-9_-]*")
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SEXTETS = {char: value for value, char in enumerate(_B64URL_ALPHABET)}
# Segment length mod 4 -> the low bits of its last character that carry no data (RFC 4648
# §3.5): a segment is canonical exactly when they are zero.
_UNUSED_BITS = {2: 0b1111, 3: 0b11}


def _b64decode(segment: bytes, what: str) -> bytes:
    """Strict base64url without padding: the alphabet only and canonical trailing bits, so
    one token has exactly one encoding."""
    tail = len(segment) % 4
    if tail == 1 or not _B64URL.fullmatch(segment):
        raise MalformedToken(f"{what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken(f"{what} is not base64url") from None
    if tail and _SEXTETS[segment[-1]] & _UNUSED_BITS[tail]:
        raise MalformedToken(f"{what} is not canonical base64url")
    return data


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))  # RFC 7519 §7.2: UTF-8 JSON
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise MalformedToken(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"{what} is not a JSON object")
    return value


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidClaim(name, "must be a number of seconds")
    return float(value)


def _compatible(alg: str, key: Any) -> bool:
    """The key object itself is of the algorithm's kind (defence in depth beside accepts)."""
    if alg in HMAC_ALGORITHMS:
        return isinstance(key, bytes)
    if not isinstance(key, PublicKey):
        return False
    return key.accepts(alg)


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token that passed every check: what trusting it again without its signature needs."""

    kid: str | None
    alg: str
    key: Any  # the very object the key source gave; any other object is a miss
    payload: bytes  # the decoded payload, parsed afresh for every caller


class JWTVerifier:
    """Checks one compact JWS against a policy and a key source; returns its claims.

    Verified tokens are remembered, keyed by the whole compact token with its signature, so
    only the very token that was verified can hit: at most `memo_size` of them (0: none),
    the least recently used dropped first. A hit skips the parsing and the signature check
    only while the key source still gives the very same key object for the token's kid and
    alg, so a key rotated out, replaced or no longer obtainable counts exactly as without
    the memo (S31, S33); the claims are checked against the clock again (S25) and parsed
    afresh for each caller. Failures are never remembered.
    """

    max_token_bytes = 32 * 1024
    max_header_bytes = 2048  # base64url characters of the header segment (S23)
    max_kid_length = 256
    memo_size = 10_000
    # Longer tokens are verified every time, so the memo's memory stays bounded too.
    max_memo_token_bytes = 8 * 1024

    def __init__(
        self,
        policy: JWTPolicy,
        keys: KeySource,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.keys = keys
        self._clock = clock
        check_algorithms(policy.algorithms, symmetric=keys.symmetric, owner="JWTVerifier")
        self._algorithms = _algorithm_objects(policy.algorithms)
        self._memo: dict[str, _Verified] = {}

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims; raises a JWTError subclass otherwise."""
        if not isinstance(token, str) or not token:
            raise MalformedToken("empty token")
        if len(token) > self.max_token_bytes:
            raise MalformedToken("token too large")
        # Taken out while it is checked: if any check raises, it stays out.
        seen = self._memo.pop(token, None)
        if seen is not None and await self.keys.key_for(seen.kid, seen.alg) is seen.key:
            claims = _json_object(seen.payload, "payload")
            self._check_claims(claims)
            self._remember(token, seen)  # back in as the most recently used
            return claims
        claims, verified = await self._verify(token)
        if len(token) <= self.max_memo_token_bytes:
            self._remember(token, verified)
        return claims

    def _remember(self, token: str, verified: _Verified) -> None:
        memo = self._memo
        while memo and len(memo) >= self.memo_size:
            del memo[next(iter(memo))]  # the least recently used
        if self.memo_size > 0:
            memo[token] = verified

    async def _verify(self, token: str) -> tuple[dict[str, Any], _Verified]:
        """Every check, from the token's bytes to its claims."""
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("token is not ASCII") from None
        parts = raw.split(b".")
        if len(parts) != 3:
            raise MalformedToken("not a compact JWS (three segments)")
        header_segment, payload_segment, signature_segment = parts
        if len(header_segment) > self.max_header_bytes:
            raise MalformedToken("header too large")
        header = _json_object(_b64decode(header_segment, "header"), "header")

        alg = header.get("alg")
        algorithm = self._algorithms.get(alg) if isinstance(alg, str) else None
        if algorithm is None or not isinstance(alg, str):
            # Exact, case-sensitive lookup: "none", "None", "NONE" and anything else off
            # the list end here (S20), as does HS256 against a JWKS (S21).
            raise AlgorithmNotAllowed(f"alg {alg!r} is not allowed")
        if "crit" in header:
            raise MalformedToken("crit extensions are not supported")
        if "b64" in header and header["b64"] is not True:
            raise MalformedToken("unencoded payloads are not supported")
        self._check_type(header.get("typ"))
        kid = header.get("kid")
        if kid is not None and (
            not isinstance(kid, str) or not kid or len(kid) > self.max_kid_length
        ):
            raise MalformedToken("kid must be a short string")
        # jku, x5u, jwk and x5c are deliberately never read: keys come only from the
        # configured source (S24).

        if not signature_segment:
            raise InvalidSignature("empty signature")
        signature = _b64decode(signature_segment, "signature")
        key = await self.keys.key_for(kid, alg)
        if not _compatible(alg, key):
            raise AlgorithmNotAllowed(f"alg {alg} does not match the key's type")
        signing_input = header_segment + b"." + payload_segment
        crypto_key = key.key if isinstance(key, PublicKey) else key
        try:
            valid = algorithm.verify(signing_input, crypto_key, signature)
        except (ValueError, TypeError, InvalidKeyError):
            valid = False  # e.g. an ES256 signature of the wrong length (S22)
        if not valid:
            raise InvalidSignature("signature verification failed")

        payload = _b64decode(payload_segment, "payload")
        claims = _json_object(payload, "payload")
        self._check_claims(claims)
        return claims, _Verified(kid, alg, key, payload)

    def _check_type(self, typ: Any) -> None:
        accepted = self.policy.token_types
        if accepted is None:
            return
        if not isinstance(typ, str) or normalize_token_type(typ) not in accepted:
            raise InvalidTokenType(f"typ {typ!r} is not accepted here")

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        policy = self.policy
        for name in policy.required_claims:
            if claims.get(name) is None:
                raise MissingClaim(name)
        for name in policy.forbidden_claims:
            if name in claims:
                raise InvalidClaim(name, "must not be present in an access token")
        now = self._clock()
        leeway = policy.leeway
        exp = _number(claims, "exp")
        if exp is None:
            raise MissingClaim("exp")  # S25: always required
        if now >= exp + leeway:
            raise ExpiredToken("exp", "the token has expired")
        nbf = _number(claims, "nbf")
        if nbf is not None and nbf > now + leeway:
            raise ImmatureToken("nbf", "the token is not valid yet")
        iat = _number(claims, "iat")
        if iat is not None and iat > now + leeway:
            raise ImmatureToken("iat", "the token was issued in the future")
        if policy.issuer is not None:
            iss = claims.get("iss")
            if iss is None:
                raise MissingClaim("iss")
            # Exact string equality: no prefix, `in` or trailing-slash leniency (S26).
            if not isinstance(iss, str) or iss != policy.issuer:
                raise InvalidIssuer("iss", "not the configured issuer")
        if policy.audience is not None:
            self._check_audience(claims.get("aud"), policy.audience)
        sub = claims.get("sub")
        if sub is not None and (not isinstance(sub, str) or not sub):
            raise InvalidClaim("sub", "must be a non-empty string")

    @staticmethod
    def _check_audience(aud: Any, accepted: Sequence[str]) -> None:
        if aud is None:
            raise MissingClaim("aud")
        if isinstance(aud, str):
            values = [aud]
        elif isinstance(aud, list) and aud and all(isinstance(v, str) for v in aud):
            values = aud
        else:
            raise InvalidAudience("aud", "must be a string or a list of strings")
        if not any(value in accepted for value in values):
            raise InvalidAudience("aud", "not for this resource")
