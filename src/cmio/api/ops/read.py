"""Read and vread (https://hl7.org/fhir/R4/http.html#read)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cmio.api import authorize
from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import check_id, check_type
from cmio.api.render import last_modified, resource_response

if TYPE_CHECKING:
    from cmio.security.policy import Policy

__all__ = ["read", "vread"]


def _not_modified(request: FhirRequest, etag: str, modified: str) -> bool:
    if_none_match = request.header("if-none-match")
    if if_none_match is not None:
        return if_none_match.strip() == etag
    since = request.header("if-modified-since")
    return since is not None and since.strip() == modified


def read(
    env: Env, request: FhirRequest, rtype: str, rid: str, policy: Policy | None = None
) -> FhirResponse:
    """GET [base]/[type]/[id]; 404 if unknown (or hidden from ``policy``), 410 if deleted."""
    check_type(env, rtype)
    check_id(rid)
    stored = authorize.read(env, policy, rtype, rid)
    modified = last_modified(stored.last_updated)
    etag = f'W/"{stored.version}"'
    if _not_modified(request, etag, modified):
        return FhirResponse(304, b"", [("etag", etag)])
    return resource_response(env.model, request, stored, modified=modified)


def vread(
    env: Env, request: FhirRequest, rtype: str, rid: str, vid: str, policy: Policy | None = None
) -> FhirResponse:
    """GET [base]/[type]/[id]/_history/[vid]."""
    check_type(env, rtype)
    check_id(rid)
    if not vid.isdigit():
        raise FhirError(404, "not-found", f"Unknown version {vid[:40]!r}")
    stored = authorize.vread(env, policy, rtype, rid, int(vid))
    return resource_response(env.model, request, stored)
