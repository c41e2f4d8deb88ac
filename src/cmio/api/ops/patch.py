"""PATCH with JSON Patch (https://hl7.org/fhir/R4/http.html#patch)."""

from __future__ import annotations

from typing import Any

import orjson

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.jsonpatch import JsonPatchError, apply_patch
from cmio.api.ops.common import check_id, check_type, parse_etag, parse_json_body, validate_resource
from cmio.api.ops.conditional import match_conditional
from cmio.api.ops.write import write_response
from cmio.store.base import StoredResource, Transaction

__all__ = ["do_patch", "patch"]


def do_patch(
    env: Env, tx: Transaction, rtype: str, rid: str, operations: Any, if_match: int | None = None
) -> StoredResource:
    """Read, patch, validate and store a new version inside one transaction."""
    current = tx.read(rtype, rid)
    if if_match is not None and if_match != current.version:
        raise FhirError(412, "conflict", f"Version {if_match} is not current ({current.version})")
    assert current.data is not None
    resource = orjson.loads(current.data)
    try:
        patched = apply_patch(resource, operations)
    except JsonPatchError as exc:
        raise FhirError(422, "processing", str(exc), expression=f"operation[{exc.index}]") from None
    if (
        not isinstance(patched, dict)
        or patched.get("resourceType") != rtype
        or patched.get("id") != rid
    ):
        raise FhirError(422, "processing", "A patch may not change resourceType or id")
    validate_resource(env, patched)
    stored, _ = tx.update(patched, if_match=current.version, method="PATCH")
    return stored


def patch(env: Env, request: FhirRequest, rtype: str, rid: str | None) -> FhirResponse:
    """PATCH [base]/[type]/[id] (or conditional) with ``application/json-patch+json``."""
    check_type(env, rtype)
    ctype = (request.header("content-type") or "").split(";")[0].strip()
    if ctype != "application/json-patch+json":
        raise FhirError(
            415,
            "not-supported",
            "PATCH needs application/json-patch+json (FHIRPath Patch is not supported)",
        )
    operations = parse_json_body(request)
    if_match = parse_etag(request.header("if-match"))
    with env.repository.transaction() as tx:
        if rid is None:
            query = "&".join(f"{k}={v}" for k, v in request.query if not k.startswith("_"))
            matches = match_conditional(env, tx, rtype, query)
            if len(matches) != 1:
                raise FhirError(
                    412 if matches else 404,
                    "not-found",
                    f"Conditional patch matched {len(matches)} resources",
                )
            rid = matches[0].id
        check_id(rid)
        stored = do_patch(env, tx, rtype, rid, operations, if_match)
    return write_response(env, request, stored, 200, "Patched")
