"""``Patient/[id]/$everything`` (https://hl7.org/fhir/R4/patient-operation-everything.html).

Returns the patient, every resource in the patient's compartment (per the
Patient CompartmentDefinition, from the write-time compartment index) and, as
``include`` entries, the resources they reference outside the compartment
(practitioners, organizations, locations, medications). Supports ``_since``,
``_type``, ``_count`` and paging.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import check_id
from cmio.api.references import walk_references
from cmio.api.render import json_response
from cmio.indexing.compartments import COMPARTMENT_PARAM
from cmio.store.base import GoneError, NotFoundError, SearchClause, SearchQuery, StoredResource

__all__ = ["everything"]

_ALLOWED = frozenset({"_since", "_type", "_count", "_offset", "_format", "_pretty", "start", "end"})


def everything(env: Env, request: FhirRequest, rid: str) -> FhirResponse:
    """GET [base]/Patient/[id]/$everything."""
    check_id(rid)
    for key, _ in request.query:
        if key not in _ALLOWED:
            raise FhirError(
                400, "not-supported", f"Unknown $everything parameter {key!r}", expression=key
            )
        if key in ("start", "end"):
            raise FhirError(
                400,
                "not-supported",
                "start/end (care date filtering) is not supported yet",
                expression=key,
            )
    count = env.settings.default_count
    if (raw := request.param("_count")) is not None:
        if not raw.isdigit() or int(raw) == 0:
            raise FhirError(
                400, "invalid", "_count must be a positive integer", expression="_count"
            )
        count = min(int(raw), env.settings.max_count)
    raw_offset = request.param("_offset") or "0"
    if not raw_offset.isdigit():
        raise FhirError(
            400, "invalid", "_offset must be a non-negative integer", expression="_offset"
        )
    offset = int(raw_offset)
    clauses = [SearchClause(COMPARTMENT_PARAM, (f"Patient|{rid}",))]
    if (types := request.param("_type")) is not None:
        wanted = tuple(t.strip() for t in types.split(",") if t.strip())
        unknown = [t for t in wanted if not env.model.is_resource_type(t)]
        if unknown:
            raise FhirError(
                400, "invalid", f"Unknown resource type {unknown[0]!r} in _type", expression="_type"
            )
        clauses.append(SearchClause("_type", wanted))
    if (since := request.param("_since")) is not None:
        clauses.append(SearchClause("_lastUpdated", (f"ge{since}",)))
    with env.repository.transaction() as tx:
        tx.read("Patient", rid)  # 404 / 410 for an unknown or deleted patient
        page = tx.search(SearchQuery(None, tuple(clauses), count, offset, ("_lastUpdated",), True))
        included = _referenced(tx, page.resources)
    entries: list[dict[str, Any]] = [_entry(request, s, "match") for s in page.resources]
    entries.extend(_entry(request, s, "include") for s in included)
    params = [(k, v) for k, v in request.query if k != "_offset"]
    path = f"Patient/{rid}/$everything"
    links = [
        {
            "relation": "self",
            "url": f"{request.base_url}/{path}?{urlencode([*params, ('_offset', str(offset))])}",
        }
    ]
    if page.total is not None and offset + count < page.total:
        links.append(
            {
                "relation": "next",
                "url": f"{request.base_url}/{path}?{urlencode([*params, ('_offset', str(offset + count))])}",
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return json_response(request, 200, bundle)


def _entry(request: FhirRequest, stored: StoredResource, mode: str) -> dict[str, Any]:
    assert stored.data is not None
    return {
        "fullUrl": f"{request.base_url}/{stored.type}/{stored.id}",
        "resource": orjson.loads(stored.data),
        "search": {"mode": mode},
    }


def _referenced(tx: Any, resources: list[StoredResource]) -> list[StoredResource]:
    members = {(s.type, s.id) for s in resources}
    wanted: list[tuple[str, str]] = []

    def visit(ref: str) -> None:
        parts = ref.split("/")
        if len(parts) == 2 and parts[0] in _OUTSIDE and (parts[0], parts[1]) not in members:
            key = (parts[0], parts[1])
            if key not in wanted:
                wanted.append(key)
        return None

    for stored in resources:
        assert stored.data is not None
        walk_references(orjson.loads(stored.data), visit)
    found: list[StoredResource] = []
    for rtype, rid in wanted:
        try:
            found.append(tx.read(rtype, rid))
        except (NotFoundError, GoneError):  # dangling or deleted targets are left out
            continue
    return found


_OUTSIDE = frozenset(
    {
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Location",
        "Medication",
        "Device",
        "Substance",
        "HealthcareService",
    }
)
