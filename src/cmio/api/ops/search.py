"""Search interaction (https://hl7.org/fhir/R4/search.html).

Parses the request into a :class:`~cmio.store.base.SearchQuery` (each key is
resolved against the model by :func:`cmio.search.resolve`, so unknown or
malformed parameters answer 400 unless ``Prefer: handling=lenient``), runs it,
adds ``_include``/``_revinclude`` resources and renders the ``searchset``
Bundle by splicing the stored bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from cmio.api import authorize
from cmio.api.env import Env
from cmio.api.errors import FhirError, OutcomeIssue, operation_outcome
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import FHIR_JSON, bundle_response, dumps, is_pretty, search_entry
from cmio.model import Model
from cmio.search.compiler import parse_sort
from cmio.search.includes import Include, included, parse_include
from cmio.search.request import RESULT_PARAMS, UnknownParameterError, resolve
from cmio.store import format_instant
from cmio.store.base import SearchClause, SearchPage, SearchQuery, StoredResource

if TYPE_CHECKING:
    from cmio.security.policy import Policy

__all__ = [
    "TOTAL_POLICY",
    "parse_search",
    "search",
    "search_params_from_string",
    "searchset_body",
    "splice_entries",
    "split_values",
]

#: how ``Bundle.total`` is chosen (https://hl7.org/fhir/R4/search.html#total), stated in the
#: CapabilityStatement's ``rest.documentation``
TOTAL_POLICY = (
    "Search `Bundle.total` (https://hl7.org/fhir/R4/search.html#total): `_total=accurate` always"
    " counts the matches; `_total=estimate` counts up to 10,000; `_total=none` gives no total."
    " Without `_total` the server gives the exact total when it is known without counting"
    " (a page that is not full holds the last matches, and `_count=0` or `_summary=count` ask"
    " for the count alone) and leaves it out otherwise: a full page then has a `next` link."
)
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def search_params_from_string(query: str) -> list[tuple[str, str]]:
    """Split a query string such as ``identifier=a|b&_count=1`` (used by conditional ops)."""
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


def split_values(value: str) -> tuple[str, ...]:
    """OR-ed values: split on commas not escaped as ``\\,`` (search.html#escaping)."""
    if "\\" not in value:  # nothing escaped: a plain split
        return tuple(v for v in value.split(",") if v != "")
    out: list[str] = []
    buf: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] == ",":
            buf.append(",")
            i += 2
            continue
        if ch == ",":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    out.append("".join(buf))
    return tuple(v for v in out if v != "")


def searchset_body(
    base_url: str,
    head: dict[str, Any],
    matches: Sequence[StoredResource],
    included: Sequence[StoredResource] = (),
    extra: Sequence[bytes] = (),
) -> bytes:
    """A ``searchset`` Bundle's JSON: ``head``'s fields, then an entry per resource with
    its stored bytes spliced in unparsed (https://hl7.org/fhir/R4/bundle.html#searchset).

    The same bytes as :func:`cmio.api.render.bundle_response` over
    :func:`cmio.api.render.search_entry` without ``_summary``/``_elements``, built in one
    join: ``matches`` (mode ``match``), ``included`` (``include``), then ``extra``
    entries already serialized.
    """
    return splice_entries(dumps(head), base_url, _rows(matches), _rows(included), extra)


def splice_entries(
    head: bytes,
    base_url: str,
    matches: Sequence[tuple[str, str, bytes]],
    included: Sequence[tuple[str, str, bytes]] = (),
    extra: Sequence[bytes] = (),
) -> bytes:
    """:func:`searchset_body` over ``(type, id, stored JSON)`` rows and a serialized
    ``head`` (``$everything`` reads its page as rows: one join, no object per member)."""
    if not matches and not included and not extra:
        return head
    start = dumps(base_url + "/")[:-1]  # the escaped base, quote opened
    prefix = b'{"fullUrl":' + start
    parts: list[bytes] = [head[:-1], b',"entry":[']
    for mode, rows in ((b"match", matches), (b"include", included)):
        tail = b',"search":{"mode":"' + mode + b'"}},'
        for rtype, rid, data in rows:
            # types and ids are [A-Za-z0-9.-]: nothing in them to escape
            parts += (prefix, f'{rtype}/{rid}","resource":'.encode(), data, tail)
    for entry in extra:
        parts += (entry, b",")
    parts[-1] = parts[-1][:-1]
    parts.append(b"]}")
    return b"".join(parts)


