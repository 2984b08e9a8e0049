"""The page router: `WebContext` (what every page module gets) and the ASGI app of the pages.

Each page module (`_auth_pages`, `_account_pages`, `_playground`, ...) exports
`routes(web: WebContext) -> list[Route]`; the ones present in this package are mounted (a
module that is not there yet is simply absent). Handlers use:

    web.render(request, "sign-in.html", form=...)        # HTML with the CSP headers
    await web.session_of(request)                         # {"session", "user"} or None
    await web.require_session(request)                    # the same, or off to /sign-in?next=

`require_session` raises `SignInRequired`, which the app answers with a 303 to the sign-in
page naming the path to come back to.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from ..identity import Identity
from ._assets import Assets, theme_css
from ._security import SECURITY_HEADERS

if TYPE_CHECKING:
    from ..server import Bastion

__all__ = [
    "PAGE_MODULES",
    "Features",
    "Pages",
    "SignInRequired",
    "WebContext",
    "build_app",
    "safe_next",
    "web_app",
]

# The page modules, in routing order; each is optional (bastion.web.<name>).
PAGE_MODULES = ("_auth_pages", "_account_pages", "_playground")
TEMPLATES = jinja2.PackageLoader("bastion.web", "templates")


class SignInRequired(Exception):
    """A page needs a session the request does not carry: answered with a redirect to
    /sign-in?next=<the page>."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def safe_next(value: str | None, default: str) -> str:
    """A `?next=` value that stays on this site: a path starting with one "/" (not "//",
    not "/\\", which browsers read as another host), else `default`."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return default
    return value


@dataclass(frozen=True, slots=True)
class Features:
    """What the Identity has switched on, for the sign-in page to show only those."""

    email_password: bool
    sign_up: bool
    reset_password: bool
    magic_link: bool
    email_otp: bool
    username: bool
    two_factor: bool
    social: tuple[tuple[str, str], ...]  # (provider id, name shown)
    plugins: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, identity: Identity) -> Features:
        options = identity.options
        plugins = frozenset(p.id for p in identity.plugins)
        email = options.email_and_password
        providers = identity.context.social_providers
        return cls(
            email_password=bool(email.enabled),
            sign_up=bool(email.enabled) and not email.disable_sign_up,
            reset_password=bool(email.enabled) and email.send_reset_password is not None,
            magic_link="magic-link" in plugins,
            email_otp="email-otp" in plugins,
            username="username" in plugins and bool(email.enabled),
            two_factor="two-factor" in plugins,
            social=tuple((p.id, p.name or p.id.title()) for p in providers.values()),
            plugins=plugins,
        )


@dataclass(slots=True)
class WebContext:
    identity: Identity
    bastion: Bastion | None
    pages: Pages
    templates: jinja2.Environment
    assets: Assets
    features: Features
    api_base: str  # where the Identity answers: /api/auth
    page_paths: set[str] = field(default_factory=set)  # every page's path, for the nav

    def render(
        self,
        request: Request,
        template: str,
        status: int = 200,
        *,
        headers: Mapping[str, str] | None = None,
        **values: Any,
    ) -> Response:
        """The template rendered with the common values (pages, features, request, the
        signed-in `session` if a handler looked it up), with the security headers."""
        context = {
            "pages": self.pages,
            "features": self.features,
            "api": self.api_base,
            "request": request,
            "path": request.url.path,
            "page_paths": self.page_paths,
            "session": request.state.web_session if _looked_up(request) else None,
            **values,
        }
        body = self.templates.get_template(template).render(context)
        response = HTMLResponse(body, status_code=status, headers=dict(headers or {}))
        return self.finish(request, response)

    def redirect(self, request: Request, url: str, status: int = 303) -> Response:
        return self.finish(request, RedirectResponse(url, status_code=status))

    def finish(self, request: Request, response: Response) -> Response:
        """The security headers, no caching (pages show who is signed in), and the cookies a
        session lookup asked to set (a refreshed session, a cleared dead one)."""
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        for line in getattr(request.state, "web_set_cookies", ()):
            response.raw_headers.append((b"set-cookie", line.encode("latin-1")))
        return response

    async def session_of(self, request: Request) -> dict[str, Any] | None:
        """`{"session", "user"}` of the request's cookie (as get-session reads it), or None.
        Looked up once per request."""
        if _looked_up(request):
            return request.state.web_session  # type: ignore[no-any-return]
        result = await self.identity.get_session(request.headers, method=request.method)
        found = None
        if result.session is not None and result.user is not None:
            found = {"session": result.session, "user": result.user}
        request.state.web_session = found
        request.state.web_set_cookies = result.set_cookies
        return found

    async def require_session(self, request: Request) -> dict[str, Any]:
        """The session, or `SignInRequired` (a redirect to sign-in and back here)."""
        found = await self.session_of(request)
        if found is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target)
        return found

    def sign_in_url(self, next_path: str | None = None) -> str:
        if not next_path or next_path == self.pages.sign_in_redirect:
            return "/sign-in"
        return "/sign-in?next=" + quote(next_path, safe="/")


def _looked_up(request: Request) -> bool:
    return hasattr(request.state, "web_session")


def _environment(pages: Pages, assets: Assets) -> jinja2.Environment:
    loader: jinja2.BaseLoader = TEMPLATES
    if pages.templates is not None:  # the app's own templates first, ours for the rest
        loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(pages.templates), TEMPLATES])
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,  # a misspelt value fails the test, not the page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = assets.url
    env.globals["has_asset"] = assets.__contains__
    return env


def build_app(
    identity: Identity, bastion: Bastion | None, pages: Pages, *, mount_identity: bool
) -> Starlette:
    """The pages (and /static); with `mount_identity`, also the Identity at its base path
    (for an app that is only an Identity; a Bastion mounts it itself)."""
    from ..server.app import identity_base_path

    extra = {"theme.css": theme_css(pages.colors).encode()} if pages.colors else {}
    assets = Assets(extra=extra)
    web = WebContext(
        identity=identity,
        bastion=bastion,
        pages=pages,
        templates=_environment(pages, assets),
        assets=assets,
        features=Features.of(identity),
        api_base=identity_base_path(identity),
    )
    routes: list[BaseRoute] = [
        Route("/static/{file}", assets.serve, methods=["GET", "HEAD"]),
    ]
    if mount_identity:
        routes.append(Mount(web.api_base, app=identity.app))
    for name in PAGE_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__package__}.{name}":
                raise  # the module is there but imports something missing: say so
            continue
        routes.extend(module.routes(web))
    web.page_paths.update(r.path for r in routes if isinstance(r, Route))

    async def home(request: Request) -> Response:
        signed_in = await web.session_of(request) is not None
        return web.redirect(request, pages.sign_in_redirect if signed_in else "/sign-in")

    routes.append(Route("/", home, methods=["GET", "HEAD"]))

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return web.redirect(request, web.sign_in_url(exc.next_path))

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.method == "POST":  # a form sent without app.js (see base.html)
            return web.render(
                request,
                "error.html",
                400,
                title="JavaScript is needed",
                message="This form needs JavaScript. Turn it on and try again.",
            )
        await web.session_of(request)  # the header shows who is signed in
        return web.render(
            request,
            "error.html",
            404,
            title="Page not found",
            message="There is no page at this address.",
        )

    async def server_error(request: Request, exc: Exception) -> Response:
        # Never a stack trace on the page: the log has it (Starlette logs the exception).
        return web.render(
            request,
            "error.html",
            500,
            title="Something went wrong",
            message="The page could not be shown. Try again in a moment.",
        )

    app = Starlette(
        routes=routes,
        exception_handlers={
            SignInRequired: sign_in_required,
            404: not_found,
            405: not_found,
            500: server_error,
        },
    )
    app.state.web = web
    return app


@dataclass(frozen=True, slots=True)
class Pages:
    """How the pages look and where they lead.

    `app_name`: the title and header; `logo_url`: an image beside it (a path on this site or
    a data: URL, which the CSP allows); `colors`: CSS custom properties of app.css, e.g.
    `{"accent": "#4f46e5"}`; `sign_in_redirect`: where a signed-in person goes by default;
    `templates`: a directory whose Jinja2 templates replace ours of the same name
    (`base.html`, `sign-in.html`, ...), the others staying ours."""

    app_name: str = "Bastion"
    logo_url: str | None = None
    colors: Mapping[str, str] = field(default_factory=dict)
    sign_in_redirect: str = "/playground"
    templates: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        if not self.app_name.strip():
            raise ValueError("Pages.app_name must not be empty")
        if safe_next(self.sign_in_redirect, "") != self.sign_in_redirect:
            raise ValueError("Pages.sign_in_redirect: a path on this site, like /playground")
        if self.templates is not None and not os.path.isdir(self.templates):
            raise ValueError(f"Pages.templates: {os.fspath(self.templates)!r} is not a directory")

    def asgi_app(self, server: Bastion) -> ASGIApp:
        """The pages of `server` (what `Bastion(ui=Pages(...))` calls)."""
        return web_app(server, self)


def web_app(bastion_or_identity: Bastion | Identity, pages: Pages | None = None) -> ASGIApp:
    """The pages as an ASGI app. For a `Bastion`, only the pages (the Bastion answers /api
    itself: `Bastion(ui=...)` uses this); for an `Identity`, its API at its base path too."""
    from ..server import Bastion

    pages = pages or Pages()
    if isinstance(bastion_or_identity, Identity):
        return build_app(bastion_or_identity, None, pages, mount_identity=True)
    if isinstance(bastion_or_identity, Bastion):
        if bastion_or_identity.identity is None:
            raise ValueError("the pages need an Identity: Bastion(auth=IdentityAuth(identity))")
        return build_app(
            bastion_or_identity.identity, bastion_or_identity, pages, mount_identity=False
        )
    raise TypeError(f"web_app: {bastion_or_identity!r} is neither a Bastion nor an Identity")
