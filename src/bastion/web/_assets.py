"""Static files, served under content-hashed names.

Every file of src/bastion/web/static/ is read once, when the web app is built, and served at
`/static/<name>.<hash>.<ext>` (the first 12 hex digits of its SHA-256) with a year-long,
immutable Cache-Control: a browser fetches each version once, and a new release changes the
name. Templates call `asset("app.js")` for the URL. `theme.css` is made from
`Pages.colors` (CSS custom properties), since the CSP allows no inline style.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

__all__ = ["STATIC_DIR", "Asset", "Assets", "theme_css"]

STATIC_DIR = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
# A colour name is a CSS identifier; a value may not close the declaration or the rule.
_COLOR_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}")
_COLOR_VALUE = re.compile(r"[#(),.%\w\s-]{1,80}")


@dataclass(frozen=True, slots=True)
class Asset:
    name: str  # app.js
    url: str  # /static/app.3f2a9c1d0b4e.js
    body: bytes
    media_type: str


def _hashed(name: str, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()[:12]
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.{digest}.{ext}" if dot else f"{name}.{digest}"


def theme_css(colors: Mapping[str, str]) -> str:
    """`:root { --accent: #4f46e5; ... }` for `Pages.colors`; ValueError for a name or value
    that could break out of the declaration (they come from code, but a typo should fail at
    start-up, not produce a stylesheet that silently does nothing)."""
    lines = []
    for name, value in colors.items():
        if not _COLOR_NAME.fullmatch(name):
            raise ValueError(f"colors: {name!r} is not a CSS custom property name (e.g. 'accent')")
        if not _COLOR_VALUE.fullmatch(value):
            raise ValueError(f"colors[{name!r}]: {value!r} is not a CSS colour")
        lines.append(f"  --{name}: {value.strip()};")
    # Both schemes: a colour given once holds in light and dark alike.
    body = "\n".join(lines)
    dark = f"@media (prefers-color-scheme: dark) {{\n  :root {{\n{body}\n  }}\n}}\n"
    return f":root {{\n{body}\n}}\n{dark}"


class Assets:
    """The static files and their hashed URLs; `extra` adds generated ones (theme.css)."""

    def __init__(self, directory: Path = STATIC_DIR, extra: Mapping[str, bytes] = {}) -> None:
        self._by_name: dict[str, Asset] = {}
        self._by_file: dict[str, Asset] = {}
        files = {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}
        for name, body in {**files, **extra}.items():
            suffix = "." + name.rpartition(".")[2]
            asset = Asset(
                name=name,
                url="/static/" + _hashed(name, body),
                body=body,
                media_type=_TYPES.get(suffix, "application/octet-stream"),
            )
            self._by_name[name] = asset
            self._by_file[asset.url.removeprefix("/static/")] = asset

    def url(self, name: str) -> str:
        """The hashed URL of `name` (KeyError names a missing file at render time)."""
        try:
            return self._by_name[name].url
        except KeyError:
            raise KeyError(f"no static file {name!r} in {STATIC_DIR}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    async def serve(self, request: Request) -> Response:
        asset = self._by_file.get(request.path_params["file"])
        if asset is None:
            # An old hash after an upgrade, or a guess: not cacheable, so the next page
            # (with the new name) is fetched.
            return PlainTextResponse("Not found", 404, headers={"Cache-Control": "no-store"})
        headers = {
            "Cache-Control": IMMUTABLE,
            "ETag": '"' + asset.url.rsplit(".", 2)[-2] + '"',
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)
