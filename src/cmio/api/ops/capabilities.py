"""The CapabilityStatement at ``GET [base]/metadata`` (https://hl7.org/fhir/R4/http.html#capabilities).

It states exactly what this server does: every R4 resource type with the
interactions implemented, and only the search parameters search supports now.
"""

from __future__ import annotations

from typing import Any

from cmio import __version__
from cmio.api.env import Env
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import json_response

__all__ = ["SUPPORTED_SEARCH", "capability_statement", "metadata"]

SUPPORTED_SEARCH = ("_id", "_lastUpdated", "identifier")
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
        params = env.model.search_params_for(rtype)
        search = [
            {"name": name, "definition": params[name].url, "type": params[name].type}
            for name in SUPPORTED_SEARCH
            if name in params
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
                ],
            }
        ],
    }


def metadata(env: Env, request: FhirRequest) -> FhirResponse:
    """GET [base]/metadata."""
    return json_response(request, 200, capability_statement(env, request.base_url))
