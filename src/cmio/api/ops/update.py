"""Update, update-as-create and conditional update (https://hl7.org/fhir/R4/http.html#update)."""

from __future__ import annotations

from typing import Any

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import (
    check_id,
    check_type,
    parse_etag,
    parse_resource_body,
    validate_resource,
)
from cmio.api.ops.conditional import match_conditional
from cmio.api.ops.write import prepared_of, write_response
from cmio.store.base import StoredResource, TableRows, Transaction

__all__ = ["do_conditional_update", "do_update", "update"]


def do_update(
    env: Env,
    tx: Transaction,
    resource: dict[str, Any],
    rid: str,
    *,
    if_match: int | None = None,
    method: str = "PUT",
    ahead: TableRows | None = None,
) -> tuple[StoredResource, bool]:
    """Update inside a transaction; the body's id must equal the URL id.

    ``ahead``: search-index rows computed before the transaction (see
    :func:`cmio.api.ops.write.prepare_write`).
    """
    body_id = resource.get("id")
    if body_id is None:
        raise FhirError(400, "required", "The resource must carry an id on update", expression="id")
    if body_id != rid:
        raise FhirError(
            400, "invalid", f"Body id {body_id!r} does not match URL id {rid!r}", expression="id"
        )
    return tx.update(resource, if_match=if_match, method=method, ahead=ahead)


def do_conditional_update(
    env: Env, tx: Transaction, resource: dict[str, Any], query: str, if_match: int | None = None
) -> tuple[StoredResource, bool]:
    """PUT [type]?[search]: no match creates, one match updates, several is 412."""
    rtype = resource["resourceType"]
    matches = match_conditional(env, tx, rtype, query)
    if len(matches) > 1:
        raise FhirError(
            412, "multiple-matches", "Conditional update matched more than one resource"
        )
    if not matches:
        body_id = resource.get("id")
        stored = tx.create(resource, id=body_id) if body_id else tx.create(resource)
        return stored, True
    target = matches[0].id
    if resource.get("id", target) != target:
        raise FhirError(
            400, "invalid", "Body id does not match the resource found", expression="id"
        )
    resource["id"] = target
    return tx.update(resource, if_match=if_match)


def update(env: Env, request: FhirRequest, rtype: str, rid: str | None) -> FhirResponse:
    """PUT [base]/[type]/[id] or PUT [base]/[type]?[search]."""
    check_type(env, rtype)
    prepared = prepared_of(request, rtype) if rid is not None else None
    resource = (
        prepared.resource if prepared is not None else parse_resource_body(env, request, rtype)
    )
    if_match = parse_etag(request.header("if-match"))
    if rid is not None:
        check_id(rid)
    if prepared is None:
        validate_resource(env, resource)
    ahead = prepared.ahead(resource, rid) if prepared is not None else None
    with env.repository.transaction() as tx:
        if rid is None:
            query = "&".join(f"{k}={v}" for k, v in request.query if not k.startswith("_"))
            stored, created = do_conditional_update(env, tx, resource, query, if_match)
        else:
            stored, created = do_update(env, tx, resource, rid, if_match=if_match, ahead=ahead)
    return write_response(
        env, request, stored, 201 if created else 200, "Created" if created else "Updated"
    )
