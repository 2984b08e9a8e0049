"""The open-api plugin: `GET /open-api/generate-schema`, better-auth's path for it.

The document is generated from the running Identity's endpoint declarations, core and
every plugin's: path and methods, the body model as the request body (in each media type
the endpoint accepts, with the wire names), the query model as query parameters, `{name}`
path parameters, the endpoint's tags, and the success answer from the handler's return
annotation. Models are the database schema's tables (`User`, `Session`, ...), as
better-auth's are. Server-only endpoints have no URL and are left out.

Not served: better-auth's `/reference` page. It is a Scalar page that loads its script
from a CDN at every visit; a third-party script on the origin that holds the session
cookies is a risk this server does not take. Any OpenAPI viewer can read the document.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from ..._openapi import OPENAPI_VERSION, ModelSchemas, path_parameters
from ..._openapi import query_parameters as _query_parameters
from ..._openapi import status_text as _status_text
from ..cookies import cookie_name
from ..db import CORE_SCHEMA
from ..endpoint import Ctx, Endpoint, RawResponse
from ..sessions import fresh_session, sensitive_session, session_required
from . import Plugin

if TYPE_CHECKING:
    from ..context import AuthContext
    from ..db import Field

__all__ = ["identity_openapi", "open_api"]

DEFAULT_TAG = "Default"
_DEFAULT_DESCRIPTION = (
    "Default endpoints that are included with Better Auth by default. "
    "These endpoints are not part of any plugin."
)
# Guards after which the handler runs only for a signed-in caller.
_SESSION_GUARDS = (session_required, sensitive_session, fresh_session)

# What the identity's runner answers any request with, besides the handler's own answers
# (spec §1.4): a bad query or path value, a session guard, the origin checks, a handler's
# "not found", the rate limiter, a storage outage; for methods with a body also the body's
# size and media type, an unexpected method on a path (POST /get-session) and the database
# refusing a value. GET endpoints may redirect (the email links).
_ANY = (400, 401, 403, 404, 429, 503)
_WITH_BODY = (405, 413, 415, 422)


def open_api() -> Plugin:
    """`GET /open-api/generate-schema`: the OpenAPI 3.1 document of this Identity."""
    # Endpoints and options are fixed at construction: one document per Identity and base
    # URL, the context kept beside it so that a reused id() is not taken for the same one.
    documents: dict[tuple[int, str], tuple[AuthContext, dict[str, Any]]] = {}

    async def generate_schema(ctx: Ctx[Any]) -> dict[str, Any]:
        key = (id(ctx.context), ctx.base_url)
        kept = documents.get(key)
        if kept is not None and kept[0] is ctx.context:
            return kept[1]
        document = identity_openapi(ctx.context, ctx.base_url)
        if len(documents) < 16:  # base URLs derived from requests: bounded
            documents[key] = (ctx.context, document)
        return document

    endpoint = Endpoint(
        "/open-api/generate-schema",
        ("GET",),
        generate_schema,
        name="generate_open_api_schema",
    )
    return Plugin(id="open-api", endpoints=(endpoint,))


def identity_openapi(context: AuthContext, server_url: str) -> dict[str, Any]:
    """The OpenAPI document of an Identity's endpoints (`identity.context`) as served at
    `server_url`."""
    served: list[tuple[str | None, Endpoint]] = list(context.endpoints)
    schemas = ModelSchemas(
        model for _, e in served for model in (e.body, e.query) if model is not None
    )
    has_bearer = "bearer" in context.plugin_ids
    signed_in: list[dict[str, list[str]]] = [{"sessionCookie": []}]
    if has_bearer:
        signed_in.append({"bearerAuth": []})
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    tags: dict[str, str | None] = {DEFAULT_TAG: _DEFAULT_DESCRIPTION}
    for plugin, endpoint in served:
        if plugin is None:
            operation_tags = [DEFAULT_TAG, *endpoint.openapi_tags]
        else:
            operation_tags = list(endpoint.openapi_tags) or [plugin[:1].upper() + plugin[1:]]
        tags.update((tag, tags.get(tag)) for tag in operation_tags)
        guarded = any(guard in _SESSION_GUARDS for guard in endpoint.use)
        for method in endpoint.methods:
            operation: dict[str, Any] = {"tags": operation_tags}
            if endpoint.operation_id is not None:
                operation["operationId"] = _operation_id(endpoint.operation_id, method, used_ids)
            # A guarded endpoint needs a session; the others read one when it is sent.
            operation["security"] = signed_in if guarded else [{}, *signed_in]
            operation["parameters"] = _parameters(endpoint, schemas)
            takes_body = method not in ("GET", "HEAD", "DELETE")
            if takes_body:
                operation["requestBody"] = _request_body(context, endpoint, schemas)
            operation["responses"] = _responses(endpoint, method, takes_body)
            paths.setdefault(endpoint.path, {})[method.lower()] = operation
    security_schemes: dict[str, Any] = {
        "sessionCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": cookie_name(
                context.options.advanced.cookie_prefix,
                "session_token",
                secure=context.secure_cookies,
            ),
            "description": "The signed session cookie that sign-in sets",
        }
    }
    if has_bearer:
        security_schemes["bearerAuth"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "The session token (`set-auth-token` of a sign-in), bearer plugin",
        }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Bastion Identity",
            "description": "API Reference for your Better Auth Instance",
            "version": _version(),
        },
        "servers": [{"url": server_url}],
        "tags": [
            {"name": name, **({"description": text} if text else {})} for name, text in tags.items()
        ],
        "paths": paths,
        # Each operation says its own; this is the default of the document (better-auth
        # names a cookie scheme "apiKeyCookie" there, and requires it with bearer together).
        "security": signed_in,
        "components": {
            "schemas": {**_table_schemas(context), **schemas.components, **_ERROR_SCHEMA},
            "securitySchemes": security_schemes,
        },
    }


def _version() -> str:
    from ... import __version__

    return __version__


def _operation_id(base: str, method: str, used: set[str]) -> str:
    """The declared id; taken already (a second method of one endpoint), the method's name
    is added (`getSessionPost`), then a number, as better-auth's generator does."""
    candidate, index = base, 2
    if candidate in used:
        candidate = base + method.capitalize()
    while candidate in used:
        candidate, index = f"{base}{method.capitalize()}{index}", index + 1
    used.add(candidate)
    return candidate


