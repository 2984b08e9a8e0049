"""Identity providers for the auth pipeline."""

from .composite import CompositeAuth
from .simple import SimpleAuth

__all__ = ["CompositeAuth", "SimpleAuth"]
