"""Token issuers for the JWT tests, all on 127.0.0.1.

- `IssuerServer`: our own issuer, a uvicorn server in a thread (so any test's event loop can
  reach it) hosting many `TestIssuer`s, one per test, each under its own path prefix. A
  TestIssuer serves a JWKS and a discovery document we control, counts requests per path,
  can go down, answer slowly, rotate keys, send Cache-Control and ETag; it signs the attack
  tokens.
- `node_issuer(...)`: the real Node peers in tests/e2e/node — `mock-auth0.mjs`
  (oauth2-mock-server, Auth0-shaped tokens, typ JWT) and `oidc-provider-server.mjs`
  (panva/oidc-provider, RFC 9068 at+jwt). Missing Node skips, or fails with
  $BASTION_REQUIRE_NODE, as tests/e2e/node_peer.py does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from tests.e2e.node_peer import NODE_DIR, REQUIRE_NODE, _die_with_parent

AUDIENCE = "https://api.example.test"

# -- keys and tokens -----------------------------------------------------------------------

_RSA_POOL: list[rsa.RSAPrivateKey] = []
_rsa_next = itertools.count()


def _rsa_key() -> rsa.RSAPrivateKey:
    """RSA keys are slow to make: a small pool, handed out in turn (6 distinct keys)."""
    index = next(_rsa_next) % 6
    while len(_RSA_POOL) <= index:
        _RSA_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _RSA_POOL[index]


_CURVES: dict[str, ec.EllipticCurve] = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}
_kids = itertools.count(1)


@dataclass
class SigningKey:
    alg: str
    kid: str
    private: Any

    @property
    def public(self) -> Any:
        return self.private.public_key()

    def jwk(self, **extra: Any) -> dict[str, Any]:
        """The public JWK, with kid and alg (and `extra` members)."""
        if self.alg.startswith(("RS", "PS")):
            data = RSAAlgorithm.to_jwk(self.public, as_dict=True)
        elif self.alg.startswith("ES"):
            data = ECAlgorithm.to_jwk(self.public, as_dict=True)
        else:
            data = OKPAlgorithm.to_jwk(self.public, as_dict=True)
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig", **extra}


def new_key(alg: str = "RS256", kid: str | None = None) -> SigningKey:
    private: Any
    if alg.startswith(("RS", "PS")):
        private = _rsa_key()
    elif alg in _CURVES:
        private = ec.generate_private_key(_CURVES[alg])
    elif alg in ("EdDSA", "Ed25519"):
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(alg)
    return SigningKey(alg, kid or f"k{next(_kids)}-{alg.lower()}", private)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def forge(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"") -> str:
    """A token with exactly this header, payload and signature (for attack tokens)."""
    return f"{b64json(dict(header))}.{b64json(dict(claims))}.{b64(signature)}"


def hmac_token(header: Mapping[str, Any], claims: Mapping[str, Any], secret: bytes) -> str:
    """An HS256 token signed with any bytes as the secret (PyJWT refuses public keys as
    HMAC secrets, so attack tokens are signed by hand)."""
    signing_input = f"{b64json(dict(header))}.{b64json(dict(claims))}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


_ALGORITHMS = {**get_default_algorithms(), "Ed25519": OKPAlgorithm()}


def sign(
    claims: Mapping[str, Any],
    key: SigningKey,
    *,
    alg: str | None = None,
    typ: str | None = "at+jwt",
    kid: str | bool | None = True,
    headers: Mapping[str, Any] | None = None,
    sign_with: str | None = None,
) -> str:
    """A token signed by `key`, assembled by hand so that any header or claim can be sent.
    `alg` is the header's (default: the key's); `sign_with` the algorithm actually used
    (default: `alg`). kid=True: the key's kid; False: none; a string: that kid."""
    alg = alg or key.alg
    header: dict[str, Any] = {"alg": alg}
    if typ is not None:
        header["typ"] = typ
    if kid is True:
        header["kid"] = key.kid
    elif isinstance(kid, str):
        header["kid"] = kid
    header.update(headers or {})
    signing_input = f"{b64json(header)}.{b64json(dict(claims))}"
    signature = _ALGORITHMS[sign_with or alg].sign(signing_input.encode(), key.private)
    return f"{signing_input}.{b64(signature)}"


