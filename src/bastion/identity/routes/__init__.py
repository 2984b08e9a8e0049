"""The core endpoints, one module per feature."""

from __future__ import annotations

from ..endpoint import Endpoint
from . import accounts, misc, password, session, sign_in, sign_up, social, user, verify_email

__all__ = ["CORE_ENDPOINTS"]

CORE_ENDPOINTS: tuple[Endpoint, ...] = (
    *sign_up.ENDPOINTS,
    *sign_in.ENDPOINTS,
    *social.ENDPOINTS,
    *accounts.ENDPOINTS,
    *session.ENDPOINTS,
    *user.ENDPOINTS,
    *password.ENDPOINTS,
    *verify_email.ENDPOINTS,
    *misc.ENDPOINTS,
)
