"""Shared response for create, update, patch (https://hl7.org/fhir/R4/http.html#ops).

Honours ``Prefer: return=minimal | representation | OperationOutcome``.
"""

from __future__ import annotations

from cmio.api.env import Env
from cmio.api.errors import OutcomeIssue, operation_outcome
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import json_response, resource_response, version_headers
from cmio.store.base import StoredResource

__all__ = ["location_of", "prefer_return", "write_response"]


def prefer_return(request: FhirRequest) -> str:
    """The ``return`` preference: ``minimal``, ``representation`` or ``OperationOutcome``."""
    prefer = request.header("prefer") or ""
    for part in prefer.split(","):
        for token in part.split(";"):
            key, _, value = token.strip().partition("=")
            if key == "return" and value in ("minimal", "representation", "OperationOutcome"):
                return value
    return "representation"


def location_of(request: FhirRequest, stored: StoredResource) -> str:
    """The versioned Location URL of a stored version."""
    return f"{request.base_url}/{stored.type}/{stored.id}/_history/{stored.version}"


def write_response(
    env: Env, request: FhirRequest, stored: StoredResource, status: int, message: str
) -> FhirResponse:
    """Respond to a successful write according to the client's preference."""
    location = location_of(request, stored)
    mode = prefer_return(request)
    if mode == "minimal":
        return FhirResponse(status, b"", version_headers(stored, location))
    if mode == "OperationOutcome":
        outcome = operation_outcome([OutcomeIssue("information", "informational", message)])
        return json_response(request, status, outcome, version_headers(stored, location))
    return resource_response(env.model, request, stored, status, location)
