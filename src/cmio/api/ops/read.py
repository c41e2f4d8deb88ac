"""Read and vread (https://hl7.org/fhir/R4/http.html#read)."""

from __future__ import annotations

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import check_id, check_type
from cmio.api.render import last_modified, resource_response

__all__ = ["read", "vread"]


def _not_modified(request: FhirRequest, etag: str, modified: str) -> bool:
    if_none_match = request.header("if-none-match")
    if if_none_match is not None:
        return if_none_match.strip() == etag
    since = request.header("if-modified-since")
    return since is not None and since.strip() == modified


def read(env: Env, request: FhirRequest, rtype: str, rid: str) -> FhirResponse:
    """GET [base]/[type]/[id]; 404 if unknown, 410 if deleted."""
    check_type(env, rtype)
    check_id(rid)
    stored = env.repository.read(rtype, rid)
    modified = last_modified(stored.last_updated)
    etag = f'W/"{stored.version}"'
    if _not_modified(request, etag, modified):
        return FhirResponse(304, b"", [("etag", etag)])
    return resource_response(env.model, request, stored, modified=modified)


def vread(env: Env, request: FhirRequest, rtype: str, rid: str, vid: str) -> FhirResponse:
    """GET [base]/[type]/[id]/_history/[vid]."""
    check_type(env, rtype)
    check_id(rid)
    if not vid.isdigit():
        raise FhirError(404, "not-found", f"Unknown version {vid[:40]!r}")
    stored = env.repository.vread(rtype, rid, int(vid))
    return resource_response(env.model, request, stored)
