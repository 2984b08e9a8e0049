"""JWTAuth: configuration, the shared-secret mode, and the JWKS mode against our own issuer
with attack tokens (S20-S29, S31, S33). Discovery and the real OIDC provider are in
test_jwt_oidc.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bastion.auth.errors import ProviderUnavailable
from bastion.auth.providers.jwt import JWTAuth
from bastion.jose import ConfigurationError, JWKSCache
from tests.auth.issuers import (
    AUDIENCE,
    FakeClock,
    IssuerServer,
    TestIssuer,
    b64,
    b64json,
    forge,
    hmac_token,
    new_key,
    request,
    sign,
    unused_url,
)

SECRET = "s" * 32 + "-a-shared-secret-for-hs256-tests"


def jwks_auth(issuer: TestIssuer, **options: Any) -> JWTAuth:
    options.setdefault("jwks_cache", JWKSCache())
    return JWTAuth(
        jwks_uri=issuer.jwks_uri,
        issuer=options.pop("issuer", issuer.issuer),
        audience=options.pop("audience", AUDIENCE),
        **options,
    )


async def authenticate(provider: JWTAuth, token: str) -> Any:
    return await provider.authenticate_token(token, request(token))


# -- configuration ---------------------------------------------------------------------


def test_nothing_configured_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("JWT_AUTH_SECRET", raising=False)
    with pytest.raises(ConfigurationError) as error:
        JWTAuth()
    message = str(error.value)
    assert "secret=" in message and "JWT_AUTH_SECRET" in message
    assert "jwks_uri=" in message and "issuer=" in message


async def test_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JWT_AUTH_SECRET", SECRET)
    provider = JWTAuth()
    token = hmac_token(
        {"alg": "HS256", "typ": "JWT"}, {"sub": "u", "exp": time.time() + 60}, SECRET.encode()
    )
    assert (await authenticate(provider, token))["sub"] == "u"


def test_secret_and_jwks_uri_are_exclusive():
    with pytest.raises(ConfigurationError, match="not both"):
        JWTAuth(secret=SECRET, jwks_uri="https://idp.example.com/jwks.json", audience="a")


def test_audience_is_required_with_a_jwks():
    with pytest.raises(ConfigurationError, match="audience"):
        JWTAuth(jwks_uri="https://idp.example.com/jwks.json", jwks_cache=JWKSCache())
    with pytest.raises(ConfigurationError, match="audience"):
        JWTAuth(issuer="https://idp.example.com/", jwks_cache=JWKSCache())


@pytest.mark.parametrize("leeway", [-1, 61, 3600])
def test_s25_leeway_is_bounded(leeway: float):
    with pytest.raises(ConfigurationError, match="leeway"):
        JWTAuth(secret=SECRET, leeway=leeway)


@pytest.mark.parametrize("algorithms", [["none"], ["NONE"], ["None"], ["RS256", "none"]])
def test_s20_none_is_never_an_allowed_algorithm(algorithms: list[str]):
    with pytest.raises(ConfigurationError):
        JWTAuth(secret=SECRET, algorithms=algorithms)
    with pytest.raises(ConfigurationError):
        JWTAuth(jwks_uri="https://idp.example.com/j", audience="a", algorithms=algorithms)


def test_s21_one_algorithm_family_per_key_source():
    with pytest.raises(ConfigurationError, match="asymmetric"):
        JWTAuth(jwks_uri="https://idp.example.com/j", audience="a", algorithms=["HS256"])
    with pytest.raises(ConfigurationError, match="HMAC"):
        JWTAuth(secret=SECRET, algorithms=["RS256"])


def _public_key_forms() -> dict[str, bytes]:
    public = new_key("RS256").public
    return {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "pkcs1-pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "ssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "jwk": json.dumps(new_key("RS256").jwk()).encode(),
    }


@pytest.mark.parametrize("form", ["pem", "pkcs1-pem", "der", "ssh", "jwk"])
def test_s21_a_public_key_is_refused_as_an_hmac_secret(form: str):
    with pytest.raises(ConfigurationError, match="secret"):
        JWTAuth(secret=_public_key_forms()[form])


def test_short_secrets_are_refused():
    with pytest.raises(ConfigurationError, match="32 bytes"):
        JWTAuth(secret="too-short")
    with pytest.raises(ConfigurationError, match="64 bytes"):
        JWTAuth(secret="k" * 40, algorithms=["HS256", "HS512"])


# -- shared-secret mode ------------------------------------------------------------------


def hs(claims: dict[str, Any], *, secret: str = SECRET, alg: str = "HS256", **header: Any) -> str:
    signing_input = f"{b64json({'alg': alg, 'typ': 'JWT', **header})}.{b64json(claims)}"
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def fresh(**claims: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "user-1", "iat": now, "exp": now + 300, **claims}


async def test_secret_mode_accepts_a_valid_token_and_the_user_is_the_claims():
    provider = JWTAuth(secret=SECRET)
    claims = fresh(email="ana@example.com", roles=["admin"])
    user = await authenticate(provider, hs(claims))
    assert user == claims
    assert await provider.authorize_user(user, request())
    assert provider.map_user_to_resource_id(user) == "user-1"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b.c",
        hs(fresh(), secret="x" * 32 + "-another-secret-of-enough-bytes"),
        hs({"sub": "u"}),  # S25: exp is required
        hs(fresh(exp=int(time.time()) - 120)),
        hs(fresh(), alg="HS384"),  # not in the allow-list
        hs(fresh(exp="tomorrow")),
        hs(fresh(exp=True)),
        hs(fresh(sub=12345)),
    ],
    ids=[
        "empty",
        "junk",
        "three-junk",
        "wrong-secret",
        "no-exp",
        "expired",
        "hs384",
        "exp-str",
        "exp-bool",
        "sub-int",
    ],
)
async def test_secret_mode_rejects_bad_tokens_with_none(token: str):
    assert await authenticate(JWTAuth(secret=SECRET), token) is None


async def test_secret_mode_takes_listed_hmac_algorithms_only():
    secret = "k" * 48
    provider = JWTAuth(secret=secret, algorithms=["HS256", "HS384"])
    assert await authenticate(provider, hs(fresh(), secret=secret, alg="HS384"))
    assert await authenticate(provider, hs(fresh(), secret=secret, alg="HS512")) is None
    key = new_key("RS256")
    assert await authenticate(provider, sign(fresh(), key, typ="JWT")) is None


async def test_s28_secret_mode_checks_no_typ_by_default_but_can():
    provider = JWTAuth(secret=SECRET)
    assert await authenticate(provider, hs(fresh(), typ="whatever"))
    strict = JWTAuth(secret=SECRET, token_types=["at+jwt"])
    assert await authenticate(strict, hs(fresh())) is None
    assert await authenticate(strict, hs(fresh(), typ="at+jwt"))


async def test_secret_mode_checks_issuer_and_audience_when_configured():
    provider = JWTAuth(secret=SECRET, issuer="https://me.example/", audience="api")
    assert await authenticate(provider, hs(fresh(iss="https://me.example/", aud="api")))
    assert await authenticate(provider, hs(fresh(iss="https://me.example/"))) is None
    assert await authenticate(provider, hs(fresh(aud="api"))) is None


async def test_default_authorize_user_needs_sub_or_id():
    provider = JWTAuth(secret=SECRET)
    assert await provider.authorize_user({"sub": "a"}, request())
    assert await provider.authorize_user({"id": "a"}, request())
    assert not await provider.authorize_user({"email": "a@b"}, request())
    custom = JWTAuth(secret=SECRET, authorize_user=lambda user, req: user.get("role") == "admin")
    assert not await custom.authorize_user({"sub": "a"}, request())
    assert await custom.authorize_user({"sub": "a", "role": "admin"}, request())


# -- JWKS mode: valid tokens -----------------------------------------------------------------


@pytest.mark.parametrize(
    "alg",
    ["RS256", "RS384", "RS512", "PS256", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"],
)
async def test_jwks_mode_accepts_each_asymmetric_algorithm(issuer: TestIssuer, alg: str):
    key = issuer.add_key(alg)
    provider = jwks_auth(issuer)
    user = await authenticate(provider, issuer.token(key))
    assert user is not None and user["sub"] == "user-1" and user["client_id"] == "client-1"
    assert await provider.authorize_user(user, request())


async def test_s22_algorithm_allow_list_per_provider(issuer: TestIssuer):
    es = issuer.add_key("ES256")
    provider = jwks_auth(issuer, algorithms=["ES256"])
    assert await authenticate(provider, issuer.token(es))
    assert await authenticate(provider, issuer.token(issuer.keys[0])) is None  # RS256


# -- S20: alg none and empty signatures ---------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "", None])
@pytest.mark.parametrize("signature", [b"", b"\x00" * 32])
async def test_s20_alg_none_rejected_in_every_form(
    issuer: TestIssuer, alg: str | None, signature: bytes
):
    header = {"alg": alg, "typ": "at+jwt", "kid": issuer.keys[0].kid}
    token = forge(header, issuer.claims(), signature)
    assert await authenticate(jwks_auth(issuer), token) is None
    assert await authenticate(JWTAuth(secret=SECRET), forge(header, fresh(), signature)) is None


async def test_s20_empty_signature_rejected(issuer: TestIssuer):
    valid = issuer.token()
    stripped = valid.rsplit(".", 1)[0] + "."
    assert await authenticate(jwks_auth(issuer), stripped) is None
    assert await authenticate(jwks_auth(issuer), valid.rsplit(".", 1)[0]) is None
    assert await authenticate(jwks_auth(issuer), valid)


async def test_tampered_payload_rejected(issuer: TestIssuer):
    header, _, signature = issuer.token().split(".")
    evil = f"{header}.{b64(json.dumps(issuer.claims(sub='admin')).encode())}.{signature}"
    assert await authenticate(jwks_auth(issuer), evil) is None


# -- S21: HS/RS confusion ---------------------------------------------------------------


@pytest.mark.parametrize("form", ["pem", "pkcs1-pem", "der", "ssh", "jwk", "jwk-set"])
async def test_s21_hs256_signed_with_the_public_key_rejected(issuer: TestIssuer, form: str):
    key = issuer.keys[0]
    public = key.public
    forms = {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "pkcs1-pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "ssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "jwk": json.dumps(key.jwk()).encode(),
        "jwk-set": json.dumps(issuer.jwks()).encode(),
    }
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
    token = hmac_token(header, issuer.claims(), forms[form])
    assert await authenticate(jwks_auth(issuer), token) is None
    # Even a provider told to accept everything asymmetric never runs HMAC with a JWKS key.
    assert await authenticate(jwks_auth(issuer, token_types=None), token) is None


# -- S22: key type, curve, signature shape --------------------------------------------------


async def test_s22_es256_with_the_wrong_curve_rejected(issuer: TestIssuer):
    p384 = issuer.add_key("ES384")
    p256 = issuer.add_key("ES256")
    provider = jwks_auth(issuer)
    # Signed by a P-384 key but labelled ES256, with the P-384 key's kid.
    token = sign(issuer.claims(), p384, alg="ES256", sign_with="ES384")
    assert await authenticate(provider, token) is None
    # Signed by the P-256 key, but pointing at the P-384 key.
    assert await authenticate(provider, issuer.token(p256, kid=p384.kid)) is None
    assert await authenticate(provider, issuer.token(p256))


@pytest.mark.parametrize("change", ["truncate", "extend", "der", "zeros"])
async def test_s22_malformed_es256_signature_rejected(issuer: TestIssuer, change: str):
    key = issuer.add_key("ES256")
    head, body, signature = issuer.token(key).split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    assert len(raw) == 64
    if change == "truncate":
        raw = raw[:63]
    elif change == "extend":
        raw = raw + b"\x00"
    elif change == "der":  # the DER form some libraries emit instead of r||s
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        raw = encode_dss_signature(r, s)
    else:
        raw = b"\x00" * 64
    assert await authenticate(jwks_auth(issuer), f"{head}.{body}.{b64(raw)}") is None


async def test_s22_rsa_kid_with_an_ec_alg_rejected(issuer: TestIssuer):
    ec_key = new_key("ES256", kid=issuer.keys[0].kid)  # attacker reuses the RSA key's kid
    assert await authenticate(jwks_auth(issuer), issuer.token(ec_key)) is None


# -- S23: kid and header size ---------------------------------------------------------------


async def test_s23_header_size_is_capped(issuer: TestIssuer):
    token = issuer.token(headers={"pad": "x" * 4000})
    provider = jwks_auth(issuer)
    assert await authenticate(provider, token) is None
    assert issuer.fetches == 0  # rejected before any key lookup


@pytest.mark.parametrize(
    "kid", [123, {"$ne": ""}, ["a"], "", "../../../../etc/passwd", "x' OR '1'='1", "k" * 300]
)
async def test_s23_kid_is_untrusted_data(issuer: TestIssuer, kid: Any):
    token = issuer.token(kid=False, headers={"kid": kid})
    assert await authenticate(jwks_auth(issuer), token) is None


async def test_s23_oversized_token_rejected(issuer: TestIssuer):
    assert await authenticate(jwks_auth(issuer), issuer.token(blob="x" * 40_000)) is None


@pytest.mark.parametrize("header", [{"crit": ["exp"]}, {"b64": False, "crit": ["b64"]}])
async def test_unsupported_critical_headers_rejected(issuer: TestIssuer, header: dict[str, Any]):
    assert await authenticate(jwks_auth(issuer), issuer.token(headers=header)) is None


# -- S24: keys only from configuration --------------------------------------------------------


@pytest.mark.parametrize("member", ["jku", "x5u", "jwk", "x5c"])
async def test_s24_embedded_key_headers_are_ignored_and_never_fetched(
    server: IssuerServer, issuer: TestIssuer, member: str
):
    attacker = server.new_issuer()
    evil = attacker.keys[0]
    values = {
        "jku": attacker.jwks_uri,
        "x5u": attacker.url("/cert.pem"),
        "jwk": evil.jwk(),
        "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
    }
    provider = jwks_auth(issuer)
    # Signed by the attacker's key, which it names in the header: rejected.
    forged = sign(issuer.claims(), evil, headers={member: values[member]})
    assert await authenticate(provider, forged) is None
    # Signed by the real key, the header is simply ignored: accepted.
    assert await authenticate(provider, issuer.token(headers={member: values[member]}))
    assert sum(attacker.hits.values()) == 0  # no SSRF: nothing asked the attacker's URLs


# -- S25: time claims --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        ({"exp": -31}, False),
        ({"exp": -10}, True),  # within the 30 s leeway
        ({"exp": None}, False),  # required
        ({"exp": "soon"}, False),
        ({"nbf": 120}, False),
        ({"nbf": 10}, True),
        ({"iat": 120}, False),  # issued in the future beyond the leeway
        ({"iat": 10}, True),
        ({"iat": "now"}, False),
    ],
)
async def test_s25_exp_nbf_iat_with_bounded_leeway(
    issuer: TestIssuer, claims: dict[str, Any], accepted: bool
):
    now = int(time.time())
    values = {k: (now + v if isinstance(v, int) else v) for k, v in claims.items()}
    user = await authenticate(jwks_auth(issuer), issuer.token(**values))
    assert (user is not None) is accepted


async def test_s25_leeway_zero_and_an_injected_clock(issuer: TestIssuer):
    clock = FakeClock(start=time.time())
    provider = jwks_auth(issuer, leeway=0, clock=clock)
    token = issuer.token(exp=int(clock.now) + 5)
    assert await authenticate(provider, token)
    clock.advance(5)
    assert await authenticate(provider, token) is None


# -- S26: issuer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    ["no-trailing-slash", "double-slash", "prefix", "suffix", "upper", "list", "missing", "other"],
)
async def test_s26_issuer_must_match_exactly(issuer: TestIssuer, variant: str):
    iss = issuer.issuer
    values: dict[str, Any] = {
        "no-trailing-slash": iss.rstrip("/"),
        "double-slash": iss + "/",
        "prefix": iss[:-3],
        "suffix": iss + "evil",
        "upper": iss.upper(),
        "list": [iss],
        "missing": None,
        "other": "https://evil.example/",
    }
    assert await authenticate(jwks_auth(issuer), issuer.token(iss=values[variant])) is None


# -- S27: audience -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aud", "accepted"),
    [
        (AUDIENCE, True),
        ([AUDIENCE], True),
        (["https://other.test", AUDIENCE], True),
        ("https://other.test", False),
        (["https://other.test"], False),
        (AUDIENCE + "/", False),
        ([], False),
        ([AUDIENCE, 5], False),
        (None, False),
        ({"aud": AUDIENCE}, False),
    ],
)
async def test_s27_audience_string_or_list(issuer: TestIssuer, aud: Any, accepted: bool):
    user = await authenticate(jwks_auth(issuer), issuer.token(aud=aud))
    assert (user is not None) is accepted


async def test_s27_several_configured_audiences(issuer: TestIssuer):
    provider = jwks_auth(issuer, audience=["urn:a", "urn:b"])
    assert await authenticate(provider, issuer.token(aud="urn:b"))
    assert await authenticate(provider, issuer.token(aud=AUDIENCE)) is None


# -- S28: typ ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typ", "accepted"),
    [
        ("at+jwt", True),
        ("application/at+jwt", True),
        ("AT+JWT", True),
        ("JWT", False),
        (None, False),
        ("id_token+jwt", False),
        ("logout+jwt", False),
        ("application/jwt", False),
    ],
)
async def test_s28_access_token_type_required_by_default(
    issuer: TestIssuer, typ: str | None, accepted: bool
):
    user = await authenticate(jwks_auth(issuer), issuer.token(typ=typ))
    assert (user is not None) is accepted


async def test_s28_token_types_option(issuer: TestIssuer):
    lenient = jwks_auth(issuer, token_types=None)
    assert await authenticate(lenient, issuer.token(typ="JWT"))
    assert await authenticate(lenient, issuer.token(typ=None))
    jwt_only = jwks_auth(issuer, token_types=["JWT"])
    assert await authenticate(jwt_only, issuer.token(typ="JWT"))
    assert await authenticate(jwt_only, issuer.token(typ="at+jwt")) is None


# -- S29: RFC 9068 claims ------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"])
async def test_s29_rfc9068_claims_required_for_at_jwt(issuer: TestIssuer, claim: str):
    assert await authenticate(jwks_auth(issuer), issuer.token(**{claim: None})) is None
    # Without the at+jwt profile, only exp (+ the configured iss/aud) are required.
    lenient = jwks_auth(issuer, token_types=None)
    user = await authenticate(lenient, issuer.token(**{claim: None}))
    assert (user is not None) is (claim not in ("exp", "iss", "aud"))


async def test_s29_sub_must_be_a_string(issuer: TestIssuer):
    assert await authenticate(jwks_auth(issuer), issuer.token(sub=42)) is None
    assert await authenticate(jwks_auth(issuer), issuer.token(sub="")) is None


# -- S31, S33: key set behaviour through the provider ------------------------------------


async def test_s23_random_kids_through_the_provider_fetch_nothing_more(issuer: TestIssuer):
    provider = jwks_auth(issuer)
    assert await authenticate(provider, issuer.token())
    claims = issuer.claims()
    for _ in range(1000):
        # Unsigned (a random 256-byte signature): the kid lookup fails before any crypto.
        header = {"alg": "RS256", "typ": "at+jwt", "kid": secrets.token_hex(16)}
        token = forge(header, claims, secrets.token_bytes(256))
        assert await authenticate(provider, token) is None
    assert issuer.fetches == 1  # all inside the cooldown the first fetch started


async def test_s33_kid_absent_with_a_single_key_accepted(issuer: TestIssuer):
    assert await authenticate(jwks_auth(issuer), issuer.token(kid=False))


async def test_s33_kid_absent_with_several_keys_rejected(issuer: TestIssuer):
    issuer.add_key("RS256")
    assert await authenticate(jwks_auth(issuer), issuer.token(kid=False)) is None


async def test_s33_key_rotation_accepted_after_one_refetch(issuer: TestIssuer):
    clock = FakeClock()
    provider = jwks_auth(issuer, jwks_cache=JWKSCache(clock=clock))
    assert await authenticate(provider, issuer.token())
    new = issuer.rotate()
    clock.advance(31)
    assert await authenticate(provider, issuer.token(new))
    assert await authenticate(provider, issuer.token(new))
    assert issuer.fetches == 2


async def test_s33_signed_with_an_unpublished_key_rejected(issuer: TestIssuer):
    rogue = new_key("RS256")
    assert await authenticate(jwks_auth(issuer), issuer.token(rogue)) is None
    assert (
        await authenticate(jwks_auth(issuer), issuer.token(rogue, kid=issuer.keys[0].kid)) is None
    )


async def test_s31_warm_cache_keeps_working_while_the_issuer_is_down(issuer: TestIssuer):
    clock = FakeClock()
    issuer.cache_control = "max-age=60"
    provider = jwks_auth(issuer, jwks_cache=JWKSCache(clock=clock))
    assert await authenticate(provider, issuer.token())
    issuer.down = True
    clock.advance(120)  # past the TTL
    assert await authenticate(provider, issuer.token())


async def test_s31_cold_start_with_the_issuer_down_is_unavailable(issuer: TestIssuer):
    """No keys to be had is not an invalid token: ProviderUnavailable, a 503 (issue 11,
    item 5), never a user."""
    issuer.down = True
    provider = jwks_auth(issuer)
    with pytest.raises(ProviderUnavailable):
        await authenticate(provider, issuer.token())
    unreachable = JWTAuth(jwks_uri=unused_url(), audience=AUDIENCE, jwks_cache=JWKSCache())
    with pytest.raises(ProviderUnavailable):
        await authenticate(unreachable, issuer.token())


async def test_providers_share_the_default_cache(issuer: TestIssuer):
    first = JWTAuth(jwks_uri=issuer.jwks_uri, audience=AUDIENCE)
    second = JWTAuth(jwks_uri=issuer.jwks_uri, audience=AUDIENCE, name="second")
    assert await authenticate(first, issuer.token())
    assert await authenticate(second, issuer.token())
    assert issuer.fetches == 1
