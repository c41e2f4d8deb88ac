"""An OpenAPI 3.0 description of the FHIR REST API, built from the CapabilityStatement.

``GET [base]/openapi.json`` (https://spec.openapis.org/oas/v3.0.3). Every resource type
of the CapabilityStatement gets its RESTful interactions
(https://hl7.org/fhir/R4/http.html): search (GET and POST ``_search``), create, read,
vread, update, patch, delete, history (instance and type), the compartment search of
Patient, ``Patient/{id}/$everything``, and the named operations, plus the system
interactions (batch/transaction, system search and history, ``metadata``). Each search
parameter is listed with its FHIR type (``x-fhir-type``: string, token, reference,
date, number, quantity, uri, composite, special) next to the common ones (``_count``,
``_sort``, ``_include`` ...). Resource bodies are described from the R4 model (the
top-level elements and their JSON types). When authentication is on, every path
but ``metadata`` needs a bearer token (SMART on FHIR).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cmio import __version__
from cmio.model import Model
from cmio.model.types import (
    K_BOOLEAN,
    K_DECIMAL,
    K_INTEGER,
    K_POSITIVE_INT,
    K_SHADOW,
    K_UNSIGNED_INT,
)

__all__ = ["FHIR_JSON", "openapi_document"]

FHIR_JSON = "application/fhir+json"
_ID = {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"}
_OUTCOME = {"$ref": "#/components/schemas/OperationOutcome"}
_BUNDLE = {"$ref": "#/components/schemas/Bundle"}
_COMMON_SEARCH: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("_count", {"type": "integer", "minimum": 0}, "Page size"),
    ("_sort", {"type": "string"}, "Sort order: comma-separated parameters, - for descending"),
    ("_include", {"type": "string"}, "Type:param[:target] to include"),
    ("_revinclude", {"type": "string"}, "Type:param[:target] to include in reverse"),
    (
        "_summary",
        {"type": "string", "enum": ["true", "false", "text", "data", "count"]},
        "Summary form",
    ),
    ("_elements", {"type": "string"}, "Comma-separated element names"),
    ("_total", {"type": "string", "enum": ["none", "estimate", "accurate"]}, "Total mode"),
    ("_format", {"type": "string"}, "Response format (json)"),
)


def _json_type(kind: int, type_code: str) -> dict[str, Any]:
    if kind == K_BOOLEAN:
        return {"type": "boolean"}
    if kind in (K_INTEGER, K_POSITIVE_INT, K_UNSIGNED_INT):
        return {"type": "integer"}
    if kind == K_DECIMAL:
        return {"type": "number"}
    if type_code and type_code[0].isupper():
        return {"type": "object"}
    return {"type": "string"}


def resource_schema(model: Model, rtype: str) -> dict[str, Any]:
    """The JSON schema of a resource type's top-level elements (from the R4 model)."""
    properties: dict[str, Any] = {"resourceType": {"type": "string", "enum": [rtype]}}
    for name, prop in model.types[rtype].json_index.items():
        if prop.kind == K_SHADOW:
            continue
        item = _json_type(prop.kind, prop.type_code)
        item["description"] = f"{prop.element.path} ({prop.type_code})"
        properties[name] = {"type": "array", "items": item} if prop.repeats else item
    properties["id"] = dict(_ID)
    return {"type": "object", "required": ["resourceType"], "properties": properties}


def _param(
    name: str, where: str, schema: dict[str, Any], text: str, **extra: Any
) -> dict[str, Any]:
    return {"name": name, "in": where, "schema": schema, "description": text, **extra}


def _responses(ok: str, body: dict[str, Any] | None) -> dict[str, Any]:
    success: dict[str, Any] = {"description": ok}
    if body is not None:
        success["content"] = {FHIR_JSON: {"schema": body}}
    error = {"description": "OperationOutcome", "content": {FHIR_JSON: {"schema": _OUTCOME}}}
    return {ok.split()[0]: success, "4XX": error}


