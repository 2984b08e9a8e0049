"""bastion.identity.crypto against better-auth 1.7's golden values (spec §4, §7)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import string
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import jwt
import pytest

from bastion.identity import crypto
from bastion.identity.crypto import (
    ALPHANUMERIC,
    DIGITS,
    LETTERS,
    LOWER_ALPHANUMERIC,
    URL_SAFE,
    InvalidToken,
    PasswordFunctions,
    PasswordHasher,
    PasswordHashing,
    TokenError,
    TokenExpired,
    decode_base64_any,
    generate_id,
    hmac_sign,
    hmac_verify,
    random_string,
    sha256_base64url,
    sign_jwt,
    verify_jwt,
)

# better-auth-golden/run1.mjs, run1.out (better-auth 1.7.1)
SECRET = "a-very-long-secret-value-for-golden-tests-0123456789"
GOLDEN_PASSWORD = "password123"
GOLDEN_HASH = (
    "ccdf1d9d1006bfc5d13d939e86643f84:b151a12ff719df553672e1587edddfbff7461c43ddbcc37e35883041bb5c"
    "e5e782292a642dd60f2f7e9cd64696ee629da7b62a8ac55c71bd195086788c34ea26"
)
GOLDEN_TOKEN = "BzsyjvPniWKwf687dwkxqmjH70vi4Ay3"
GOLDEN_TOKEN_SIG = "/cSbVrViBEjvNBmwD+QDOlBp3x9yC6IMabjcUCCASsE="
GOLDEN_DONT_REMEMBER_SIG = "boOQICKF3o/NgAfHvxgN6Lzi9n5Q5a67CkoTMjRiZko="
GOLDEN_JWT = (
    "eyJhbGciOiJIUzI1NiJ9.eyJlbWFpbCI6ImFsaWNlQGV4YW1wbGUuY29tIiwiaWF0IjoxNzk1NDAyNTk5LCJleHAiOjE3"
    "OTU0MDYxOTl9.MpnxfotldfmxcbQ19NEzullF8trcRejoTrxn0vMeRYY"
)
GOLDEN_JWT_IAT = 1795402599
HASH_SHAPE = re.compile(r"[0-9a-f]{32}:[0-9a-f]{128}")


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- random identifiers ----------------------------------------------------------------------


def test_generate_id_is_32_alphanumeric_by_default() -> None:
    assert re.fullmatch(r"[A-Za-z0-9]{32}", generate_id())
    assert re.fullmatch(r"[A-Za-z0-9]{24}", generate_id(24))
    assert len({generate_id() for _ in range(50)}) == 50


@pytest.mark.parametrize(
    ("alphabet", "pattern"),
    [
        (ALPHANUMERIC, r"[A-Za-z0-9]"),
        (LOWER_ALPHANUMERIC, r"[0-9a-z]"),
        (URL_SAFE, r"[a-zA-Z0-9_-]"),
        (LETTERS, r"[a-zA-Z]"),
        (DIGITS, r"[0-9]"),
    ],
)
def test_random_string_uses_only_its_alphabet(alphabet: str, pattern: str) -> None:
    sample = random_string(2000, alphabet)
    assert re.fullmatch(f"{pattern}{{2000}}", sample)
    assert set(sample) == set(alphabet)  # 2000 draws reach every character


def test_named_alphabets_match_the_spec() -> None:
    assert sorted(ALPHANUMERIC) == sorted(string.ascii_letters + string.digits)
    assert sorted(LOWER_ALPHANUMERIC) == sorted("0123456789abcdefghijklmnopqrstuvwxyz")
    assert sorted(URL_SAFE) == sorted(ALPHANUMERIC + "-_")


@pytest.mark.parametrize(("length", "alphabet"), [(-1, ALPHANUMERIC), (4, ""), (4, "aab")])
def test_random_string_refuses_bad_arguments(length: int, alphabet: str) -> None:
    with pytest.raises(ValueError):
        random_string(length, alphabet)


def test_random_string_of_length_zero_is_empty() -> None:
    assert random_string(0, DIGITS) == ""


# --- HMAC, base64, hashing -------------------------------------------------------------------


def test_hmac_sign_matches_the_golden_session_cookie() -> None:
    assert hmac_sign(SECRET, GOLDEN_TOKEN) == GOLDEN_TOKEN_SIG
    assert hmac_sign(SECRET, "true") == GOLDEN_DONT_REMEMBER_SIG


def test_hmac_sign_urlsafe_is_base64url_without_padding() -> None:
    signature = hmac_sign(SECRET, GOLDEN_TOKEN, urlsafe=True)
    assert signature == GOLDEN_TOKEN_SIG.rstrip("=").replace("+", "-").replace("/", "_")
    assert len(signature) == 43


@pytest.mark.parametrize(
    "signature",
    [
        GOLDEN_TOKEN_SIG,  # standard, padded
        GOLDEN_TOKEN_SIG.rstrip("="),  # standard, unpadded
        GOLDEN_TOKEN_SIG.replace("+", "-").replace("/", "_"),  # url-safe, padded
        hmac_sign(SECRET, GOLDEN_TOKEN, urlsafe=True),  # url-safe, unpadded
    ],
)
def test_hmac_verify_accepts_either_alphabet_and_padding(signature: str) -> None:
    assert hmac_verify(SECRET, GOLDEN_TOKEN, signature)


@pytest.mark.parametrize(
    ("value", "signature"),
    [
        (GOLDEN_TOKEN + "x", GOLDEN_TOKEN_SIG),  # other value
        (GOLDEN_TOKEN, "A" + GOLDEN_TOKEN_SIG[1:]),  # other signature
        (GOLDEN_TOKEN, GOLDEN_TOKEN_SIG[:-4]),  # truncated
        (GOLDEN_TOKEN, ""),
        (GOLDEN_TOKEN, "not base64!"),
        (GOLDEN_TOKEN, GOLDEN_TOKEN_SIG.replace("/", "_")),  # mixed alphabets
        (GOLDEN_TOKEN, "é" * 43),
    ],
)
def test_hmac_verify_refuses_wrong_or_garbage_signatures(value: str, signature: str) -> None:
    assert not hmac_verify(SECRET, value, signature)


def test_hmac_verify_refuses_another_secret() -> None:
    assert not hmac_verify(SECRET + "x", GOLDEN_TOKEN, GOLDEN_TOKEN_SIG)


def test_lone_surrogates_are_encoded_like_text_encoder() -> None:
    # TextEncoder turns a lone surrogate into U+FFFD; a signature must not raise on it.
    assert hmac_sign(SECRET, "a\ud800b") == hmac_sign(SECRET, "a\ufffdb")
    assert sha256_base64url("\udc00") == sha256_base64url("\ufffd")


def test_decode_base64_any_mirrors_better_auth() -> None:
    assert decode_base64_any("aGk=") == b"hi"
    assert decode_base64_any("aGk") == b"hi"
    assert decode_base64_any("-_8") == b"\xfb\xff"
    assert decode_base64_any("+/8=") == b"\xfb\xff"
    for bad in ("a+b-", "a", "ab$c"):
        with pytest.raises(ValueError):
            decode_base64_any(bad)


def test_sha256_base64url() -> None:
    assert sha256_base64url("abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
    expected = base64.urlsafe_b64encode(hashlib.sha256("é".encode()).digest()).rstrip(b"=")
    assert sha256_base64url("é") == expected.decode()


# --- password hashing ------------------------------------------------------------------------


async def test_verifies_the_golden_better_auth_hash() -> None:
    hasher = PasswordHasher()
    assert await hasher.verify(GOLDEN_HASH, GOLDEN_PASSWORD)
    assert not await hasher.verify(GOLDEN_HASH, GOLDEN_PASSWORD + "!")
    assert not await hasher.verify(GOLDEN_HASH, "Password123")


async def test_hash_has_better_auths_format_and_round_trips() -> None:
    hasher = PasswordHasher()
    stored = await hasher.hash("correct-horse-battery")
    assert HASH_SHAPE.fullmatch(stored)
    assert await hasher.verify(stored, "correct-horse-battery")
    assert not await hasher.verify(stored, "correct-horse-batter")
    assert stored != await hasher.hash("correct-horse-battery")  # a fresh salt each time


async def test_hash_is_what_better_auth_computes() -> None:
    # scrypt(NFKC(pw), salt = the hex string's bytes, N=16384, r=16, p=1, dkLen=64)
    stored = await PasswordHasher().hash("correct-horse-battery")
    salt, key = stored.split(":")
    expected = hashlib.scrypt(
        b"correct-horse-battery", salt=salt.encode(), n=16384, r=16, p=1, dklen=64, maxmem=2**27
    )
    assert key == expected.hex()


@pytest.mark.parametrize(
    "password",
    [
        "x" * 64,
        "Aa1!" * 16,
        "pässwörd-日本語-🔐-пароль",
        "\u00e9t\u00e9 \u2603 \U0001f600 \u0627\u0644\u0633\u0644\u0627\u0645",
    ],
)
async def test_long_and_unicode_passwords_round_trip(password: str) -> None:
    """# S1: a 64-character and a Unicode password hash and verify; a near miss does not."""
    hasher = PasswordHasher()
    stored = await hasher.hash(password)
    assert await hasher.verify(stored, password)
    assert not await hasher.verify(stored, password[:-1])


