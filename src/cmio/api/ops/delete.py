"""Delete and conditional delete (https://hl7.org/fhir/R4/http.html#delete)."""

from __future__ import annotations

import orjson

from cmio.api.env import Env
from cmio.api.errors import FhirError, OutcomeIssue
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import check_id, check_type
from cmio.api.ops.conditional import match_conditional
from cmio.api.render import json_response
from cmio.store.base import StoredResource, Transaction

__all__ = ["delete", "do_conditional_delete", "do_delete"]

_MAX_CONDITIONAL_DELETE = 100


def do_delete(env: Env, tx: Transaction, rtype: str, rid: str) -> StoredResource | None:
    """Write a tombstone; None when there was nothing to delete."""
    _check_governed(tx, rtype, rid)
    return tx.delete(rtype, rid)


def _check_governed(tx: Transaction, rtype: str, rid: str) -> None:
    """A governed artifact that is or has been approved is retired, not deleted (409)."""
    from cmio.governance.lifecycle import GOVERNED_TYPES

    if rtype not in GOVERNED_TYPES:
        return
    current = tx.current(rtype, rid)
    if current is None or current.data is None:
        return
    from cmio.governance.guard import check_delete
    from cmio.governance.lifecycle import GovernanceError

    try:
        check_delete(orjson.loads(current.data))
    except GovernanceError as error:
        raise FhirError(error.status, error.code, str(error), expression=error.expression) from None


def do_conditional_delete(env: Env, tx: Transaction, rtype: str, query: str) -> int:
    """Delete every match (up to a bound); returns how many were deleted."""
    matches = match_conditional(env, tx, rtype, query, limit=_MAX_CONDITIONAL_DELETE + 1)
    if len(matches) > _MAX_CONDITIONAL_DELETE:
        raise FhirError(
            412,
            "too-costly",
            f"Conditional delete matched more than {_MAX_CONDITIONAL_DELETE} resources",
        )
    for match in matches:
        _check_governed(tx, rtype, match.id)
        tx.delete(rtype, match.id)
    return len(matches)


def delete(env: Env, request: FhirRequest, rtype: str, rid: str | None) -> FhirResponse:
    """DELETE [base]/[type]/[id] or DELETE [base]/[type]?[search]."""
    check_type(env, rtype)
    with env.repository.transaction() as tx:
        if rid is None:
            query = "&".join(f"{k}={v}" for k, v in request.query if not k.startswith("_"))
            count = do_conditional_delete(env, tx, rtype, query)
            message = f"Deleted {count} resource(s)"
            stored = None
        else:
            check_id(rid)
            stored = do_delete(env, tx, rtype, rid)
            message = "Deleted" if stored else "Nothing to delete"
    headers = [("etag", f'W/"{stored.version}"')] if stored else []
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [OutcomeIssue("information", "informational", message).to_json()],
    }
    return json_response(request, 200, outcome, headers)