# -- our own issuer -----------------------------------------------------------------------


@dataclass
class TestIssuer:
    """One issuer under `base_url`: /.well-known/openid-configuration and /jwks.json."""

    __test__ = False  # not a pytest test class

    base_url: str  # http://127.0.0.1:PORT/iN
    keys: list[SigningKey] = field(default_factory=list)  # published in the JWKS
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)  # raw JWKs published too
    hits: Counter[str] = field(default_factory=Counter)  # path (after the prefix) -> count
    down: bool = False  # answer 503
    delay: float = 0.0  # seconds before answering
    # Answers wait until the test sets `gate` (when there is one); `arrived` is set by the
    # first request: the test knows a fetch is in flight without waiting for a guess.
    gate: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    cache_control: str | None = None
    etag: bool = False
    metadata_issuer: str | None = None  # what discovery claims (default: self.issuer)
    audience: str = AUDIENCE
    not_modified: int = 0  # 304s sent

    @property
    def issuer(self) -> str:
        return self.base_url + "/"

    @property
    def jwks_uri(self) -> str:
        return self.base_url + "/jwks.json"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def fetches(self) -> int:
        return self.hits["/jwks.json"]

    def add_key(self, alg: str = "RS256", kid: str | None = None) -> SigningKey:
        key = new_key(alg, kid)
        self.keys.append(key)
        return key

    def rotate(self, alg: str = "RS256") -> SigningKey:
        """Publish a new key (first in the set); older keys stay published."""
        key = new_key(alg)
        self.keys.insert(0, key)
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.keys] + list(self.extra_jwks)}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """RFC 9068 access-token claims for this issuer; overrides with None drop a claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": self.audience,
            "client_id": "client-1",
            "iat": now,
            "exp": now + 300,
            "jti": f"jti-{next(_kids)}",
            "scope": "read:things",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, key: SigningKey | None = None, /, **kw: Any) -> str:
        """A valid at+jwt access token signed with `key` (default: the first key);
        keyword arguments that `sign` takes go there, the rest override claims."""
        sign_args = {k: kw.pop(k) for k in ("alg", "typ", "kid", "headers") if k in kw}
        return sign(self.claims(**kw), key or self.keys[0], **sign_args)

    async def handle(self, path: str, scope: Scope, send: Send) -> None:
        self.hits[path] += 1
        self.arrived.set()
        if self.gate is not None:
            await asyncio.to_thread(self.gate.wait, 10)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            await _respond(send, 503, b'{"error":"down"}')
            return
        if path == "/.well-known/openid-configuration":
            body = {
                "issuer": self.metadata_issuer or self.issuer,
                "jwks_uri": self.jwks_uri,
                "token_endpoint": self.url("/token"),
            }
            await _respond(send, 200, json.dumps(body).encode(), self._cache_headers())
        elif path == "/jwks.json":
            body_bytes = json.dumps(self.jwks()).encode()
            headers = self._cache_headers()
            if self.etag:
                tag = '"' + hashlib.sha256(body_bytes).hexdigest()[:16] + '"'
                headers.append((b"etag", tag.encode()))
                sent = dict(scope["headers"]).get(b"if-none-match")
                if sent == tag.encode():
                    self.not_modified += 1
                    await _respond(send, 304, b"", headers)
                    return
            await _respond(send, 200, body_bytes, headers)
        else:
            await _respond(send, 404, b"{}")

    def _cache_headers(self) -> list[tuple[bytes, bytes]]:
        if self.cache_control is None:
            return []
        return [(b"cache-control", self.cache_control.encode())]


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = [(b"content-type", b"application/json"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


class IssuerServer:
    """A uvicorn server in its own thread and event loop, hosting TestIssuers by prefix."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.origin = f"http://127.0.0.1:{self.port}"
        self._tenants: dict[str, TestIssuer] = {}
        self._numbers = itertools.count(1)
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            log_level="warning",
            lifespan="off",
            access_log=False,
            interface="asgi3",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> IssuerServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test issuer server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    def new_issuer(self, *, keys: tuple[str, ...] = ("RS256",)) -> TestIssuer:
        prefix = f"i{next(self._numbers)}"
        issuer = TestIssuer(base_url=f"{self.origin}/{prefix}")
        for alg in keys:
            issuer.add_key(alg)
        self._tenants[prefix] = issuer
        return issuer

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        _, prefix, *rest = scope["path"].split("/", 2)
        tenant = self._tenants.get(prefix)
        if tenant is None:
            await _respond(send, 404, b"{}")
            return
        await tenant.handle("/" + (rest[0] if rest else ""), scope, send)