def _parameters(endpoint: Endpoint, schemas: ModelSchemas) -> list[dict[str, Any]]:
    parameters = path_parameters(endpoint.path)
    if endpoint.query is not None:
        parameters += _query_parameters(schemas, endpoint.query)
    return parameters


def _request_body(
    context: AuthContext, endpoint: Endpoint, schemas: ModelSchemas
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}  # read, if at all, by the handler itself
    if endpoint.body is not None:
        schema = schemas.ref(endpoint.body)
    takes = _ADDITIONAL_INPUT.get(endpoint.path)
    if takes is not None:
        extra = _additional_fields(context, *takes)
        if extra["properties"]:
            schema = extra if endpoint.body is None else {"allOf": [schema, extra]}
    content = {media: {"schema": schema} for media in _json_first(endpoint)}
    return {"required": endpoint.body is not None, "content": content}


# The endpoints whose handlers take the additional fields of a table (routes/common.py's
# `additional_input`), and whether a required one must be given (on create).
_ADDITIONAL_INPUT: Mapping[str, tuple[str, bool]] = {
    "/sign-up/email": ("user", True),
    "/update-user": ("user", False),
    "/update-session": ("session", False),
}


def _additional_fields(context: AuthContext, model: str, create: bool) -> dict[str, Any]:
    """The fields of `model` that options and plugins add and a client may set."""
    core = CORE_SCHEMA.fields(model)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in context.schema.fields(model).items():
        if name in core or not field.input:
            continue
        properties[name] = _field_schema(field)
        if create and field.required and field.default is None:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _json_first(endpoint: Endpoint) -> list[str]:
    # The 415 message keeps the declared order; the document lists JSON first, as clients use it.
    return sorted(endpoint.media_types, key=lambda m: m != "application/json")


def _responses(endpoint: Endpoint, method: str, takes_body: bool) -> dict[str, Any]:
    media, schema = _success(endpoint)
    responses: dict[int, Any] = {
        200: {"description": "Success", "content": {media: {"schema": schema}}}
    }
    if method == "GET" or media == "text/html":  # a page, or a redirect in its place
        responses[302] = {
            "description": "Found: a redirect (the links sent by email, social sign-in)",
            "headers": {"Location": {"schema": {"type": "string"}}},
        }
    for status in (*_ANY, *(_WITH_BODY if takes_body else ())):
        responses[status] = {
            "description": _status_text(status),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    # An endpoint turned off answers 404 with no body at all (APIError.fromStatus), the
    # others a JSON error: no one media type describes both.
    responses[404] = {"description": "Not Found: a JSON error, or no body when turned off"}
    return {str(status): responses[status] for status in sorted(responses)}


def _success(endpoint: Endpoint) -> tuple[str, dict[str, Any]]:
    """The media type and schema of a success, from the handler's return annotation."""
    try:
        returned = typing.get_type_hints(endpoint.handler).get("return", Any)
    except Exception:  # an annotation that does not resolve at run time: any JSON
        return "application/json", {}
    if returned is RawResponse:  # an HTML page, as RawResponse sends by default
        return "text/html", {"type": "string"}
    try:
        return "application/json", TypeAdapter(returned).json_schema(mode="serialization")
    except Exception:  # not a type pydantic describes (a TypedDict of datetimes is fine)
        return "application/json", {}


# Every error answer: `{"message", "code"}`, either one absent, or an empty body.
_ERROR_SCHEMA: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {"message": {"type": "string"}, "code": {"type": "string"}},
    }
}


def _table_schemas(context: AuthContext) -> dict[str, Any]:
    """`User`, `Session`, ...: the tables as the endpoints return them (without the fields
    marked `returned=False`, such as password hashes)."""
    out: dict[str, Any] = {}
    for model in context.schema:
        fields = context.schema.fields(model)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, field in fields.items():
            if not field.returned:
                continue
            properties[name] = _field_schema(field)
            if name == "id":
                properties[name]["readOnly"] = True
            if field.required:
                required.append(name)
        out[model[:1].upper() + model[1:]] = {
            "type": "object",
            "properties": properties,
            "required": required,
        }
    return out


_FIELD_TYPES: Mapping[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date-time"},
    "json": {},
    "string[]": {"type": "array", "items": {"type": "string"}},
    "number[]": {"type": "array", "items": {"type": "number"}},
}


def _field_schema(field: Field) -> dict[str, Any]:
    schema = dict(_FIELD_TYPES.get(field.type, {}))
    if not field.input:
        schema["readOnly"] = True
    if isinstance(field.default, str | int | float | bool):  # not a callable, not NOW
        schema["default"] = field.default
    return schema
