"""The CapabilityStatement at ``GET [base]/metadata`` (https://hl7.org/fhir/R4/http.html#capabilities).

It states exactly what this server does: every R4 resource type with the
interactions implemented, and exactly the search parameters search supports.
"""

from __future__ import annotations

from typing import Any

from cmio import __version__
from cmio.api.env import Env
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import json_response
from cmio.search.request import searchable

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


def capability_statement(env: Env, base_url: str) -> dict[str, Any]:
    """Build the CapabilityStatement for this server."""
    resources = []
    for rtype in sorted(env.model.resource_types):
        search = [
            {"name": spd.code, "definition": spd.url, "type": spd.type}
            for spd in searchable(env.model, rtype)
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
        if rtype == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        resources.append(entry)
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
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                    {"code": "search-system"},
                ],
            }
        ],
    }


def metadata(env: Env, request: FhirRequest) -> FhirResponse:
    """GET [base]/metadata."""
    return json_response(request, 200, capability_statement(env, request.base_url))