@contextlib.contextmanager
def issuer_server() -> Iterator[IssuerServer]:
    server = IssuerServer().start()
    try:
        yield server
    finally:
        server.stop()


def unused_url(path: str = "/jwks.json") -> str:
    """A loopback URL nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class FakeClock:
    """A monotonic clock the test moves by hand (for TTLs and cooldowns)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def request(token: str | None = None, path: str = "/api/agents") -> Request:
    """A Starlette request as the pipeline would hand it to a provider."""
    headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "scheme": "http",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 4111),
        }
    )


# -- the Node peers -----------------------------------------------------------------------


@dataclass
class NodeIssuer:
    issuer: str  # http://127.0.0.1:PORT/ (trailing slash)
    process: subprocess.Popen[bytes]

    @property
    def jwks_uri(self) -> str:
        return self.issuer + ".well-known/jwks.json"

    async def token(self, **form: str) -> dict[str, Any]:
        """POST /oauth/token with this form; the JSON answer (raises on an HTTP error)."""
        async with httpx.AsyncClient() as client:
            response = await client.post(self.issuer + "oauth/token", data=form)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    async def client_credentials(
        self, client_id: str = "test-client", secret: str = "test-secret", **form: str
    ) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            **form,
        }
        return str((await self.token(**form))["access_token"])


def _missing(reason: str) -> None:
    if REQUIRE_NODE:
        pytest.fail(f"{reason} ($BASTION_REQUIRE_NODE is set)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def node_issuer(script: str, package: str, **env: str) -> Iterator[NodeIssuer]:
    """Run `node <script>` from tests/e2e/node on a free port until the block ends."""
    node = shutil.which("node")
    if node is None:
        _missing(f"needs Node.js (node) for the {package} peer")
    if not (NODE_DIR / "node_modules" / package).is_dir():
        _missing(f"needs the {package} peer installed: npm ci --prefix {NODE_DIR}")
    assert node is not None
    with tempfile.TemporaryDirectory(prefix="bastion-issuer-") as folder:
        stderr_path = Path(folder) / "stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [node, script],
                cwd=NODE_DIR,
                env={**os.environ, "PORT": "0", "EXIT_ON_STDIN_CLOSE": "1", **env},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                preexec_fn=_die_with_parent(),
            )
        try:
            ready = _ready_line(process, 60.0, stderr_path, script)
            yield NodeIssuer(issuer=ready["issuer"], process=process)
        finally:
            _stop(process)


def _ready_line(
    process: subprocess.Popen[bytes], within: float, stderr_path: Path, what: str
) -> dict[str, Any]:
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], within)
    line = process.stdout.readline() if readable else b""
    if not line:
        process.kill()
        process.wait()
        raise AssertionError(
            f"{what} did not start; stderr:\n{stderr_path.read_text(errors='replace')[-4000:]}"
        )
    ready: dict[str, Any] = json.loads(line)
    assert ready.get("ready") is True, ready
    return ready


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
