"""A stand-in for GitHub's OAuth endpoints and the two REST API calls sign-in makes, served by
uvicorn on 127.0.0.1 in a thread of its own (so any test, sync or async, can reach it), as
GitHub documents them:

- `GET  /login/oauth/authorize` — client_id, redirect_uri, scope (space- or comma-separated),
  state, login (pre-fills the form), code_challenge + code_challenge_method (S256 only). Shows
  an HTML form (`<form id="login">` with `<input name="login">` and `<button type="submit">`,
  and a `<form id="cancel">`). Signing in redirects (302) to redirect_uri?code=..&state=..;
  Cancel to redirect_uri?error=access_denied&...; an unknown login shows the form again with
  `<p id="error">`. An unknown client_id is a 404 HTML page; a redirect_uri outside the
  client's callback URLs redirects to the first callback URL with error=redirect_uri_mismatch,
  as GitHub does. A callback URL matches GitHub's way: same scheme and host, the same port
  unless the host is loopback (127.0.0.1, ::1, localhost), and the same path or one below it.
- `POST /login/oauth/access_token` — form or JSON body: client_id, client_secret (or HTTP
  Basic), code, redirect_uri, code_verifier; or grant_type=refresh_token + refresh_token
  (clients with `expiring_tokens`). The answer is JSON when `Accept: application/json`, else
  form-encoded, as GitHub's. Errors are HTTP 200 with {"error","error_description",
  "error_uri"}: incorrect_client_credentials, redirect_uri_mismatch, bad_verification_code
  (unknown, used, expired code, or a code_verifier that does not match the challenge),
  bad_refresh_token. A code is single-use and lives 10 minutes.
  Tokens: `gho_...` ({"access_token","token_type":"bearer","scope"}, scope comma-separated as
  GitHub's); for `expiring_tokens` clients (GitHub Apps) `ghu_...` with expires_in (8 h) and a
  rotating refresh_token `ghr_...` with refresh_token_expires_in, scope "".
- `GET /user`, `GET /user/emails` — `Authorization: Bearer <token>` (or `token <token>`), and a
  User-Agent header (GitHub answers 403 without one). A bad or expired token: 401
  {"message":"Bad credentials",...}. /user/emails needs the `user:email` or `user` scope (404
  otherwise, as GitHub answers an OAuth App token without it); GitHub Apps' tokens always may.

Users (`users`): login -> {"id": int, "name": str | None, "email": public email or None,
"avatar_url": str, "emails": [{"email","primary","verified","visibility"}]}; anything left out
is filled in (id: a number from the login; emails: the public email, primary and verified).
Clients (`clients`): [{"client_id","client_secret","redirect_uris":[...],
"expiring_tokens": bool}].

Faults: set the fields of `standin.faults` (a `GitHubFaults`) at any time; `reset()` clears
them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.identity.social.login_pages import Callback, sign_in

__all__ = [
    "DEFAULT_GITHUB_CLIENTS",
    "DEFAULT_GITHUB_USERS",
    "GitHubFaults",
    "GitHubStandin",
]

DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
ERRORS = {
    "incorrect_client_credentials": (
        "The client_id and/or client_secret passed are incorrect.",
        DOCS + "#incorrect-client-credentials",
    ),
    "redirect_uri_mismatch": (
        "The redirect_uri MUST match the registered callback URL for this application.",
        DOCS + "#redirect-uri-mismatch2",
    ),
    "bad_verification_code": (
        "The code passed is incorrect or expired.",
        DOCS + "#bad-verification-code",
    ),
    "bad_refresh_token": (
        "The refresh token passed is incorrect or expired.",
        "https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/"
        "refreshing-user-access-tokens",
    ),
    "unsupported_grant_type": ("The grant type is not supported.", DOCS),
}

DEFAULT_GITHUB_USERS: dict[str, dict[str, Any]] = {
    # Public, verified email on the profile.
    "octocat": {"id": 583231, "name": "The Octocat", "email": "octocat@example.com"},
    # Private email: the profile's is null; the primary verified one is in /user/emails.
    "private-pat": {
        "id": 1001,
        "name": "Pat Private",
        "email": None,
        "emails": [
            {"email": "pat-old@example.com", "primary": False, "verified": True},
            {"email": "pat@example.com", "primary": True, "verified": True},
        ],
    },
    # Only unverified addresses.
    "unverified-uma": {
        "id": 1002,
        "name": "Uma Unverified",
        "email": None,
        "emails": [
            {"email": "uma@example.com", "primary": True, "verified": False},
            {"email": "uma2@example.com", "primary": False, "verified": False},
        ],
    },
    # No display name (GitHub's name is null): a client falls back to the login.
    "nameless": {"id": 1003, "name": None, "email": "nameless@example.com"},
}

DEFAULT_GITHUB_CLIENTS: list[dict[str, Any]] = [
    # An OAuth App whose callback is any loopback URL (GitHub ignores a loopback's port).
    {
        "client_id": "gh-client",
        "client_secret": "gh-secret",
        "redirect_uris": ["http://127.0.0.1/"],
    },
    # A GitHub App with expiring user tokens and refresh tokens.
    {
        "client_id": "Iv1.gh-app",
        "client_secret": "gh-app-secret",
        "redirect_uris": ["http://127.0.0.1/"],
        "expiring_tokens": True,
    },
]

CODE_TTL = 600.0
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass
class GitHubFaults:
    """What the stand-in does wrong; change the fields at any time from the test."""

    token_error: str | None = None  # every token request answers this error (HTTP 200)
    token_status: int | None = None  # the token endpoint answers this HTTP status (e.g. 500)
    token_delay: float = 0.0  # seconds before the token endpoint answers
    user_status: int | None = None  # GET /user answers this status (e.g. 500)
    user_delay: float = 0.0
    emails_status: int | None = None  # GET /user/emails answers this status
    emails_delay: float = 0.0
    authorize_delay: float = 0.0

    def reset(self) -> None:
        for name, value in GitHubFaults().__dict__.items():
            setattr(self, name, value)


@dataclass
class _Code:
    client_id: str
    redirect_uri: str | None
    login: str
    scopes: list[str]
    challenge: str | None
    expires_at: float


@dataclass
class _Token:
    client_id: str
    login: str
    scopes: list[str]
    expires_at: float | None  # None: never (OAuth App tokens)
    expiring: bool


def _user(login: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    user = dict(entry)
    user.setdefault("id", int(hashlib.sha256(login.encode()).hexdigest()[:7], 16))
    user.setdefault("name", login)
    user.setdefault("email", None)
    user.setdefault("avatar_url", f"https://avatars.example.test/u/{user['id']}?v=4")
    if "emails" not in user:
        email = user["email"]
        user["emails"] = (
            [{"email": email, "primary": True, "verified": True}] if email is not None else []
        )
    user["emails"] = [
        {
            "email": e["email"],
            "primary": bool(e.get("primary", False)),
            "verified": bool(e.get("verified", False)),
            "visibility": e.get("visibility", _visibility(e, user["email"])),
        }
        for e in user["emails"]
    ]
    return user


def _visibility(entry: Mapping[str, Any], public: str | None) -> str | None:
    """GitHub's: "public" for the profile's address, "private" for a private primary one,
    null for the others."""
    if entry["email"] == public:
        return "public"
    return "private" if entry.get("primary") else None


def _scopes(value: str | None) -> list[str]:
    parts = (value or "").replace(",", " ").split()
    return list(dict.fromkeys(parts))


def _callback_matches(registered: str, given: str) -> bool:
    """GitHub's rule: same scheme and host, same port unless loopback, same path or below."""
    r, g = urlsplit(registered), urlsplit(given)
    if r.scheme != g.scheme or r.hostname != g.hostname:
        return False
    if r.port != g.port and (r.hostname or "") not in LOOPBACK:
        return False
    if g.fragment:
        return False
    base = r.path.rstrip("/")
    return g.path == r.path or g.path.rstrip("/") == base or g.path.startswith(base + "/")