def _resource_body(rtype: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{rtype}"}
    return {"required": True, "content": {FHIR_JSON: {"schema": ref}}}


def _search_parameters(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    params = [_param(n, "query", s, t) for n, s, t in _COMMON_SEARCH]
    for sp in entry.get("searchParam", ()):
        text = f"{sp['type']} search parameter ({sp.get('definition', '')})"
        params.append(
            _param(sp["name"], "query", {"type": "string"}, text, **{"x-fhir-type": sp["type"]})
        )
    return params


def _type_paths(entry: Mapping[str, Any], interactions: set[str]) -> dict[str, Any]:
    rtype = entry["type"]
    ref = {"$ref": f"#/components/schemas/{rtype}"}
    rid = _param("id", "path", dict(_ID), "Logical id", required=True)
    tag = [rtype]
    paths: dict[str, Any] = {}
    collection: dict[str, Any] = {}
    if "search-type" in interactions:
        collection["get"] = {
            "operationId": f"search{rtype}",
            "summary": f"Search {rtype}",
            "tags": tag,
            "parameters": _search_parameters(entry),
            "responses": _responses("200 searchset Bundle", _BUNDLE),
        }
        paths[f"/{rtype}/_search"] = {
            "post": {
                "operationId": f"searchPost{rtype}",
                "summary": f"Search {rtype} (form body)",
                "tags": tag,
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                        }
                    }
                },
                "responses": _responses("200 searchset Bundle", _BUNDLE),
            }
        }
    if "create" in interactions:
        collection["post"] = {
            "operationId": f"create{rtype}",
            "summary": f"Create a {rtype}",
            "tags": tag,
            "requestBody": _resource_body(rtype),
            "responses": _responses("201 created", ref),
        }
    if collection:
        paths[f"/{rtype}"] = collection
    instance: dict[str, Any] = {}
    if "read" in interactions:
        instance["get"] = {
            "operationId": f"read{rtype}",
            "tags": tag,
            "parameters": [rid],
            "responses": _responses("200 the resource", ref),
        }
    if "update" in interactions:
        instance["put"] = {
            "operationId": f"update{rtype}",
            "tags": tag,
            "parameters": [rid],
            "requestBody": _resource_body(rtype),
            "responses": _responses("200 updated", ref),
        }
    if "patch" in interactions:
        patch_schema = {"type": "array", "items": {"type": "object"}}
        instance["patch"] = {
            "operationId": f"patch{rtype}",
            "tags": tag,
            "parameters": [rid],
            "requestBody": {"content": {"application/json-patch+json": {"schema": patch_schema}}},
            "responses": _responses("200 patched", ref),
        }
    if "delete" in interactions:
        instance["delete"] = {
            "operationId": f"delete{rtype}",
            "tags": tag,
            "parameters": [rid],
            "responses": _responses("204 deleted", None),
        }
    if instance:
        paths[f"/{rtype}/{{id}}"] = instance
    if "history-instance" in interactions:
        paths[f"/{rtype}/{{id}}/_history"] = {
            "get": {
                "operationId": f"history{rtype}",
                "tags": tag,
                "parameters": [rid, _param("_count", "query", {"type": "integer"}, "Page size")],
                "responses": _responses("200 history Bundle", _BUNDLE),
            }
        }
    if "vread" in interactions:
        vid = _param("vid", "path", {"type": "string"}, "Version id", required=True)
        paths[f"/{rtype}/{{id}}/_history/{{vid}}"] = {
            "get": {
                "operationId": f"vread{rtype}",
                "tags": tag,
                "parameters": [rid, vid],
                "responses": _responses("200 the version", ref),
            }
        }
    if "history-type" in interactions:
        paths[f"/{rtype}/_history"] = {
            "get": {
                "operationId": f"historyType{rtype}",
                "tags": tag,
                "parameters": [_param("_since", "query", {"type": "string"}, "Changes since")],
                "responses": _responses("200 history Bundle", _BUNDLE),
            }
        }
    for op in entry.get("operation", ()):
        name = op["name"]
        if name == "everything" and rtype == "Patient":
            paths["/Patient/{id}/$everything"] = {
                "get": {
                    "operationId": "everythingPatient",
                    "tags": tag,
                    "parameters": [rid],
                    "responses": _responses("200 searchset Bundle", _BUNDLE),
                }
            }
        else:
            paths[f"/{rtype}/${name}"] = {
                "post": {
                    "operationId": f"{name.replace('-', '_')}{rtype}",
                    "summary": f"${name} ({op.get('definition', '')})",
                    "tags": tag,
                    "requestBody": {
                        "content": {
                            FHIR_JSON: {"schema": {"$ref": "#/components/schemas/Parameters"}}
                        }
                    },
                    "responses": _responses("200 result", {"type": "object"}),
                }
            }
    return paths


def _system_paths(rest: Mapping[str, Any]) -> dict[str, Any]:
    bundle_body = {"required": True, "content": {FHIR_JSON: {"schema": _BUNDLE}}}
    paths: dict[str, Any] = {
        "/metadata": {
            "get": {
                "operationId": "capabilities",
                "security": [],
                "responses": _responses("200 CapabilityStatement", {"type": "object"}),
            }
        },
        "/": {
            "post": {
                "operationId": "batchOrTransaction",
                "requestBody": bundle_body,
                "responses": _responses("200 batch-response or transaction-response", _BUNDLE),
            }
        },
        "/_history": {
            "get": {
                "operationId": "historySystem",
                "parameters": [_param("_count", "query", {"type": "integer"}, "Page size")],
                "responses": _responses("200 history Bundle", _BUNDLE),
            }
        },
    }
    for op in rest.get("operation", ()):
        paths[f"/${op['name']}"] = {
            "get": {
                "operationId": f"{op['name'].replace('-', '_')}System",
                "summary": f"${op['name']} ({op.get('definition', '')})",
                "responses": _responses("200 result", {"type": "object"}),
            }
        }
    return paths


def openapi_document(capability: Mapping[str, Any], model: Model, base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the server described by ``capability``.

    Args:
        capability: this server's CapabilityStatement
            (https://hl7.org/fhir/R4/capabilitystatement.html).
        model: the R4 model (resource schemas).
        base_url: the FHIR base URL (the server entry).

    Returns:
        The document as JSON-ready dicts.
    """
    rest = capability["rest"][0]
    paths = _system_paths(rest)
    schemas: dict[str, Any] = {}
    for entry in rest["resource"]:
        interactions = {i["code"] for i in entry.get("interaction", ())}
        paths.update(_type_paths(entry, interactions))
        schemas[entry["type"]] = resource_schema(model, entry["type"])
    for name in ("Bundle", "OperationOutcome", "Parameters"):
        schemas.setdefault(name, resource_schema(model, name))
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "cmio FHIR R4 API",
            "version": __version__,
            "description": "Generated from the CapabilityStatement (GET /metadata), FHIR "
            + str(capability.get("fhirVersion", "4.0.1")),
        },
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if "security" in rest:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
        document["security"] = [{"bearer": []}]
    return document
