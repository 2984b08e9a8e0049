"""Identity providers for the auth pipeline."""

from .auth0 import Auth0Auth
from .composite import CompositeAuth
from .identity import IdentityAuth
from .jwt import JWTAuth
from .simple import SimpleAuth

__all__ = ["Auth0Auth", "CompositeAuth", "IdentityAuth", "JWTAuth", "SimpleAuth"]