def _rows(items: Sequence[StoredResource]) -> list[tuple[str, str, bytes]]:
    rows = []
    for stored in items:
        assert stored.data is not None
        rows.append((stored.type, stored.id, stored.data))
    return rows


def _model(env: Env) -> Model:
    """The model searches resolve against: the indexer's, which includes the custom
    SearchParameters a ``$reindex`` applied (:mod:`cmio.bulk.reindex`)."""
    model = getattr(env.repository.indexer, "model", None)
    return model if isinstance(model, Model) else env.model


def _int_param(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise FhirError(400, "invalid", f"{name} must be an integer", expression=name) from None
    if number < low:
        raise FhirError(400, "invalid", f"{name} must be >= {low}", expression=name)
    return min(number, high)


def parse_search(
    env: Env,
    rtype: str | None,
    query: list[tuple[str, str]],
    lenient: bool = False,
    includes: list[Include] | None = None,
) -> tuple[SearchQuery, list[OutcomeIssue]]:
    """Parse search parameters into a SearchQuery; unknown ones are errors unless lenient.

    ``_include``/``_revinclude`` are appended to ``includes`` when given.
    """
    clauses: list[SearchClause] = []
    warnings: list[OutcomeIssue] = []
    count = env.settings.default_count
    offset = 0
    sort: tuple[str, ...] = ()
    total = True
    estimate = False
    snapshot: str | None = None
    after: tuple[str, str, str] | None = None

    def refuse(message: str, expression: str) -> None:
        if lenient:
            warnings.append(OutcomeIssue("warning", "not-supported", f"{message}; ignored"))
            return
        raise FhirError(400, "not-supported", message, expression=expression)

    for key, value in query:
        name = key.partition(":")[0]
        if name in RESULT_PARAMS:
            if name == "_count":
                count = _int_param("_count", value, 0, env.settings.max_count)
            elif name == "_offset":
                offset = _int_param("_offset", value, 0, 10**9)
            elif name == "_sort":
                keys = tuple(s.strip() for s in value.split(",") if s.strip())
                try:
                    parse_sort(_model(env), rtype, keys)
                    sort = keys
                except UnknownParameterError as exc:
                    refuse(str(exc), "_sort")
            elif name == "_total":
                if value not in ("none", "estimate", "accurate"):
                    raise FhirError(400, "invalid", "_total must be none, estimate or accurate")
                total = value != "none"
                estimate = value == "estimate"
            elif name == "_snapshot":  # paging links: the first page's instant
                if not _INSTANT.fullmatch(value):
                    raise FhirError(400, "invalid", "Malformed _snapshot", expression="_snapshot")
                snapshot = value
            elif name == "_after":  # paging links: the last entry of the previous page
                parts = value.split("|")
                if len(parts) != 3 or not _INSTANT.fullmatch(parts[0]) or not all(parts[1:]):
                    raise FhirError(400, "invalid", "Malformed _after", expression="_after")
                after = (parts[0], parts[1], parts[2])
            elif name in ("_include", "_revinclude"):
                try:
                    found = parse_include(_model(env), rtype, key, value)
                except UnknownParameterError as exc:
                    refuse(str(exc), key)
                    continue
                if includes is not None:
                    includes.append(found)
            continue
        values = split_values(value)
        if not values:
            raise FhirError(
                400, "invalid", f"Search parameter {key!r} has no value", expression=key
            )
        try:
            resolve(_model(env), rtype, key, values)
        except UnknownParameterError as exc:
            refuse(str(exc), key)
            continue
        clauses.append(SearchClause(key, values))
    if after is not None:
        offset = 0
    parsed = SearchQuery(
        rtype, tuple(clauses), count, offset, sort, total, estimate, snapshot, after
    )
    return parsed, warnings


def _page_url(
    request: FhirRequest,
    path: str,
    offset: int,
    snapshot: str | None = None,
    after: StoredResource | None = None,
) -> str:
    """A paging link: the same search at ``offset``, or after the entry ``after`` (keyset),
    bound to the first page's ``snapshot`` so that later writes do not shift pages."""
    params = [(k, v) for k, v in request.query if k not in ("_offset", "_snapshot", "_after")]
    if snapshot is not None:
        params.append(("_snapshot", snapshot))
    if after is not None:
        params.append(("_after", f"{after.last_updated}|{after.type}|{after.id}"))
    elif offset:
        params.append(("_offset", str(offset)))
    return f"{request.base_url}/{path}?{urlencode(params)}"


def search(
    env: Env,
    request: FhirRequest,
    rtype: str | None,
    path: str,
    compartment: tuple[str, str] | None = None,
    policy: Policy | None = None,
) -> FhirResponse:
    """Run a search and answer a ``searchset`` Bundle.

    ``compartment`` (e.g. ``("Encounter", id)``) restricts the search to a compartment
    (https://hl7.org/fhir/R4/compartmentdefinition.html#search). ``policy``: the
    caller's authorization (:mod:`cmio.api.authorize`), ANDed into the search.
    """
    query_params = list(request.query)
    if request.method == "POST":
        ctype = (request.header("content-type") or "").split(";")[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            raise FhirError(
                415, "not-supported", "POST _search needs application/x-www-form-urlencoded"
            )
        query_params += search_params_from_string(request.body.decode("utf-8", "replace"))
    lenient = "handling=lenient" in (request.header("prefer") or "")
    includes: list[Include] = []
    query, warnings = parse_search(env, rtype, query_params, lenient, includes)
    # no ``_total``: no count statement; the store gives the total when it is known
    # without one (TOTAL_POLICY)
    implicit = query.count > 0 and not any(k.startswith("_total") for k, _ in query_params)
    if implicit:
        query = replace(query, total=False)
    if query.snapshot is None:  # this search's instant, carried by its paging links
        query = replace(query, snapshot=format_instant(datetime.now(UTC)))
    if compartment is not None:
        if compartment[0] not in env.model.compartments:
            raise FhirError(
                400,
                "not-supported",
                f"{compartment[0]} is not a compartment (Patient, Encounter,"
                " RelatedPerson, Practitioner, Device)",
            )
        member = SearchClause("_compartment", (f"{compartment[0]}|{compartment[1]}",))
        query = replace(query, clauses=(member, *query.clauses))
    summary_count = dict(query_params).get("_summary") == "count"
    if summary_count:
        query = replace(query, count=0, offset=0, sort=(), total=True, after=None)
    query = authorize.restrict_search(policy, query)
    with env.repository.read_transaction() as tx:
        page = tx.search(query)
        extra = included(tx, env.model, page.resources, includes) if includes else []
    if not query.total and not implicit:  # ``_total=none``
        page = SearchPage(page.resources, None)
    page = authorize.visible_page(policy, page)
    extra = authorize.visible(policy, "read", extra)
    outcomes: list[bytes] = []
    if warnings:
        outcome = dumps(operation_outcome(warnings))
        outcomes.append(b'{"resource":' + outcome + b',"search":{"mode":"outcome"}}')
    snap = query.snapshot
    links = [{"relation": "self", "url": _page_url(request, path, query.offset, snap)}]
    if not summary_count:
        full = len(page.resources) >= query.count > 0
        more = full
        if page.total is not None and query.after is None and not query.estimate:
            more = query.offset + query.count < page.total
        if more:  # keyset paging in the default order, offsets otherwise
            last = page.resources[-1] if not query.sort and page.resources else None
            nxt = _page_url(request, path, query.offset + query.count, snap, last)
            links.append({"relation": "next", "url": nxt})
        if query.offset > 0:
            prev = max(0, query.offset - query.count)
            links.append({"relation": "previous", "url": _page_url(request, path, prev, snap)})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    if request.param("_summary") is None and request.param("_elements") is None:
        # the stored bytes spliced in unparsed, in one join
        body = searchset_body(request.base_url, bundle, page.resources, extra, outcomes)
        if is_pretty(request):
            body = dumps(orjson.loads(body), True)
        return FhirResponse(200, body, [("content-type", FHIR_JSON)])
    entries = [search_entry(request, env.model, stored, "match") for stored in page.resources]
    entries.extend(search_entry(request, env.model, stored, "include") for stored in extra)
    return bundle_response(request, bundle, entries + outcomes)
