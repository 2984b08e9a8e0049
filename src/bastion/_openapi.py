"""OpenAPI 3.1 documents built from what the apps declare, shared by both apps.

The identity (`bastion.identity.plugins.open_api`) and the agent server
(`bastion.server.openapi_doc`) each walk their own route declarations; what turns a
declaration into OpenAPI is here: pydantic models into JSON Schema under
`components/schemas` (with the wire aliases: `callbackURL`, not `callback_url`), a query
model into `in: query` parameters, a path template into `in: path` parameters, and the
shared answers (errors) into response objects. No route is described by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

__all__ = [
    "OPENAPI_VERSION",
    "Doc",
    "ModelSchemas",
    "camel_case",
    "path_parameters",
    "query_parameters",
    "status_text",
]

OPENAPI_VERSION = "3.1.1"  # what better-auth 1.7.25's open-api plugin says; JSON Schema 2020-12

_REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Doc:
    """What a route declares about itself beyond its path, methods and auth: its request
    (a body and a query as pydantic models), its success answer, and the error statuses its
    handler gives on its own (those the server gives every route are added for it)."""

    summary: str = ""
    tags: tuple[str, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    media_type: str = "application/json"
    errors: tuple[int, ...] = ()


class ModelSchemas:
    """The JSON Schemas of a set of models, generated together so that a model used in two
    places is one component and two models of the same name get distinct ones."""

    def __init__(self, models: Iterable[type[BaseModel]]) -> None:
        unique = list(dict.fromkeys(models))
        self.components: dict[str, Any] = {}
        self._refs: dict[type[BaseModel], dict[str, Any]] = {}
        if not unique:
            return
        keys, top = models_json_schema(
            [(model, "validation") for model in unique], by_alias=True, ref_template=_REF
        )
        self.components = dict(top.get("$defs", {}))
        for model in unique:
            self._refs[model] = keys[(model, "validation")]

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        """`{"$ref": "#/components/schemas/<Name>"}` of a model given at construction."""
        return dict(self._refs[model])

    def schema(self, model: type[BaseModel]) -> dict[str, Any]:
        """The model's own schema (a component), for reading its properties."""
        name = self._refs[model]["$ref"].rsplit("/", 1)[1]
        schema: dict[str, Any] = self.components[name]
        return schema


def query_parameters(schemas: ModelSchemas, model: type[BaseModel]) -> list[dict[str, Any]]:
    """One `in: query` parameter per field of `model`, by its wire name."""
    schema = schemas.schema(model)
    required = set(schema.get("required", ()))
    out: list[dict[str, Any]] = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "schema": prop}
        if name in required:
            parameter["required"] = True
        if "description" in prop:
            parameter["description"] = prop["description"]
        out.append(parameter)
    return out


def path_parameters(template: str, patterns: Mapping[str, str] | None = None) -> list[Any]:
    """One required `in: path` string parameter per `{name}` of the template; `patterns`
    gives a name the regular expression its values must match."""
    out: list[dict[str, Any]] = []
    for name in _PARAM.findall(template):
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if patterns and name in patterns:
            schema["pattern"] = patterns[name]
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def camel_case(name: str) -> str:
    """`sign_in_email` → `signInEmail`: better-auth's operation ids are its endpoint keys."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def status_text(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)
