"""Driving an identity provider's login pages over HTTP as a browser would, without one:
`sign_in(authorization_url, login)` follows the provider's redirects, fills its login form
and presses submit, until the provider sends the browser back to the client; the `Callback`
says where to and with which parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

__all__ = ["Callback", "SignInError", "sign_in"]


class SignInError(AssertionError):
    """The provider's pages did not lead back to the client (an error page, or no form)."""


@dataclass
class Callback:
    """Where a provider sends the browser back to the client after sign-in.

    `method` is "GET" (a redirect; `params` are its query, or its fragment's parameters for
    response_mode=fragment) or "POST" (response_mode=form_post: an auto-submitted form;
    `params` are its fields). `url` is the full redirect URL for GET, the form's action for
    POST."""

    method: str
    url: str
    params: dict[str, str]

    @property
    def code(self) -> str:
        return self.params["code"]

    @property
    def error(self) -> str | None:
        return self.params.get("error")


@dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    id: str | None = None
    # Submit buttons: (name, value); the first one is what "pressing submit" sends.
    buttons: list[tuple[str | None, str]] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                _Form(a.get("action", ""), a.get("method", "get").upper(), id=a.get("id"))
            )
        elif self.forms and tag == "input" and a.get("name"):
            if a.get("type") == "submit":
                self.forms[-1].buttons.append((a["name"], a.get("value", "")))
            else:
                self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif self.forms and tag == "button" and a.get("type", "submit") == "submit":
            self.forms[-1].buttons.append((a.get("name"), a.get("value", "")))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _forms(html: str) -> tuple[list[_Form], str]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms, " ".join(" ".join(parser.text).split())


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _callback_of(url: str) -> Callback:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    params.update(parse_qsl(parts.fragment, keep_blank_values=True))
    return Callback("GET", url, params)


def sign_in(
    authorization_url: str,
    login: str,
    password: str = "",
    *,
    client: httpx.Client | None = None,
    cancel: bool = False,
    max_steps: int = 20,
) -> Callback:
    """Open `authorization_url` at a provider as a browser would and sign in as `login`:
    follow the provider's redirects, fill its login form (the form with a `login` field;
    `password` too) and press its submit button — or its cancel form with `cancel=True` —
    until the provider sends the browser elsewhere (a redirect off its origin, or a
    form_post page). `client` keeps the provider's cookies (its session) across calls;
    a fresh one is used by default. Raises SignInError on a page it cannot go on from, or
    when the login form comes back (an unknown login, a wrong password)."""
    own = client is None
    http = client or httpx.Client(timeout=10.0)
    provider = _origin(authorization_url)
    submitted = False
    try:
        response = http.get(authorization_url, follow_redirects=False)
        for _ in range(max_steps):
            url = str(response.url)
            if response.is_redirect:
                target = urljoin(url, response.headers["location"])
                if _origin(target) != provider:
                    return _callback_of(target)
                response = http.get(target, follow_redirects=False)
                continue
            forms, text = _forms(response.text)
            if response.status_code != 200 or not forms:
                raise SignInError(f"{response.status_code} at {url}: {text[:500]}")
            posted = [f for f in forms if _origin(urljoin(url, f.action)) != provider]
            if posted:  # response_mode=form_post: the page posts to the client
                form = posted[0]
                return Callback(form.method, urljoin(url, form.action), form.fields)
            if cancel:
                form = next((f for f in forms if "login" not in f.fields), forms[-1])
                data = dict(form.fields)
            else:
                found = [f for f in forms if "login" in f.fields]
                if not found:
                    raise SignInError(f"no login form at {url}: {text[:500]}")
                if submitted:
                    raise SignInError(f"the provider refused login {login!r}: {text[:500]}")
                submitted = True
                form = found[0]
                data = {**form.fields, "login": login}
                if "password" in data:
                    data["password"] = password
            if form.buttons and form.buttons[0][0]:
                name, value = form.buttons[0]
                data[str(name)] = value
            action = urljoin(url, form.action or url)
            if form.method == "POST":
                response = http.post(action, data=data, follow_redirects=False)
            else:
                response = http.get(action, params=data, follow_redirects=False)
        raise SignInError(f"no way back to the client after {max_steps} steps")
    finally:
        if own:
            http.close()
