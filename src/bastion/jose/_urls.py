"""The URLs keys may be fetched from: https (http only on loopback, or when allowed), no
credentials, no fragment; and where OIDC discovery puts an issuer's metadata."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .._url_masking import mask_userinfo
from ._errors import ConfigurationError

__all__ = ["check_url", "discovery_url"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, what: str, allow_http: bool = False) -> str:
    """An https URL (http only for loopback, or with allow_http), no credentials or fragment."""
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{what} must be a URL")
    parts = urlsplit(url)
    shown = mask_userinfo(url)  # an error must not print the credentials it refuses
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"{what} must be an https URL, not {shown!r}")
    if parts.scheme == "http" and not (allow_http or _is_loopback(parts.hostname)):
        raise ConfigurationError(
            f"{what} must use https ({shown!r}); plain http is allowed for loopback hosts, "
            "or with allow_http=True"
        )
    if parts.username or parts.password or parts.fragment:
        raise ConfigurationError(f"{what} must not carry credentials or a fragment: {shown!r}")
    return url


def discovery_url(issuer: str) -> str:
    """OIDC Discovery 1.0 §4: the issuer, without a trailing slash, plus the well-known path."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"
