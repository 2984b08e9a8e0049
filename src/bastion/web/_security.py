"""The headers every page answers with.

The Content-Security-Policy allows nothing inline: scripts and styles come only from our
own /static files (an injected `<script>` or `style=` attribute does not run), no page may
frame ours (clickjacking), and forms post only to our origin. Colours from `Pages.colors`
therefore reach the page as a generated stylesheet (`_assets.theme_css`), never inline.
"""

from __future__ import annotations

__all__ = ["CSP", "SECURITY_HEADERS"]

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Older browsers that ignore frame-ancestors.
    "X-Frame-Options": "DENY",
}
