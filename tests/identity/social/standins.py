"""Stand-ins for the identity providers of social sign-in, started by tests on 127.0.0.1 with
free ports; nothing of Bastion is mocked, these stand in for external systems.

    with oidc_provider(clients=[{"client_id": "app", "client_secret": "s3cret",
                                 "redirect_uris": [callback]}]) as idp:
        idp.issuer, idp.discovery_url, idp.authorization_endpoint, idp.token_endpoint, ...
        result = idp.sign_in(authorization_url, "alice")   # the login form, filled in
        result.params["code"]

    with github_standin() as gh:
        gh.authorize_url, gh.token_url, gh.user_url, gh.emails_url
        result = gh.sign_in(gh.authorization_url(redirect_uri=..., state=...), "octocat")

- `oidc_provider(...)`: tests/e2e/node/oidc-login-provider.mjs (panva/oidc-provider) in a
  Node child process. Without Node or its packages the test skips, saying so, unless
  $BASTION_REQUIRE_NODE is set (CI), where it fails.
- `github_standin(...)`: tests/identity/social/github_standin.py, in a thread of this process.
- `sign_in(url, login)` (login_pages.py): drives a provider's login pages over HTTP as a
  browser would (follows its redirects, fills its login form), up to the redirect back to
  the client; a `Callback` tells where the browser would go then, and with which parameters.

All are synchronous: usable from sync and async tests (they never wait on the test's loop).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.auth.issuers import _ready_line, _stop
from tests.e2e.node_peer import NODE_DIR, _die_with_parent
from tests.e2e.node_peer import _missing as _node_missing
from tests.identity.social.github_standin import (
    DEFAULT_GITHUB_CLIENTS,
    DEFAULT_GITHUB_USERS,
    GitHubFaults,
    GitHubStandin,
)
from tests.identity.social.login_pages import Callback, SignInError, sign_in

__all__ = [
    "DEFAULT_GITHUB_CLIENTS",
    "DEFAULT_GITHUB_USERS",
    "DEFAULT_OIDC_USERS",
    "Callback",
    "GitHubFaults",
    "GitHubStandin",
    "OIDCProvider",
    "SignInError",
    "github_standin",
    "oidc_provider",
    "sign_in",
]

DEFAULT_OIDC_USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Example",
        "given_name": "Alice",
        "family_name": "Example",
        "picture": "https://images.example.test/alice.png",
    },
    "bob": {
        "sub": "b0b-0000-0001",
        "email": "bob@example.com",
        "email_verified": False,
        "name": "Bob Unverified",
        "picture": "https://images.example.test/bob.png",
    },
    "carol": {"email": "carol@example.com", "email_verified": True, "name": "Carol"},
}


# -- the OpenID Provider (Node) ---------------------------------------------------------------


@dataclass
class OIDCProvider:
    """A running tests/e2e/node/oidc-login-provider.mjs (its header tells all it does)."""

    issuer: str  # http://127.0.0.1:PORT, no trailing slash
    port: int
    clients: list[dict[str, Any]]
    users: dict[str, dict[str, Any]]
    process: subprocess.Popen[bytes]
    stderr_path: Path

    @property
    def base_url(self) -> str:
        return self.issuer

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    @property
    def authorization_endpoint(self) -> str:
        return self.issuer + "/authorize"

    @property
    def token_endpoint(self) -> str:
        return self.issuer + "/token"

    @property
    def userinfo_endpoint(self) -> str:
        return self.issuer + "/userinfo"

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "/jwks"

    @property
    def revocation_endpoint(self) -> str:
        return self.issuer + "/token/revocation"

    @property
    def introspection_endpoint(self) -> str:
        return self.issuer + "/token/introspection"

    @property
    def end_session_endpoint(self) -> str:
        return self.issuer + "/session/end"

    def authorization_url(self, client_id: str, **params: str) -> str:
        """The authorization endpoint with these query parameters; response_type defaults to
        "code" and scope to "openid email profile"."""
        query = {"response_type": "code", "scope": "openid email profile", **params}
        return str(httpx.URL(self.authorization_endpoint, params={"client_id": client_id, **query}))

    def sign_in(
        self, authorization_url: str, login: str, password: str = "", **kw: Any
    ) -> Callback:
        """`sign_in(...)` at this provider."""
        return sign_in(authorization_url, login, password, **kw)

    def set_faults(self, **faults: Mapping[str, Any] | None) -> dict[str, Any]:
        """Make endpoints misbehave until cleared: token=, userinfo=, jwks=, discovery=,
        authorize=, each {"status": 400, "body": {...}}, {"hang": True}, {"delay": 2.5} or
        None (clear it). The faults in force are returned."""
        return self._control("/__test/faults", faults)

    def clear_faults(self) -> None:
        self._control("/__test/faults", dict.fromkeys(self.faults()))

    def faults(self) -> dict[str, Any]:
        response = httpx.get(self.issuer + "/__test/faults", timeout=10.0)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def add_clients(self, *clients: Mapping[str, Any]) -> None:
        """Register more clients (same format as `clients=`) while it runs."""
        self._control("/__test/clients", list(clients))
        self.clients.extend(dict(c) for c in clients)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def _control(self, path: str, body: Any) -> dict[str, Any]:
        response = httpx.post(self.issuer + path, json=body, timeout=10.0)
        if response.is_error:
            raise AssertionError(f"{path}: {response.status_code} {response.text}")
        answer: dict[str, Any] = response.json()
        return answer


@contextlib.contextmanager
def oidc_provider(
    clients: Iterable[Mapping[str, Any]] = (),
    users: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    refresh_tokens: str = "offline_access",
    pkce_required: bool = False,
    faults: Mapping[str, Any] | None = None,
    ttl: Mapping[str, int] | None = None,
    startup_timeout: float = 60.0,
    **env: str,
) -> Iterator[OIDCProvider]:
    """Run the OpenID Provider (tests/e2e/node/oidc-login-provider.mjs) on a free port.

    clients: oidc-provider client metadata, e.g. {"client_id", "client_secret",
      "redirect_uris": [...], "token_endpoint_auth_method": "client_secret_post" |
      "client_secret_basic" (the default) | "none"}; grant_types default to
      authorization_code + refresh_token.
    users: login name -> claims (email, email_verified, name, picture, given_name, ...;
      "sub" to set a subject other than the login name; "password" to require one);
      DEFAULT_OIDC_USERS when None.
    refresh_tokens: "offline_access" (with scope offline_access and prompt=consent) or
      "always". pkce_required: PKCE for every client (else: public clients only).
    faults: as `OIDCProvider.set_faults`, from the start. ttl: oidc-provider's ttl
      ({"AccessToken": 3600, "IdToken": 3600, "RefreshToken": ...}).
    """
    node = shutil.which("node")
    if node is None:
        _node_missing("needs Node.js (node) for the OpenID Provider stand-in (oidc-provider)")
    if not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        _node_missing(f"needs the Node peers installed (oidc-provider): npm ci --prefix {NODE_DIR}")
    assert node is not None
    client_list = [dict(c) for c in clients]
    user_map = {k: dict(v) for k, v in (DEFAULT_OIDC_USERS if users is None else users).items()}
    child_env = {
        **os.environ,
        "PORT": "0",
        "EXIT_ON_STDIN_CLOSE": "1",
        "CLIENTS": json.dumps(client_list),
        "USERS": json.dumps(user_map),
        "REFRESH_TOKENS": refresh_tokens,
        "PKCE_REQUIRED": "1" if pkce_required else "0",
        "FAULTS": json.dumps(dict(faults or {})),
        "TTL": json.dumps(dict(ttl or {})),
        **env,
    }
    with tempfile.TemporaryDirectory(prefix="bastion-oidc-") as folder:
        stderr_path = Path(folder) / "stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [node, "oidc-login-provider.mjs"],
                cwd=NODE_DIR,
                env=child_env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                preexec_fn=_die_with_parent(),
            )
        try:
            ready = _ready_line(process, startup_timeout, stderr_path, "oidc-login-provider.mjs")
            yield OIDCProvider(
                issuer=ready["issuer"],
                port=int(ready["port"]),
                clients=client_list,
                users=user_map,
                process=process,
                stderr_path=stderr_path,
            )
        finally:
            _stop(process)


# -- GitHub ---------------------------------------------------------------------------------


@contextlib.contextmanager
def github_standin(
    users: Mapping[str, Mapping[str, Any]] | None = None,
    clients: Iterable[Mapping[str, Any]] | None = None,
) -> Iterator[GitHubStandin]:
    """Run the GitHub stand-in (tests/identity/social/github_standin.py) on a free port.

    users: login -> {"id", "name", "email" (public, or None), "avatar_url", "emails": [...]};
      DEFAULT_GITHUB_USERS when None. clients: [{"client_id", "client_secret",
      "redirect_uris": [...], "expiring_tokens": bool}]; DEFAULT_GITHUB_CLIENTS when None.
    """
    standin = GitHubStandin(users=users, clients=clients).start()
    try:
        yield standin
    finally:
        standin.stop()
