"""`GET /api/openapi.json`: the agent server's OpenAPI document, from its route table.

Every route the router serves is in it, as registered (`Router.operations()`): the path
template and its `{name}` parameters, the method, the body and query models and the
statuses its `Doc` declares, and what the auth pipeline makes of the route — a public route
has `security: []`, a protected one the configured credentials (the bearer header, the
`apiKey` query parameter, the provider's session cookies), and the pipeline's own answers
(400, 401, 403, 503). Routes an application adds with `route(...)` are in it too, with the
first line of the handler's docstring as summary. Built at the first request, when every
route is in the table, then kept.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from .. import __version__
from .._openapi import OPENAPI_VERSION, Doc, ModelSchemas, camel_case, status_text
from .._openapi import path_parameters as _path_parameters
from .._openapi import query_parameters as _query_parameters
from ..auth.context import RequestContext
from ..auth.pipeline import AuthPipeline, RouteAuth
from .agents import ID_PATTERN
from .routes import Router

__all__ = ["OPENAPI_PATH", "add_openapi_route", "server_openapi"]

OPENAPI_PATH = "/api/openapi.json"

# What the auth pipeline answers on a protected route: a credential sent twice (400), no or
# a bad credential (401), a refusal (403), its provider down (503).
_PIPELINE_ERRORS = (400, 401, 403, 503)
# What reading a JSON body answers: not JSON or not an object (400), too large (413), not
# `Content-Type: application/json` (415).
_BODY_ERRORS = (400, 413, 415)
_PATH_PATTERNS = {"agentId": f"^(?:{ID_PATTERN.pattern})$"}  # JSON Schema patterns search


def add_openapi_route(router: Router, pipeline: AuthPipeline, title: str) -> None:
    """Serve the document at `OPENAPI_PATH`, public."""
    documents: dict[str, dict[str, Any]] = {}

    async def openapi_document(request: Request, context: RequestContext) -> Any:
        """This document."""
        root = request.scope.get("root_path", "") or "/"
        document = documents.get(root)
        if document is None:
            document = server_openapi(router, pipeline, title=title, server_url=root)
            if len(documents) < 16:  # one per mount point
                documents[root] = document
        return document

    router.add(
        OPENAPI_PATH,
        ["GET"],
        openapi_document,
        requires_auth=False,
        doc=Doc("This document", ("System",)),
    )


def server_openapi(
    router: Router, pipeline: AuthPipeline, *, title: str, server_url: str = "/"
) -> dict[str, Any]:
    """The OpenAPI document of what `router` serves, behind `pipeline`."""
    operations = [op for op in router.operations() if op[1] != "HEAD"]  # HEAD is GET's
    schemas = ModelSchemas(
        model
        for *_, doc in operations
        if doc is not None
        for model in (doc.body, doc.query)
        if model is not None
    )
    schemes = _security_schemes(pipeline)
    credentials: list[dict[str, list[str]]] = [{name: []} for name in schemes]
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    tags: dict[str, None] = {}
    for template, method, handler, auth, doc in operations:
        protected = _protected(pipeline, template, method, auth)
        custom = doc is None  # an application's `route(...)`
        doc = doc or Doc(_first_line(handler.__doc__), ("Custom",))
        tags.update(dict.fromkeys(doc.tags))
        operation: dict[str, Any] = {
            "tags": list(doc.tags),
            "operationId": _operation_id(handler.__name__, method, used_ids),
            "security": credentials if protected else [],
        }
        if doc.summary:
            operation["summary"] = doc.summary
        parameters = _path_parameters(template, _PATH_PATTERNS)
        if doc.query is not None:
            parameters += _query_parameters(schemas, doc.query)
        if parameters:
            operation["parameters"] = parameters
        if doc.body is not None:
            operation["requestBody"] = {
                "required": False,  # an empty body is `{}`
                "content": {"application/json": {"schema": schemas.ref(doc.body)}},
            }
        operation["responses"] = _responses(doc, protected, custom=custom)
        paths.setdefault(template, {})[method.lower()] = operation
    components: dict[str, Any] = {"schemas": {**schemas.components, **_ERROR_SCHEMA}}
    if schemes:
        components["securitySchemes"] = schemes
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": __version__},
        "servers": [{"url": server_url}],
        "tags": [{"name": name} for name in tags],
        "paths": paths,
        "components": components,
    }


def _protected(pipeline: AuthPipeline, template: str, method: str, auth: RouteAuth) -> bool:
    # The patterns see the template: `{agentId}` is one segment, as any id would be.
    return pipeline.is_protected(template, method, auth)


def _security_schemes(pipeline: AuthPipeline) -> dict[str, Any]:
    """The credentials the pipeline reads (step 4 of auth/pipeline.py), if it has a provider."""
    auth = pipeline.auth
    if auth is None:
        return {}
    schemes: dict[str, Any] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": auth.name},
        "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "apiKey"},
    }
    for index, cookie in enumerate(auth.credential_cookies):
        key = "sessionCookie" if index == 0 else f"sessionCookie{index + 1}"
        schemes[key] = {"type": "apiKey", "in": "cookie", "name": cookie}
    return schemes


def _responses(doc: Doc, protected: bool, *, custom: bool) -> dict[str, Any]:
    responses: dict[str, Any]
    if custom:  # its handler answers what it likes, with any status
        responses = {"default": {"description": "What the handler answers"}}
    else:
        schema: dict[str, Any] = {} if doc.media_type == "application/json" else {"type": "string"}
        content = {doc.media_type: {"schema": schema}}
        responses = {str(doc.status): {"description": status_text(doc.status), "content": content}}
    errors = set(doc.errors)
    if protected:
        errors.update(_PIPELINE_ERRORS)
    if doc.body is not None:
        errors.update(_BODY_ERRORS)
    for status in sorted(errors):
        responses[str(status)] = {
            "description": status_text(status),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses


def _operation_id(name: str, method: str, used: set[str]) -> str:
    base = camel_case(name.strip("_")) or method.lower()
    candidate, index = base, 2
    while candidate in used:
        candidate, index = f"{base}{index}", index + 1
    used.add(candidate)
    return candidate


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


_ERROR_SCHEMA: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
        "required": ["error"],
    }
}
