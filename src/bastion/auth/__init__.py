"""Access control for the agent server: providers, the request pipeline, RBAC."""

from .context import RequestContext, current_context
from .provider import AuthProvider

__all__ = ["AuthProvider", "RequestContext", "current_context"]