async def test_passwords_are_nfkc_normalised() -> None:
    """# S1: composed and decomposed forms (and compatibility characters) are the same password."""
    hasher = PasswordHasher()
    stored = await hasher.hash("caf\u00e9 \ufb01")  # é precomposed, "fi" ligature
    assert await hasher.verify(stored, "cafe\u0301 fi")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "no-colon-at-all",
        ":",
        "ccdf1d9d1006bfc5d13d939e86643f84:",
        ":" + GOLDEN_HASH.split(":")[1],
        GOLDEN_HASH + ":extra",
        GOLDEN_HASH[:-2],  # key too short
        GOLDEN_HASH + "00",  # key too long
        GOLDEN_HASH[:-2] + "zz",  # not hex
        GOLDEN_HASH[:-4] + " 0a ",  # whitespace fromhex would skip
        "$test$sha256$abcdef",
        None,
        42,
    ],
)
async def test_malformed_stored_hashes_do_not_verify(stored: object) -> None:
    assert await PasswordHasher().verify(stored, GOLDEN_PASSWORD) is False  # type: ignore[arg-type]


async def test_dummy_verify_costs_one_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = crypto._scrypt

    def spy(password: str, salt: str) -> bytes:
        calls.append((password, salt))
        return real(password, salt)

    monkeypatch.setattr(crypto, "_scrypt", spy)
    hasher = PasswordHasher()
    await hasher.dummy_verify("whatever")
    assert len(calls) == 1
    assert calls[0][0] == "whatever"
    assert re.fullmatch(r"[0-9a-f]{32}", calls[0][1])


