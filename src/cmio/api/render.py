"""Response rendering: JSON, ``_pretty``, ``_summary``, ``_elements`` and version headers.

See https://hl7.org/fhir/R4/http.html#general and
https://hl7.org/fhir/R4/search.html#summary.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any

import orjson

from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.model import Model
from cmio.store.base import StoredResource

__all__ = [
    "FHIR_JSON",
    "bundle_response",
    "dumps",
    "json_response",
    "last_modified",
    "resource_response",
    "search_entry",
    "shape_resource",
    "version_headers",
]

FHIR_JSON = "application/fhir+json; charset=utf-8"
_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


def dumps(value: Any, pretty: bool = False) -> bytes:
    """Serialize JSON with orjson (indented when ``pretty``)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0)


def is_pretty(request: FhirRequest) -> bool:
    """Whether ``_pretty=true`` was asked for."""
    return request.param("_pretty") == "true"


def json_response(
    request: FhirRequest,
    status: int,
    value: Any,
    headers: list[tuple[str, str]] | None = None,
) -> FhirResponse:
    """A FHIR JSON response for a Python value."""
    out = [("content-type", FHIR_JSON)]
    if headers:
        out.extend(headers)
    return FhirResponse(status, dumps(value, is_pretty(request)), out)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def last_modified(instant: str) -> str:
    """HTTP-date (RFC 7231 section 7.1.1.1) for a FHIR instant such as ``2026-11-26T18:00:00.123Z``."""
    if len(instant) >= 20 and instant.endswith("Z") and instant[10] == "T":
        day = date.fromisoformat(instant[:10])  # C-parsed: a third of building it from ints
        return (
            f"{_DAYS[day.weekday()]}, {instant[8:10]} {_MONTHS[day.month - 1]} {instant[0:4]}"
            f" {instant[11:19]} GMT"
        )
    stamp = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return format_datetime(stamp.astimezone(UTC), usegmt=True)


def version_headers(
    stored: StoredResource, location: str | None = None, modified: str | None = None
) -> list[tuple[str, str]]:
    """``ETag``, ``Last-Modified`` and optionally ``Location`` for a stored version."""
    headers = [
        ("etag", f'W/"{stored.version}"'),
        ("last-modified", modified or last_modified(stored.last_updated)),
    ]
    if location:
        headers.append(("location", location))
    return headers


def shape_resource(model: Model, resource: dict[str, Any], request: FhirRequest) -> dict[str, Any]:
    """Apply ``_summary`` and ``_elements`` to a resource (returns a new dict when shaped)."""
    summary = request.param("_summary")
    elements = request.param("_elements")
    if summary in (None, "false") and not elements:
        return resource
    rtype = resource.get("resourceType", "")
    tdef = model.types.get(rtype)
    if tdef is None:
        return resource
    if summary == "text":
        keep = {"text", "id", "meta"} | {n for n, e in tdef.elements.items() if e.min > 0}
    elif summary == "data":
        keep = set(resource) - {"text"}
    elif summary == "true":
        keep = {n for n, e in tdef.elements.items() if e.is_summary}
    elif summary is None and elements:
        keep = {e.strip().split(".")[-1] for e in elements.split(",") if e.strip()}
        keep |= {n for n, e in tdef.elements.items() if e.min > 0}
    else:
        raise FhirError(
            400, "invalid", f"Unknown _summary value {summary!r}", expression="_summary"
        )
    shaped: dict[str, Any] = {}
    for key, value in resource.items():
        base = key[1:] if key.startswith("_") else key
        if base in _ALWAYS or base in keep or _choice_base(base, keep):
            shaped[key] = value
    meta = dict(shaped.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    shaped["meta"] = meta
    return shaped


def _choice_base(name: str, keep: set[str]) -> bool:
    # valueQuantity is kept when "value" (the choice element) is kept
    for i in range(1, len(name)):
        if name[i].isupper():
            return name[:i] in keep
    return False


def resource_response(
    model: Model,
    request: FhirRequest,
    stored: StoredResource,
    status: int = 200,
    location: str | None = None,
    modified: str | None = None,
) -> FhirResponse:
    """The response for one stored resource; the stored bytes go out untouched when possible."""
    headers = [("content-type", FHIR_JSON), *version_headers(stored, location, modified)]
    assert stored.data is not None
    if not request.query:
        return FhirResponse(status, stored.data, headers)
    pretty = is_pretty(request)
    shaping = request.param("_summary") is not None or request.param("_elements") is not None
    if not pretty and not shaping:
        return FhirResponse(status, stored.data, headers)
    resource = orjson.loads(stored.data)
    if shaping:
        resource = shape_resource(model, resource, request)
    return FhirResponse(status, dumps(resource, pretty), headers)


def search_entry(request: FhirRequest, model: Model, stored: StoredResource, mode: str) -> bytes:
    """One ``searchset`` entry as JSON bytes, splicing the stored resource bytes in unparsed
    unless ``_summary``/``_elements`` ask for a shaped copy."""
    assert stored.data is not None
    data = stored.data
    if request.param("_summary") is not None or request.param("_elements") is not None:
        data = dumps(shape_resource(model, orjson.loads(data), request))
    full_url = dumps(f"{request.base_url}/{stored.type}/{stored.id}")
    return (
        b'{"fullUrl":'
        + full_url
        + b',"resource":'
        + data
        + b',"search":{"mode":"'
        + mode.encode()
        + b'"}}'
    )


def bundle_response(
    request: FhirRequest, head: dict[str, Any], entries: list[bytes], status: int = 200
) -> FhirResponse:
    """A Bundle response from its header fields and pre-serialized entries (no re-parsing)."""
    body = dumps(head)
    if entries:
        body = body[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
    if is_pretty(request):
        body = dumps(orjson.loads(body), True)
    return FhirResponse(status, body, [("content-type", FHIR_JSON)])
