"""Verifying a compact JWS against a policy: the header checks, the signature (PyJWT's
algorithm objects do the cryptography) and the claims, each item of the security checklist
on one visible line:

- the compact JWS is parsed once, strictly, with size caps on the token and its header (S23);
- `alg` must be in the verifier's allow-list, which never holds `none` and is either HMAC only
  (a shared secret) or asymmetric only (a JWKS) (S20, S21, S22);
- the key must be of the algorithm's type and curve (S22), and comes only from the
  configured source: `jku`, `x5u`, `jwk` and `x5c` headers are never read (S24);
- `crit` and unencoded payloads are refused; `typ` is checked when the policy says so (S28);
- claims are checked only after the signature (`_claims`).

`JWTVerifier` gets its key from a `KeySource` (async: a JWKS may have to be fetched) and
remembers verified tokens; `verify_with_key` checks a token against a key in hand, without
I/O, for tokens a service signs itself.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jwt.algorithms import Algorithm
from jwt.exceptions import InvalidKeyError

from ._algorithms import algorithm_objects, check_algorithms
from ._claims import JWTPolicy, check_claims, normalize_token_type
from ._compact import b64decode, json_object, split_compact
from ._errors import AlgorithmNotAllowed, InvalidSignature, InvalidTokenType, MalformedToken
from ._keys import KeySource, PublicKey, SecretKey, key_accepts

__all__ = ["JWTVerifier", "verify_with_key"]

MAX_TOKEN_BYTES = 32 * 1024
MAX_HEADER_BYTES = 2048  # base64url characters of the header segment (S23)
MAX_KID_LENGTH = 256


# A token whose header passed, with what the key lookup and the signature check need:
# alg, kid, PyJWT's algorithm, signing input, payload segment, decoded signature. A plain
# tuple for speed, as `Compact`.
_Read = tuple[str, str | None, Algorithm, bytes, bytes, bytes]


class _Checks:
    """Every check but finding the key: synchronous, shared by both entry points."""

    __slots__ = ("algorithms", "policy")

    def __init__(self, policy: JWTPolicy, *, symmetric: bool, owner: str) -> None:
        check_algorithms(policy.algorithms, symmetric=symmetric, owner=owner)
        self.policy = policy
        self.algorithms = algorithm_objects(policy.algorithms)

    def read(self, token: str, max_header_bytes: int, max_kid_length: int) -> _Read:
        header, header_segment, payload_segment, signature_segment = split_compact(
            token, max_header_bytes
        )
        alg = header.get("alg")
        algorithm = self.algorithms.get(alg) if isinstance(alg, str) else None
        if algorithm is None or not isinstance(alg, str):
            # Exact, case-sensitive lookup: "none", "None", "NONE" and anything else off
            # the list end here (S20), as does HS256 against a JWKS (S21).
            raise AlgorithmNotAllowed(f"alg {alg!r} is not allowed")
        if "crit" in header:
            raise MalformedToken("crit extensions are not supported")
        if "b64" in header and header["b64"] is not True:
            raise MalformedToken("unencoded payloads are not supported")
        accepted = self.policy.token_types
        if accepted is not None:
            typ = header.get("typ")
            if not isinstance(typ, str) or normalize_token_type(typ) not in accepted:
                raise InvalidTokenType(f"typ {typ!r} is not accepted here")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > max_kid_length):
            raise MalformedToken("kid must be a short string")
        # jku, x5u, jwk and x5c are deliberately never read: keys come only from the
        # configured source (S24).
        if not signature_segment:
            raise InvalidSignature("empty signature")
        # Decoded before any key is looked up: a garbled token never costs a JWKS fetch.
        signature = b64decode(signature_segment, "signature")
        signing_input = header_segment + b"." + payload_segment
        return alg, kid, algorithm, signing_input, payload_segment, signature

    def check(self, read: _Read, key: Any, now: float) -> tuple[dict[str, Any], bytes]:
        """The claims and the decoded payload, once signature and claims are good."""
        alg, _, algorithm, signing_input, payload_segment, signature = read
        if not key_accepts(alg, key):
            raise AlgorithmNotAllowed(f"alg {alg} does not match the key's type")
        crypto_key = key.key if isinstance(key, PublicKey) else key
        try:
            valid = algorithm.verify(signing_input, crypto_key, signature)
        except (ValueError, TypeError, InvalidKeyError):
            valid = False  # e.g. an ES256 signature of the wrong length (S22)
        if not valid:
            raise InvalidSignature("signature verification failed")
        payload = b64decode(payload_segment, "payload")
        claims = json_object(payload, "payload")
        check_claims(self.policy, claims, now)
        return claims, payload


def _check_size(token: str, max_token_bytes: int) -> None:
    if not isinstance(token, str) or not token:
        raise MalformedToken("empty token")
    if len(token) > max_token_bytes:
        raise MalformedToken("token too large")


def verify_with_key(
    token: str, key: SecretKey | PublicKey, policy: JWTPolicy, *, now: float
) -> dict[str, Any]:
    """The verified claims of `token`, checked with `key` against `policy` at `now` (seconds
    since the epoch); raises a JWTError subclass otherwise."""
    checks = _Checks(policy, symmetric=isinstance(key, SecretKey), owner="verify_with_key")
    _check_size(token, MAX_TOKEN_BYTES)
    read = checks.read(token, MAX_HEADER_BYTES, MAX_KID_LENGTH)
    material = key.secret if isinstance(key, SecretKey) else key
    return checks.check(read, material, now)[0]


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

    max_token_bytes = MAX_TOKEN_BYTES
    max_header_bytes = MAX_HEADER_BYTES
    max_kid_length = MAX_KID_LENGTH
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
        self._checks = _Checks(policy, symmetric=keys.symmetric, owner="JWTVerifier")
        self._memo: OrderedDict[str, _Verified] = OrderedDict()

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims; raises a JWTError subclass otherwise."""
        _check_size(token, self.max_token_bytes)
        # Taken out while it is checked: if any check raises, it stays out.
        seen = self._memo.pop(token, None)
        if seen is not None and await self.keys.key_for(seen.kid, seen.alg) is seen.key:
            claims = json_object(seen.payload, "payload")
            check_claims(self.policy, claims, self._clock())
            self._remember(token, seen)  # back in as the most recently used
            return claims
        read = self._checks.read(token, self.max_header_bytes, self.max_kid_length)
        alg, kid = read[0], read[1]
        key = await self.keys.key_for(kid, alg)
        claims, payload = self._checks.check(read, key, self._clock())
        if len(token) <= self.max_memo_token_bytes:
            self._remember(token, _Verified(kid, alg, key, payload))
        return claims

    def _remember(self, token: str, verified: _Verified) -> None:
        memo = self._memo
        while memo and len(memo) >= self.memo_size:
            memo.popitem(last=False)  # the least recently used
        if self.memo_size > 0:
            memo[token] = verified
