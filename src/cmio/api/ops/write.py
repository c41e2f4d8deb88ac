"""Shared parts of create, update, patch (https://hl7.org/fhir/R4/http.html#ops).

:func:`write_response` honours ``Prefer: return=minimal | representation |
OperationOutcome``. :func:`prepare_write` does a create's or update's CPU work
(parse, validate, search-index rows) before the request waits for the store's
write lock, so that work overlaps other writers' commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cmio.api.env import Env
from cmio.api.errors import FhirError, OutcomeIssue, operation_outcome
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import json_response, resource_response, version_headers
from cmio.store._common import new_id
from cmio.store.base import StoredResource, TableRows

__all__ = [
    "PreparedRequest",
    "PreparedWrite",
    "location_of",
    "prefer_return",
    "prepare_write",
    "prepared_of",
    "write_response",
]


@dataclass(slots=True)
class PreparedWrite:
    """A create/update body parsed and validated ahead of the write transaction.

    Attributes:
        rtype: the URL's resource type.
        resource: the parsed, validated resource (a create's has its new ``id``).
        id: the ``id`` the index rows were computed with.
        rows: ``SearchIndexer.table_rows`` of ``resource`` (None: no such indexer).
    """

    rtype: str
    resource: dict[str, Any]
    id: str | None
    rows: TableRows | None

    def ahead(self, resource: dict[str, Any], id: str | None) -> TableRows | None:
        """The rows, if ``resource`` is still the prepared one and is stored under ``id``."""
        if resource is not self.resource or id != self.id or resource.get("id") != self.id:
            return None
        return self.rows


@dataclass(slots=True)
class PreparedRequest(FhirRequest):
    """A request carrying its :class:`PreparedWrite` (None: nothing prepared)."""

    prepared: PreparedWrite | None = None


def prepared_of(request: FhirRequest, rtype: str) -> PreparedWrite | None:
    """The request's prepared write for ``rtype``, if any."""
    if isinstance(request, PreparedRequest):
        prepared = request.prepared
        if prepared is not None and prepared.rtype == rtype:
            request.prepared = None  # used once
            return prepared
    return None


def prepare_write(env: Env, request: FhirRequest) -> FhirRequest:
    """Parse, validate and index a create (``POST [type]``) or update (``PUT [type]/[id]``).

    Returns a :class:`PreparedRequest` carrying the work, or ``request`` itself when it
    is not such a write or its body is rejected (the handler then reports the error
    exactly as without preparation). Nothing is stored here. See
    https://hl7.org/fhir/R4/http.html#create and https://hl7.org/fhir/R4/http.html#update.
    """
    from cmio.api.ops.common import check_type, parse_resource_body, validate_resource

    parts = request.path.strip("/").split("/")
    if request.method == "POST" and len(parts) == 1:
        rid = None
    elif request.method == "PUT" and len(parts) == 2:
        rid = parts[1]
    else:
        return request
    rtype = parts[0]
    if not rtype or rtype.startswith(("$", "_")):
        return request
    try:
        check_type(env, rtype)
        resource = parse_resource_body(env, request, rtype)
        if rid is None:
            resource.pop("id", None)
        validate_resource(env, resource)
    except FhirError:
        return request
    if rid is None:
        resource["id"] = new_id()
    elif resource.get("id") != rid:
        return request
    from cmio.api.ops.reindex import sync_search_parameters

    sync_search_parameters(env)  # index with the custom SearchParameters now in effect
    indexer = env.repository.indexer
    table_rows = getattr(indexer, "table_rows", None)
    rows: TableRows | None = table_rows(resource) if table_rows is not None else None
    prepared = PreparedWrite(rtype, resource, resource["id"], rows)
    return PreparedRequest(
        request.method,
        request.path,
        request.query,
        request.headers,
        request.body,
        request.base_url,
        request.context,
        prepared,
    )


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
        from cmio.api.ops.rules_hook import rule_warnings

        issues = [OutcomeIssue("information", "informational", message), *rule_warnings(stored)]
        outcome = operation_outcome(issues)
        return json_response(request, status, outcome, version_headers(stored, location))
    return resource_response(env.model, request, stored, status, location)
