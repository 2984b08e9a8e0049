"""Access control for the agent server: providers, the request pipeline, RBAC."""

from .config import AuthConfig
from .context import RequestContext, bind_context, current_context, strip_reserved
from .errors import (
    AuthError,
    AuthorizationFailed,
    Forbidden,
    InsufficientScope,
    PermissionDenied,
    ProviderError,
    ResourceMappingFailed,
    Unauthenticated,
)
from .pipeline import AuthPipeline, RouteAuth
from .provider import AuthProvider
from .providers import CompositeAuth, SimpleAuth
from .rbac import DEFAULT_ROLES, RBACProvider, StaticRBAC
from .rules import Rule

__all__ = [
    "DEFAULT_ROLES",
    "AuthConfig",
    "AuthError",
    "AuthPipeline",
    "AuthProvider",
    "AuthorizationFailed",
    "CompositeAuth",
    "Forbidden",
    "InsufficientScope",
    "PermissionDenied",
    "ProviderError",
    "RBACProvider",
    "RequestContext",
    "ResourceMappingFailed",
    "RouteAuth",
    "Rule",
    "SimpleAuth",
    "StaticRBAC",
    "Unauthenticated",
    "bind_context",
    "current_context",
    "strip_reserved",
]