def _with_query(url: str, params: Mapping[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{url}{'&' if urlsplit(url).query else '?'}{query}"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"</head><body>{body}</body></html>"
    )
    return HTMLResponse(html, status, headers={"cache-control": "no-store"})


class GitHubStandin:
    """GitHub's OAuth endpoints and /user, /user/emails on one origin; see the module doc."""

    def __init__(
        self,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        clients: Iterable[Mapping[str, Any]] | None = None,
    ) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        for login, entry in (DEFAULT_GITHUB_USERS if users is None else users).items():
            self.add_user(login, **entry)
        self.clients: dict[str, dict[str, Any]] = {}
        for client in DEFAULT_GITHUB_CLIENTS if clients is None else clients:
            self.add_client(**client)
        self.faults = GitHubFaults()
        self.access_token_ttl = 8 * 3600  # GitHub Apps' user tokens
        self.refresh_token_ttl = 184 * 24 * 3600
        self.hits: Counter[str] = Counter()  # "POST /login/oauth/access_token" -> count
        self.token_requests: list[dict[str, str]] = []  # the token endpoint's parameters
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.app = Starlette(
            routes=[
                Route("/login/oauth/authorize", self._authorize, methods=["GET", "POST"]),
                Route("/login/oauth/access_token", self._access_token, methods=["POST"]),
                Route("/user", self._user, methods=["GET"]),
                Route("/user/emails", self._emails, methods=["GET"]),
            ]
        )
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- configuration ---------------------------------------------------------------------

    def add_user(self, login: str, **profile: Any) -> dict[str, Any]:
        user = _user(login, profile)
        self.users[login] = user
        return user

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: Iterable[str],
        expiring_tokens: bool = False,
        **extra: Any,
    ) -> None:
        uris = list(redirect_uris)
        if not uris:
            raise ValueError("a GitHub OAuth App needs a callback URL")
        self.clients[client_id] = {
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uris": uris,
            "expiring_tokens": expiring_tokens,
            **extra,
        }

    # -- URLs ------------------------------------------------------------------------------

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/login/oauth/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/login/oauth/access_token"

    @property
    def api_url(self) -> str:
        """Where https://api.github.com is: /user and /user/emails are under it."""
        return self.base_url

    @property
    def user_url(self) -> str:
        return self.base_url + "/user"

    @property
    def emails_url(self) -> str:
        return self.base_url + "/user/emails"

    def authorization_url(self, client_id: str = "gh-client", **params: str) -> str:
        """The authorize URL with these query parameters (e.g. redirect_uri, state, scope)."""
        return _with_query(self.authorize_url, {"client_id": client_id, **params})

    def sign_in(
        self, authorization_url: str, login: str, password: str = "", **kw: Any
    ) -> Callback:
        """Sign in at this stand-in as a browser would (tests/identity/social/login_pages.py)."""
        return sign_in(authorization_url, login, password, **kw)

    # -- running ---------------------------------------------------------------------------

    def start(self) -> GitHubStandin:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        port = int(self._sock.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the GitHub stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends the delays of answers still waiting
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._sock is not None:
            self._sock.close()

    async def _sleep(self, seconds: float) -> None:
        """Wait `seconds`, or until the stand-in stops."""
        await asyncio.to_thread(self._stopping.wait, seconds)

    # -- the authorize page ----------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        self.hits[f"{request.method} /login/oauth/authorize"] += 1
        if self.faults.authorize_delay:
            await self._sleep(self.faults.authorize_delay)
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(dict(parse_qsl((await request.body()).decode())))
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return _page(
                "Not Found",
                '<h1>404</h1><p id="error">The OAuth application was not found'
                " (unknown client_id).</p>",
                404,
            )
        redirect_uri = params.get("redirect_uri")
        state = params.get("state")
        if redirect_uri is not None and not any(
            _callback_matches(registered, redirect_uri) for registered in client["redirect_uris"]
        ):
            description, uri = ERRORS["redirect_uri_mismatch"]
            target = _with_query(
                client["redirect_uris"][0],
                {
                    "error": "redirect_uri_mismatch",
                    "error_description": description,
                    "error_uri": uri,
                    "state": state,
                },
            )
            return RedirectResponse(target, 302)
        target_uri = redirect_uri or client["redirect_uris"][0]
        method = params.get("code_challenge_method")
        challenge = params.get("code_challenge")
        if challenge is not None and (method or "S256") != "S256":
            return _page(
                "Error",
                '<p id="error">code_challenge_method must be S256.</p>',
                400,
            )
        if request.method == "GET":
            return self._form(params, client)
        if params.get("action") == "cancel":
            target = _with_query(
                target_uri,
                {
                    "error": "access_denied",
                    "error_description": "The user has denied your application access.",
                    "error_uri": DOCS + "#access-denied",
                    "state": state,
                },
            )
            return RedirectResponse(target, 302)
        login = params.get("login", "").strip()
        if login not in self.users:
            return self._form(params, client, error=f"Incorrect username: {login!r}.")
        code = secrets.token_hex(10)
        with self._lock:
            self._codes[code] = _Code(
                client_id=client["client_id"],
                redirect_uri=redirect_uri,
                login=login,
                scopes=_scopes(params.get("scope")),
                challenge=challenge,
                expires_at=time.monotonic() + CODE_TTL,
            )
        return RedirectResponse(_with_query(target_uri, {"code": code, "state": state}), 302)

    def _form(
        self, params: Mapping[str, str], client: Mapping[str, Any], error: str | None = None
    ) -> HTMLResponse:
        kept = {k: v for k, v in params.items() if k not in ("login", "password", "action")}
        hidden = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in kept.items()
        )
        login = escape(params.get("login", ""))
        shown_error = f'<p id="error" role="alert">{escape(error)}</p>' if error else ""
        body = f"""
<h1>Sign in to GitHub</h1>
<p>to continue to <strong>{escape(client.get("name", client["client_id"]))}</strong></p>
{shown_error}
<form id="login" method="post" action="/login/oauth/authorize">
  {hidden}
  <label>Username or email address
    <input name="login" id="login_field" value="{login}" autofocus autocomplete="username">
  </label>
  <label>Password <input name="password" id="password" type="password"></label>
  <button type="submit" id="submit" name="action" value="authorize">Sign in</button>
</form>
<form id="cancel" method="post" action="/login/oauth/authorize">
  {hidden}
  <button type="submit" name="action" value="cancel">Cancel</button>
</form>"""
        return _page("Sign in to GitHub", body)

    # -- the token endpoint ----------------------------------------------------------------

    async def _access_token(self, request: Request) -> Response:
        self.hits["POST /login/oauth/access_token"] += 1
        faults = self.faults
        if faults.token_delay:
            await self._sleep(faults.token_delay)
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            parsed = json.loads(raw or b"{}")
            params = {str(k): str(v) for k, v in parsed.items() if v is not None}
        else:
            params = dict(parse_qsl(raw.decode()))
        params.update({k: v for k, v in request.query_params.items() if k not in params})
        self.token_requests.append(params)
        as_json = "application/json" in request.headers.get("accept", "")
        if faults.token_status is not None:
            return Response("Internal Server Error\n", faults.token_status)
        if faults.token_error is not None:
            return self._token_error(faults.token_error, as_json)
        client_id, secret = params.get("client_id"), params.get("client_secret")
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        client = self.clients.get(client_id or "")
        if client is None or not secrets.compare_digest(
            client["client_secret"].encode(), (secret or "").encode()
        ):
            return self._token_error("incorrect_client_credentials", as_json)
        if params.get("grant_type") == "refresh_token":
            return self._refresh_grant(client, params, as_json)
        with self._lock:
            code = self._codes.pop(params.get("code", ""), None)  # single use
        if code is None or code.client_id != client["client_id"]:
            return self._token_error("bad_verification_code", as_json)
        if time.monotonic() > code.expires_at:
            return self._token_error("bad_verification_code", as_json)
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is not None and redirect_uri != (
            code.redirect_uri or client["redirect_uris"][0]
        ):
            return self._token_error("redirect_uri_mismatch", as_json)
        if code.challenge is not None:
            verifier = params.get("code_verifier")
            if verifier is None or not secrets.compare_digest(_s256(verifier), code.challenge):
                return self._token_error("bad_verification_code", as_json)
        return self._issue(client, code.login, code.scopes, as_json)

    def _refresh_grant(
        self, client: Mapping[str, Any], params: Mapping[str, str], as_json: bool
    ) -> Response:
        with self._lock:
            old = self._refresh.pop(params.get("refresh_token", ""), None)  # rotates
        if (
            old is None
            or old.client_id != client["client_id"]
            or (old.expires_at is not None and time.time() > old.expires_at)
        ):
            return self._token_error("bad_refresh_token", as_json)
        return self._issue(client, old.login, old.scopes, as_json)

    def _issue(
        self, client: Mapping[str, Any], login: str, scopes: list[str], as_json: bool
    ) -> Response:
        expiring = bool(client.get("expiring_tokens"))
        now = time.time()
        token = ("ghu_" if expiring else "gho_") + secrets.token_urlsafe(27)
        answer: dict[str, Any] = {"access_token": token}
        granted = [] if expiring else scopes  # GitHub Apps have permissions, not scopes
        with self._lock:
            self._tokens[token] = _Token(
                client["client_id"],
                login,
                granted,
                now + self.access_token_ttl if expiring else None,
                expiring,
            )
            if expiring:
                refresh = "ghr_" + secrets.token_urlsafe(54)
                self._refresh[refresh] = _Token(
                    client["client_id"], login, granted, now + self.refresh_token_ttl, expiring
                )
                answer.update(
                    expires_in=self.access_token_ttl,
                    refresh_token=refresh,
                    refresh_token_expires_in=self.refresh_token_ttl,
                )
        answer.update(scope=",".join(granted), token_type="bearer")
        return self._token_answer(answer, as_json)

    def _token_error(self, error: str, as_json: bool) -> Response:
        description, uri = ERRORS.get(error, (error, DOCS))
        answer = {"error": error, "error_description": description, "error_uri": uri}
        return self._token_answer(answer, as_json)

    def _token_answer(self, answer: Mapping[str, Any], as_json: bool) -> Response:
        if as_json:
            return JSONResponse(dict(answer))
        return Response(
            urlencode({k: str(v) for k, v in answer.items()}),
            media_type="application/x-www-form-urlencoded; charset=utf-8",
        )

    # -- the REST API ----------------------------------------------------------------------

    def _bearer(self, request: Request) -> _Token | Response:
        if not request.headers.get("user-agent"):
            return Response(
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header "
                "(https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required)."
                " Check https://developer.github.com for other possible causes.\n",
                403,
                media_type="text/plain",
            )
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() in ("bearer", "token") else None
        if token is None or (token.expires_at is not None and time.time() > token.expires_at):
            return JSONResponse(
                {
                    "message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/rest",
                    "status": "401",
                },
                401,
            )
        return token

    async def _user(self, request: Request) -> Response:
        self.hits["GET /user"] += 1
        if self.faults.user_delay:
            await self._sleep(self.faults.user_delay)
        if self.faults.user_status is not None:
            return _server_error(self.faults.user_status)
        token = self._bearer(request)
        if isinstance(token, Response):
            return token
        user = self.users[token.login]
        login = token.login
        return JSONResponse(
            {
                "login": login,
                "id": user["id"],
                "node_id": base64.b64encode(f"04:User{user['id']}".encode()).decode(),
                "avatar_url": user["avatar_url"],
                "gravatar_id": "",
                "url": f"{self.base_url}/users/{login}",
                "html_url": f"https://github.com/{login}",
                "type": "User",
                "user_view_type": "public",
                "site_admin": False,
                "name": user["name"],
                "company": user.get("company"),
                "blog": user.get("blog", ""),
                "location": user.get("location"),
                "email": user["email"],
                "hireable": None,
                "bio": user.get("bio"),
                "twitter_username": None,
                "public_repos": 8,
                "public_gists": 8,
                "followers": 20,
                "following": 0,
                "created_at": "2011-01-25T18:44:36Z",
                "updated_at": "2024-01-22T12:00:00Z",
            },
            headers={"x-oauth-scopes": ", ".join(token.scopes)},
        )

    async def _emails(self, request: Request) -> Response:
        self.hits["GET /user/emails"] += 1
        if self.faults.emails_delay:
            await self._sleep(self.faults.emails_delay)
        if self.faults.emails_status is not None:
            return _server_error(self.faults.emails_status)
        token = self._bearer(request)
        if isinstance(token, Response):
            return token
        if not token.expiring and not {"user", "user:email"} & set(token.scopes):
            return JSONResponse(
                {
                    "message": "Not Found",
                    "documentation_url": "https://docs.github.com/rest/users/emails"
                    "#list-email-addresses-for-the-authenticated-user",
                    "status": "404",
                },
                404,
            )
        return JSONResponse(self.users[token.login]["emails"])


def _server_error(status: int) -> Response:
    return JSONResponse({"message": "Server Error", "status": str(status)}, status)
