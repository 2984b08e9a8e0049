"""The web pages: sign-in, account, playground, served beside the API (docs/web.md).

    app = Bastion(agents=[...], auth=IdentityAuth(identity), ui=True)
    app = Bastion(..., ui=Pages(app_name="Acme", colors={"accent": "#0f766e"}))
    asgi = web_app(identity, Pages())     # an Identity alone: its API plus the pages

Server-rendered (Jinja2), one stylesheet and one small script from /static, no inline script
or style (a strict Content-Security-Policy), and every form posts JSON to the same public
/api/auth and /api endpoints any other client uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from ..identity import Identity
from ._app import WebContext, build_app, safe_next
from ._links import to_pages

if TYPE_CHECKING:
    from ..server import Bastion

__all__ = ["Pages", "WebContext", "safe_next", "to_pages", "web_app"]


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
