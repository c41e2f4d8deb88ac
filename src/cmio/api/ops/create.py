"""Create and conditional create (https://hl7.org/fhir/R4/http.html#create)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import check_type, parse_resource_body, validate_resource
from cmio.api.ops.conditional import match_conditional
from cmio.api.ops.write import prepared_of, write_response
from cmio.store.base import StoredResource, TableRows, Transaction

__all__ = ["CreateResult", "create", "do_create"]


@dataclass(frozen=True, slots=True)
class CreateResult:
    """The stored resource and whether it was newly created (False: If-None-Exist matched)."""

    stored: StoredResource
    created: bool


def do_create(
    env: Env,
    tx: Transaction,
    resource: dict[str, Any],
    *,
    if_none_exist: str | None = None,
    id: str | None = None,
    ahead: TableRows | None = None,
) -> CreateResult:
    """Create inside a transaction; a matching ``If-None-Exist`` returns the existing resource.

    ``ahead``: search-index rows computed before the transaction for ``resource`` with
    ``id`` (see :func:`cmio.api.ops.write.prepare_write`).
    """
    rtype = resource["resourceType"]
    if if_none_exist:
        matches = match_conditional(env, tx, rtype, if_none_exist)
        if len(matches) > 1:
            raise FhirError(412, "multiple-matches", "If-None-Exist matched more than one resource")
        if matches:
            return CreateResult(matches[0], False)
    return CreateResult(tx.create(resource, id=id, ahead=ahead), True)


def create(env: Env, request: FhirRequest, rtype: str) -> FhirResponse:
    """POST [base]/[type]."""
    check_type(env, rtype)
    prepared = prepared_of(request, rtype)
    if prepared is not None:  # parsed, validated and indexed before the write lock
        resource, id = prepared.resource, prepared.id
        ahead = prepared.ahead(resource, id)
    else:
        resource, id, ahead = parse_resource_body(env, request, rtype), None, None
        resource.pop("id", None)  # the server assigns the id on create
        validate_resource(env, resource)
    with env.repository.transaction() as tx:
        result = do_create(
            env, tx, resource, if_none_exist=request.header("if-none-exist"), id=id, ahead=ahead
        )
    status = 201 if result.created else 200
    message = "Created" if result.created else "A matching resource exists (If-None-Exist)"
    return write_response(env, request, result.stored, status, message)
