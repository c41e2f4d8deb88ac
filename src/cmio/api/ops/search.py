"""Search interaction (https://hl7.org/fhir/R4/search.html).

This module parses the request into a :class:`~cmio.store.base.SearchQuery`
and renders the ``searchset`` Bundle. The parameters supported now are
``_id``, ``_lastUpdated`` and ``identifier``, plus the result parameters
``_count``, ``_sort``, ``_total``, ``_summary`` and ``_elements``; anything
else is refused with 400 unless ``Prefer: handling=lenient``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from cmio.api.env import Env
from cmio.api.errors import FhirError, OutcomeIssue, operation_outcome
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import bundle_response, dumps, search_entry
from cmio.store.base import SearchClause, SearchQuery

__all__ = ["parse_search", "search", "search_params_from_string"]

_RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_total",
        "_summary",
        "_elements",
        "_format",
        "_pretty",
        "_offset",
        "_totalMethod",
    }
)
# _totalMethod is not R4; clients such as fhirpy send it with ``count()`` to ask for
# ``total``, which this server always computes unless ``_total=none``.
_SUPPORTED = frozenset({"_id", "_lastUpdated", "identifier"})
_SORTABLE = frozenset({"_id", "-_id", "_lastUpdated", "-_lastUpdated"})


def search_params_from_string(query: str) -> list[tuple[str, str]]:
    """Split a query string such as ``identifier=a|b&_count=1`` (used by conditional ops)."""
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


def _int_param(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise FhirError(400, "invalid", f"{name} must be an integer", expression=name) from None
    if number < low:
        raise FhirError(400, "invalid", f"{name} must be >= {low}", expression=name)
    return min(number, high)


def parse_search(
    env: Env, rtype: str | None, query: list[tuple[str, str]], lenient: bool = False
) -> tuple[SearchQuery, list[OutcomeIssue]]:
    """Parse search parameters into a SearchQuery; unknown ones are errors unless lenient."""
    clauses: list[SearchClause] = []
    warnings: list[OutcomeIssue] = []
    count = env.settings.default_count
    offset = 0
    sort: tuple[str, ...] = ()
    total = True
    known = env.model.search_params_for(rtype) if rtype else {}
    for key, value in query:
        name, _, modifier = key.partition(":")
        if name in _RESULT_PARAMS:
            if name == "_count":
                count = _int_param("_count", value, 0, env.settings.max_count)
            elif name == "_offset":
                offset = _int_param("_offset", value, 0, 10**9)
            elif name == "_sort":
                sort = tuple(s.strip() for s in value.split(",") if s.strip())
                bad = [s for s in sort if s not in _SORTABLE]
                if bad:
                    raise FhirError(
                        400, "not-supported", f"Cannot sort by {bad[0]!r} yet", expression="_sort"
                    )
            elif name == "_total":
                if value not in ("none", "estimate", "accurate"):
                    raise FhirError(400, "invalid", "_total must be none, estimate or accurate")
                total = value != "none"
            continue
        supported = name in _SUPPORTED and (name != "identifier" or "identifier" in known)
        if not supported or modifier:
            what = f"{name}:{modifier}" if modifier else name
            reason = (
                f"Search parameter {what!r} is not supported"
                if name in known or name.startswith("_")
                else f"Unknown search parameter {what!r} for {rtype or 'system search'}"
            )
            if lenient:
                warnings.append(OutcomeIssue("warning", "not-supported", f"{reason}; ignored"))
                continue
            raise FhirError(400, "not-supported", reason, expression=name)
        values = tuple(v for v in value.split(",") if v != "")
        if not values:
            raise FhirError(
                400, "invalid", f"Search parameter {name!r} has no value", expression=name
            )
        clauses.append(SearchClause(name, values))
    return SearchQuery(rtype, tuple(clauses), count, offset, sort, total), warnings


def _page_url(request: FhirRequest, path: str, offset: int) -> str:
    params = [(k, v) for k, v in request.query if k != "_offset"]
    params.append(("_offset", str(offset)))
    return f"{request.base_url}/{path}?{urlencode(params)}"


def search(env: Env, request: FhirRequest, rtype: str | None, path: str) -> FhirResponse:
    """Run a search and answer a ``searchset`` Bundle."""
    query_params = list(request.query)
    if request.method == "POST":
        ctype = (request.header("content-type") or "").split(";")[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            raise FhirError(
                415, "not-supported", "POST _search needs application/x-www-form-urlencoded"
            )
        query_params += search_params_from_string(request.body.decode("utf-8", "replace"))
    lenient = "handling=lenient" in (request.header("prefer") or "")
    query, warnings = parse_search(env, rtype, query_params, lenient)
    summary_count = dict(query_params).get("_summary") == "count"
    if summary_count:
        query = SearchQuery(query.type, query.clauses, 0, 0, (), True)
    page = env.repository.search(query)
    entries = [search_entry(request, env.model, stored, "match") for stored in page.resources]
    if warnings:
        outcome = dumps(operation_outcome(warnings))
        entries.append(b'{"resource":' + outcome + b',"search":{"mode":"outcome"}}')
    links = [{"relation": "self", "url": _page_url(request, path, query.offset)}]
    if not summary_count:
        more = page.total is not None and query.offset + query.count < page.total
        if page.total is None:
            more = len(page.resources) >= query.count > 0
        if more:
            links.append(
                {"relation": "next", "url": _page_url(request, path, query.offset + query.count)}
            )
        if query.offset > 0:
            prev = max(0, query.offset - query.count)
            links.append({"relation": "previous", "url": _page_url(request, path, prev)})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    return bundle_response(request, bundle, entries)