async def test_hashing_does_not_block_the_event_loop() -> None:
    hasher = PasswordHasher(max_concurrency=2)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    hashes = await asyncio.gather(*(hasher.hash(f"password-{i}") for i in range(4)))
    during = ticks - before
    stop.set()
    await task
    assert all(HASH_SHAPE.fullmatch(h) for h in hashes)
    # On the loop, 4 hashes would run back to back and the ticker would not run at all.
    assert during > 20


class ConcurrencyProbe:
    """A stand-in for scrypt that records how many run at once."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.calls = 0

    def __call__(self, password: str, salt: str) -> bytes:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return hashlib.sha512((password + salt).encode()).digest()


async def test_at_most_max_concurrency_hashes_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = ConcurrencyProbe()
    monkeypatch.setattr(crypto, "_scrypt", probe)
    hasher = PasswordHasher(max_concurrency=2)
    await asyncio.gather(*(hasher.hash("pw") for _ in range(6)))
    assert probe.calls == 6
    assert probe.peak == 2


async def test_a_cancelled_hash_keeps_its_slot_until_the_thread_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started, release = threading.Event(), threading.Event()

    def held(password: str, salt: str) -> bytes:
        started.set()
        assert release.wait(10)
        return hashlib.sha512((password + salt).encode()).digest()

    probe = ConcurrencyProbe(seconds=0)
    monkeypatch.setattr(crypto, "_scrypt", held)
    hasher = PasswordHasher(max_concurrency=1)
    first = asyncio.create_task(hasher.hash("pw"))
    assert await asyncio.to_thread(started.wait, 10)  # its thread is running
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    monkeypatch.setattr(crypto, "_scrypt", probe)
    second = asyncio.create_task(hasher.hash("pw"))  # must wait for the cancelled one's thread
    for _ in range(20):
        await asyncio.sleep(0)
    assert probe.calls == 0 and not second.done()
    release.set()
    await second
    assert probe.calls == 1


def test_the_hasher_can_be_built_outside_a_loop_and_used_in_several() -> None:
    hasher = PasswordHasher(max_concurrency=1)
    stored = asyncio.run(hasher.hash("correct-horse-battery"))
    assert asyncio.run(hasher.verify(stored, "correct-horse-battery"))


def test_max_concurrency_defaults_to_the_cpu_count_and_must_be_positive() -> None:
    assert PasswordHasher().max_concurrency >= 1
    assert PasswordHasher(3).max_concurrency == 3
    with pytest.raises(ValueError):
        PasswordHasher(0)


async def test_custom_password_functions_plug_in() -> None:
    async def fake_hash(password: str) -> str:
        return "$test$" + password[::-1]

    async def fake_verify(stored: str, password: str) -> bool:
        return stored == "$test$" + password[::-1]

    hashing: PasswordHashing = PasswordFunctions(hash=fake_hash, verify=fake_verify)
    stored = await hashing.hash("secret-pw")
    assert stored == "$test$wp-terces"
    assert await hashing.verify(stored, "secret-pw")
    assert not await hashing.verify(stored, "other")
    await hashing.dummy_verify("anything")


def test_password_hasher_is_a_password_hashing() -> None:
    hashing: PasswordHashing = PasswordHasher()
    assert hashing is not None


# --- email-verification JWT ------------------------------------------------------------------


def test_sign_jwt_reproduces_the_golden_token() -> None:
    token = sign_jwt(SECRET, {"email": "alice@example.com"}, 3600, now=at(GOLDEN_JWT_IAT))
    assert token == GOLDEN_JWT


def test_sign_jwt_header_and_claims() -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, 900_000, tzinfo=UTC)
    token = sign_jwt(SECRET, {"email": "a@b.c", "userId": "u1"}, 60, now=now)
    assert jwt.get_unverified_header(token) == {"alg": "HS256"}
    options = {"verify_exp": False, "verify_iat": False}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options=options)  # type: ignore[arg-type]
    issued = int(now.timestamp())  # whole seconds, rounded down
    assert claims == {"email": "a@b.c", "userId": "u1", "iat": issued, "exp": issued + 60}
    assert list(claims) == ["email", "userId", "iat", "exp"]


def test_verify_jwt_accepts_the_golden_token_until_it_expires() -> None:
    claims = verify_jwt(SECRET, GOLDEN_JWT, now=at(GOLDEN_JWT_IAT))
    assert claims == {"email": "alice@example.com", "iat": GOLDEN_JWT_IAT, "exp": 1795406199}
    assert verify_jwt(SECRET, GOLDEN_JWT, now=at(1795406198.999))["email"] == "alice@example.com"
    with pytest.raises(TokenExpired):
        verify_jwt(SECRET, GOLDEN_JWT, now=at(1795406199))  # jose: expired once exp <= now


def test_verify_jwt_uses_the_callers_clock_offset_aware() -> None:
    plus_two = timezone(timedelta(hours=2))
    now = at(GOLDEN_JWT_IAT).astimezone(plus_two)
    assert verify_jwt(SECRET, GOLDEN_JWT, now=now)["iat"] == GOLDEN_JWT_IAT
    with pytest.raises(ValueError):
        verify_jwt(SECRET, GOLDEN_JWT, now=datetime(2026, 11, 23))  # naive
    with pytest.raises(ValueError):
        sign_jwt(SECRET, {}, 60, now=datetime(2026, 11, 23))


def _forge(header: dict[str, object], claims: dict[str, object], key: bytes = b"") -> str:
    """A JWT with exactly this header and claims, signed per its `alg` (HS256, HS384, none)."""

    def part(data: dict[str, object]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(claims)}"
    digestmod = {"HS256": "sha256", "HS384": "sha384"}.get(str(header["alg"]))
    if digestmod is None:
        return signing_input + "."
    digest = hmac.new(key, signing_input.encode(), digestmod).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def _hs256(**claims: object) -> str:
    return _forge({"alg": "HS256"}, claims, SECRET.encode())


GOOD: dict[str, object] = {"email": "a@b.c", "iat": GOLDEN_JWT_IAT, "exp": 1795406199}
OTHER_KEY = b"another-secret-of-enough-length-0123456789"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_forge({"alg": "none"}, GOOD), id="alg-none"),
        pytest.param(_forge({"alg": "none", "typ": "JWT"}, GOOD), id="alg-none-typ"),
        pytest.param(_forge({"alg": "HS384"}, GOOD, SECRET.encode()), id="hs384"),
        pytest.param(_forge({"alg": "HS256"}, GOOD, OTHER_KEY), id="other-secret"),
        pytest.param(_hs256(email="a@b.c"), id="no-exp"),
        pytest.param(_hs256(**{**GOOD, "exp": "1795406199"}), id="exp-string"),
        pytest.param(_hs256(**{**GOOD, "exp": True}), id="exp-bool"),
        pytest.param(_hs256(**{**GOOD, "iat": "yesterday"}), id="iat-string"),
        pytest.param(_hs256(**{**GOOD, "nbf": GOLDEN_JWT_IAT + 5}), id="nbf-future"),
        pytest.param(GOLDEN_JWT[:-2] + "AA", id="tampered-signature"),
        pytest.param(GOLDEN_JWT.replace("ImFsaWNl", "ImJvYm"), id="tampered-payload"),
        pytest.param("not.a.jwt", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param("a.b", id="two-parts"),
    ],
)
def test_verify_jwt_refuses_anything_but_a_good_hs256_token(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify_jwt(SECRET, token, now=at(GOLDEN_JWT_IAT))


def test_token_errors_form_a_tree() -> None:
    assert issubclass(TokenExpired, TokenError)
    assert issubclass(InvalidToken, TokenError)
    assert not issubclass(TokenExpired, InvalidToken)
    with pytest.raises(TokenError):
        verify_jwt(SECRET, GOLDEN_JWT, now=at(1795406199 + 1))


def test_sign_jwt_refuses_a_non_positive_lifetime() -> None:
    with pytest.raises(ValueError):
        sign_jwt(SECRET, {}, 0)
