"""Social sign-in on both servers: TypeScript better-auth (`ba-peer.mjs serve`) and Bastion
configured alike for the same local providers (tests/identity/social/standins.py), and a
browser's walk through a provider's login pages.

- GitHub: better-auth's own `socialProviders.github`, whose github.com / api.github.com URLs
  are hard-coded: ba-peer.mjs sends its server-side fetches to those origins to the GitHub
  stand-in (PROVIDER_ORIGINS). Bastion keeps GitHub's real authorization endpoint too and
  has its token, /user and /user/emails endpoints pointed at the stand-in. Both answer
  https://github.com/login/oauth/authorize URLs; `at_provider` opens them at the stand-in.
- OpenID Connect: the generic OAuth plugin with the OpenID Provider stand-in's discovery
  document on both (`OIDC_PROVIDER` is its id).

`Browser` is a cookie jar on one `Server` (over HTTP, or Bastion's ASGI app in-process) that
keeps the Set-Cookies it gets; `Browser.at(other)` is the same jar at the other server.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from bastion.identity import generic_oauth
from tests.e2e.wire import Answer
from tests.identity.social.standins import Callback, GitHubStandin, OIDCProvider, sign_in

__all__ = [
    "GITHUB",
    "GITHUB_CLIENT",
    "OIDC_CLIENT",
    "OIDC_PROVIDER",
    "OIDC_SCOPES",
    "Browser",
    "Server",
    "at_provider",
    "bastion_social_options",
    "body",
    "oidc_client",
    "ts_social_env",
]

GITHUB = "https://github.com"
GITHUB_API = "https://api.github.com"
GITHUB_CLIENT = {"client_id": "gh-client", "client_secret": "gh-secret"}  # the stand-in's
OIDC_PROVIDER = "corp"
OIDC_CLIENT = {"client_id": "both-servers", "client_secret": "both-servers-secret"}
OIDC_SCOPES = ["email", "profile"]  # openid is put first by both, OIDC being discovered


def oidc_client(*origins: str) -> dict[str, Any]:
    """The stand-in's client for both servers: their /callback/<id> at these origins."""
    return {
        **OIDC_CLIENT,
        "token_endpoint_auth_method": "client_secret_post",  # both servers' default
        "redirect_uris": [f"{o}/api/auth/callback/{OIDC_PROVIDER}" for o in origins],
    }


def ts_social_env(
    gh: GitHubStandin | None = None,
    idp: OIDCProvider | None = None,
    *,
    encrypt_tokens: bool = False,
    options: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Environment for `better_auth_server(...)`: the providers, and BA_OPTIONS (`options`
    deep-merged after them)."""
    env: dict[str, str] = {}
    ba_options: dict[str, Any] = {}
    if gh is not None:
        env["PROVIDER_ORIGINS"] = json.dumps({GITHUB: gh.base_url, GITHUB_API: gh.api_url})
        ba_options["socialProviders"] = {
            "github": {
                "clientId": GITHUB_CLIENT["client_id"],
                "clientSecret": GITHUB_CLIENT["client_secret"],
            }
        }
    if idp is not None:
        config = {
            "providerId": OIDC_PROVIDER,
            "discoveryUrl": idp.discovery_url,
            "clientId": OIDC_CLIENT["client_id"],
            "clientSecret": OIDC_CLIENT["client_secret"],
            "scopes": OIDC_SCOPES,
        }
        env["GENERIC_OAUTH"] = json.dumps([config])
    if encrypt_tokens:
        ba_options["account"] = {"encryptOAuthTokens": True}
    for key, value in (options or {}).items():
        ba_options[key] = {**ba_options.get(key, {}), **value}
    if ba_options:
        env["BA_OPTIONS"] = json.dumps(ba_options)
    return env


def bastion_social_options(
    gh: GitHubStandin | None = None,
    idp: OIDCProvider | None = None,
    *,
    encrypt_tokens: bool = False,
) -> dict[str, Any]:
    """Identity(...) keyword arguments for the same providers; `plugins` to be extended."""
    options: dict[str, Any] = {"plugins": []}
    if gh is not None:
        options["social_providers"] = {
            "github": {
                **GITHUB_CLIENT,
                "token_endpoint": gh.token_url,
                "userinfo_endpoint": gh.user_url,
                "emails_endpoint": gh.emails_url,
            }
        }
    if idp is not None:
        options["plugins"].append(
            generic_oauth(
                config=[
                    {
                        "provider_id": OIDC_PROVIDER,
                        "discovery_url": idp.discovery_url,
                        **OIDC_CLIENT,
                        "scopes": OIDC_SCOPES,
                    }
                ]
            )
        )
    if encrypt_tokens:
        options["account"] = {"encrypt_oauth_tokens": True}
    return options


async def at_provider(
    url: str, login: str, gh: GitHubStandin | None = None, *, cancel: bool = False
) -> Callback:
    """The browser at the provider's login pages (GitHub's at the stand-in), in a thread;
    where it is sent back to."""
    if gh is not None and url.startswith(GITHUB + "/"):
        url = gh.base_url + url.removeprefix(GITHUB)
    return await asyncio.to_thread(sign_in, url, login, cancel=cancel)


# -- a browser on one server ---------------------------------------------------------------


@dataclass
class Server:
    """One of the two servers: `send` takes a request to it (an httpx client's, or ASGI's)."""

    name: str
    base_url: str  # …/api/auth
    send: Callable[[httpx.Request], Any]

    @property
    def origin(self) -> str:
        return self.base_url.removesuffix("/api/auth")


@dataclass
class Browser:
    """A cookie jar on one server: sends its cookies and keeps what the answers set."""

    server: Server
    jar: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        form: dict[str, str] | None = None,
    ) -> Answer:
        url = path if path.startswith("http") else self.server.base_url + path
        headers = {"origin": self.server.origin}
        if self.jar:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if form is not None:
            request = httpx.Request(method, url, headers=headers, data=form)
        else:
            request = httpx.Request(method, url, headers=headers, json=body)
        response = await self.server.send(request)
        await response.aread()
        answer = Answer.of(response)
        for line in answer.set_cookies:
            name, value = line.split(";", 1)[0].split("=", 1)
            if value and not re.search(r"Max-Age=0\b", line):
                self.jar[name] = value
            else:
                self.jar.pop(name, None)
        return answer

    def at(self, server: Server) -> Browser:
        """The same browser at another server (one jar: cookies know no ports)."""
        return Browser(server, self.jar)

    async def back_from(self, callback: Callback, provider: str | None = None) -> Answer:
        """The browser sent back to the server's callback (to /callback/<provider> if given)."""
        parts = urlsplit(callback.url)
        assert callback.method == "GET", callback
        path = parts.path
        if provider is not None:
            path = path.rsplit("/", 1)[0] + "/" + provider
        return await self.call("GET", f"{self.server.origin}{path}?{parts.query}")


def body(answer: Answer) -> Any:
    """The answer's JSON."""
    return json.loads(answer.text)
