"""Access control for the agent server: providers, the request pipeline, RBAC."""

from ..jose import ConfigurationError, JWKSCache, JWTError, KeysUnavailable, default_jwks_cache
from .config import AuthConfig
from .context import Membership, RequestContext, bind_context, current_context, strip_reserved
from .errors import (
    AuthError,
    AuthorizationFailed,
    Forbidden,
    InsufficientScope,
    InvalidRequest,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    ResourceMappingFailed,
    Unauthenticated,
)
from .organization_rbac import OrganizationRBAC, statement_grants
from .pipeline import AuthPipeline, RouteAuth
from .provider import AuthProvider
from .providers import Auth0Auth, CompositeAuth, IdentityAuth, JWTAuth, SimpleAuth
from .rbac import DEFAULT_ROLES, RBACProvider, StaticRBAC
from .rules import Rule
from .scopes import require_permissions, require_scopes, token_permissions, token_scopes
from .tenancy import MemoryScope

__all__ = [
    "DEFAULT_ROLES",
    "Auth0Auth",
    "AuthConfig",
    "AuthError",
    "AuthPipeline",
    "AuthProvider",
    "AuthorizationFailed",
    "CompositeAuth",
    "ConfigurationError",
    "Forbidden",
    "IdentityAuth",
    "InsufficientScope",
    "InvalidRequest",
    "JWKSCache",
    "JWTAuth",
    "JWTError",
    "KeysUnavailable",
    "Membership",
    "MemoryScope",
    "OrganizationRBAC",
    "PermissionDenied",
    "ProviderError",
    "ProviderUnavailable",
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
    "default_jwks_cache",
    "require_permissions",
    "require_scopes",
    "statement_grants",
    "strip_reserved",
    "token_permissions",
    "token_scopes",
]
