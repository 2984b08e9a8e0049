"""The web pages: sign-in, account, playground, served beside the API (docs/web.md).

    app = Bastion(agents=[...], auth=IdentityAuth(identity), ui=Pages())
    app = Bastion(..., ui=Pages(app_name="Acme", colors={"accent": "#0f766e"}))
    asgi = web_app(identity, Pages())     # an Identity alone: its API plus the pages

Server-rendered (Jinja2), one stylesheet and one small script from /static, no inline script
or style (a strict Content-Security-Policy), and every form posts JSON to the same public
/api/auth and /api endpoints any other client uses.
"""

from __future__ import annotations

from ._app import Pages, WebContext, safe_next, web_app
from ._links import to_pages

__all__ = ["Pages", "WebContext", "safe_next", "to_pages", "web_app"]
