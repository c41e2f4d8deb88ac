"""Resolution of conditional URLs (https://hl7.org/fhir/R4/http.html#cond-update)."""

from __future__ import annotations

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.ops.search import parse_search, search_params_from_string
from cmio.store.base import SearchQuery, StoredResource, Transaction

__all__ = ["match_conditional", "resolve_conditional_reference"]


def match_conditional(
    env: Env, tx: Transaction, rtype: str, query_string: str, limit: int = 2
) -> list[StoredResource]:
    """Resources of ``rtype`` matching a conditional query (up to ``limit``)."""
    params = search_params_from_string(query_string)
    if not params:
        raise FhirError(400, "invalid", "A conditional request needs search parameters")
    parsed, _ = parse_search(env, rtype, params)
    query = SearchQuery(rtype, parsed.clauses, count=limit, offset=0, total=False)
    return tx.search(query).resources


def resolve_conditional_reference(env: Env, tx: Transaction, reference: str) -> str:
    """Turn ``Type?params`` into ``Type/id``; 412 unless exactly one resource matches."""
    rtype, _, query_string = reference.partition("?")
    if not env.model.is_resource_type(rtype):
        raise FhirError(400, "invalid", f"Conditional reference to unknown type {rtype!r}")
    matches = match_conditional(env, tx, rtype, query_string)
    if len(matches) != 1:
        found = "no" if not matches else "several"
        raise FhirError(
            412,
            "not-found" if not matches else "multiple-matches",
            f"Conditional reference {reference!r} matched {found} resources; exactly one is required",
        )
    return f"{rtype}/{matches[0].id}"
