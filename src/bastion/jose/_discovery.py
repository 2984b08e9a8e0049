"""An OIDC discovery document (OpenID Connect Discovery 1.0 §3) is trusted for the keys
only when it speaks for the configured issuer and names a usable `jwks_uri` (S32)."""

from __future__ import annotations

from typing import Any

from ._errors import ConfigurationError
from ._urls import check_url

__all__ = ["validate_metadata"]


def validate_metadata(document: Any, expected_issuer: str, *, allow_http: bool) -> dict[str, Any]:
    """`document` itself when its `issuer` is exactly `expected_issuer` and its `jwks_uri`
    passes `check_url`; ValueError otherwise."""
    if not isinstance(document, dict):
        raise ValueError("discovery document is not a JSON object")
    if document.get("issuer") != expected_issuer:
        # rp-discovery-issuer-not-matching-config (S32): the document speaks for another issuer.
        raise ValueError(
            f"discovery document names issuer {document.get('issuer')!r}, "
            f"not the configured {expected_issuer!r}"
        )
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ValueError("discovery document has no jwks_uri")
    try:
        check_url(jwks_uri, what="jwks_uri", allow_http=allow_http)
    except ConfigurationError as error:
        raise ValueError(str(error)) from None
    return document
