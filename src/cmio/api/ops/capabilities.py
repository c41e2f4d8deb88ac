"""The CapabilityStatement at ``GET [base]/metadata`` (https://hl7.org/fhir/R4/http.html#capabilities).

It states exactly what this server does: every R4 resource type with the
interactions implemented, exactly the search parameters search supports
(custom SearchParameters applied by ``$reindex`` included), and the named
operations of the router's table at the level each one is invoked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cmio import __version__
from cmio.api.env import Env
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import json_response
from cmio.model import Model
from cmio.search.request import searchable

if TYPE_CHECKING:
    from cmio.api.operations import Operation

__all__ = ["capability_statement", "metadata"]
_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)


_CORE_OPERATION = "http://hl7.org/fhir/OperationDefinition/"
_OPERATION_DEFINITIONS = {
    "expand": "ValueSet-expand",
    "lookup": "CodeSystem-lookup",
    "subsumes": "CodeSystem-subsumes",
    "translate": "ConceptMap-translate",
    "everything": "Patient-everything",
}


def _definition(name: str, rtype: str | None) -> str:
    """The canonical of an operation's OperationDefinition (core ones where they exist)."""
    if name == "validate-code" and rtype is not None:
        return f"{_CORE_OPERATION}{rtype}-validate-code"
    if name in _OPERATION_DEFINITIONS:
        return _CORE_OPERATION + _OPERATION_DEFINITIONS[name]
    if name.startswith("viewdefinition-"):
        return f"https://sql-on-fhir.org/ig/OperationDefinition/{name}"
    return f"urn:cmio:OperationDefinition/{name}"


def _type_operations(operations: Mapping[str, Operation], rtype: str) -> list[dict[str, str]]:
    found = [{"name": "everything", "definition": _definition("everything", rtype)}]
    if rtype != "Patient":
        found = []
    for op in sorted(operations.values(), key=lambda o: o.name):
        if (op.type_level or op.instance) and (not op.types or rtype in op.types):
            found.append({"name": op.name, "definition": _definition(op.name, rtype)})
    return found


def capability_statement(
    env: Env, base_url: str, operations: Mapping[str, Operation] | None = None
) -> dict[str, Any]:
    """Build the CapabilityStatement for this server.

    Args:
        env: the server's services.
        base_url: the FHIR base URL.
        operations: the router's table of named operations (listed per resource type and
            at system level, https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.resource.operation).
    """
    operations = operations or {}
    indexer = env.repository.indexer
    model = getattr(indexer, "model", None)
    search_model: Model = model if isinstance(model, Model) else env.model
    resources = []
    for rtype in sorted(env.model.resource_types):
        search = [
            {"name": spd.code, "definition": spd.url, "type": spd.type}
            for spd in searchable(search_model, rtype)
        ]
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": code} for code in _INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "multiple",
            "referencePolicy": ["literal", "logical"],
            "searchParam": search,
        }
        type_operations = _type_operations(operations, rtype)
        if type_operations:
            entry["operation"] = type_operations
        resources.append(entry)
    system_operations = [
        {"name": op.name, "definition": _definition(op.name, None)}
        for op in sorted(operations.values(), key=lambda o: o.name)
        if op.system
    ]
    from cmio.api.ops.search import TOTAL_POLICY

    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": TOTAL_POLICY,
        "resource": resources,
        "interaction": [
            {"code": "transaction"},
            {"code": "batch"},
            {"code": "history-system"},
            {"code": "search-system"},
        ],
        "operation": system_operations,
    }
    auth = env.settings.auth
    if auth is not None:  # SMART on FHIR (https://hl7.org/fhir/smart-app-launch/conformance.html)
        from cmio.security.oauth.conformance import rest_security

        origin = auth.issuer.rstrip("/") if auth.issuer else base_url.removesuffix("/fhir")
        rest["security"] = rest_security(origin)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "publisher": "cmio",
        "kind": "instance",
        "software": {"name": "cmio", "version": __version__},
        "implementation": {"description": "cmio FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [rest],
    }


def metadata(
    env: Env, request: FhirRequest, operations: Mapping[str, Operation] | None = None
) -> FhirResponse:
    """GET [base]/metadata."""
    return json_response(request, 200, capability_statement(env, request.base_url, operations))
