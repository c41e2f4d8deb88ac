"""Batch and transaction Bundles (https://hl7.org/fhir/R4/http.html#transaction).

A transaction runs in one store transaction: every entry succeeds or nothing
is stored. Entries are processed in the order the spec sets (DELETE, POST,
PUT/PATCH, then GET after commit); ``urn:uuid:`` and other fullUrl references
are rewritten to the assigned ids and conditional references resolved. A batch
runs each entry as an independent sub-request through the router.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from cmio.api import authorize
from cmio.api.env import ID_RE, Env
from cmio.api.errors import FhirError, OutcomeIssue
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import parse_json_body, validate_resource
from cmio.api.ops.conditional import match_conditional, resolve_conditional_reference
from cmio.api.ops.create import do_create
from cmio.api.ops.delete import do_conditional_delete, do_delete
from cmio.api.ops.patch import do_patch
from cmio.api.ops.update import do_update
from cmio.api.ops.write import PreparedRequest, prefer_return
from cmio.api.references import rewrite_references
from cmio.api.render import json_response
from cmio.store._common import new_id
from cmio.store.base import StoredResource, TableRows, Transaction

if TYPE_CHECKING:
    from cmio.security.policy import Policy

__all__ = [
    "EntryAhead",
    "PreparedTransaction",
    "bundle",
    "kept_urn_id",
    "process_transaction",
    "unresolved_urn",
]

Dispatch = Callable[[FhirRequest], FhirResponse]
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
EntryAhead = tuple[dict[str, Any], TableRows | None, str | None, dict[str, Any] | None]
"""An entry's work done before the transaction (by its fullUrl, the HL7 engine's worker): the
resource as it will be written, its ``SearchIndexer.table_rows``, the id drawn for a POST, and
the resource as the entry carries it (before the reference rewrite) when its structural
validation found no error and the written one keeps no ``urn:`` reference (else None)."""


@dataclass(slots=True)
class PreparedTransaction(PreparedRequest):
    """A transaction request carrying its entries' work done ahead (:data:`EntryAhead` by
    fullUrl), as :class:`~cmio.api.ops.write.PreparedRequest` carries a single write's."""

    entry_ahead: Mapping[str, EntryAhead] | None = None


@dataclass(slots=True)
class _Entry:
    index: int
    method: str
    url: str
    rtype: str
    rid: str | None
    query: str
    resource: Any
    full_url: str | None
    if_match: str | None
    if_none_exist: str | None
    response: dict[str, Any] = field(default_factory=dict)


def _parse_url(url: str, base: str, where: str) -> tuple[str, str | None, str]:
    if url.startswith(base + "/"):
        url = url[len(base) + 1 :]
    path, _, query = url.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise FhirError(
            400, "invalid", f"Entry request url {url!r} names no resource type", expression=where
        )
    return parts[0], (parts[1] if len(parts) > 1 else None), query


def _entries(env: Env, request: FhirRequest, body: dict[str, Any]) -> list[_Entry]:
    raw = body.get("entry", [])
    if not isinstance(raw, list):
        raise FhirError(
            400, "structure", "Bundle.entry must be an array", expression="Bundle.entry"
        )
    if len(raw) > env.settings.max_bundle_entries:
        raise FhirError(
            413,
            "too-costly",
            f"Bundle has {len(raw)} entries; the limit is {env.settings.max_bundle_entries}",
        )
    out: list[_Entry] = []
    for i, item in enumerate(raw):
        where = f"Bundle.entry[{i}]"
        req = item.get("request") if isinstance(item, dict) else None
        if (
            not isinstance(req, dict)
            or not isinstance(req.get("method"), str)
            or not isinstance(req.get("url"), str)
        ):
            raise FhirError(
                400,
                "required",
                "Each entry needs request.method and request.url",
                expression=f"{where}.request",
            )
        method = req["method"].upper()
        if method not in _ORDER:
            raise FhirError(
                400,
                "not-supported",
                f"Unsupported method {method!r}",
                expression=f"{where}.request.method",
            )
        rtype, rid, query = _parse_url(req["url"], request.base_url, f"{where}.request.url")
        out.append(
            _Entry(
                i,
                method,
                req["url"],
                rtype,
                rid,
                query,
                item.get("resource"),
                item.get("fullUrl"),
                req.get("ifMatch"),
                req.get("ifNoneExist"),
            )
        )
    return out


def _check_resource(env: Env, entry: _Entry, checked: dict[str, Any] | None = None) -> None:
    """The entry's resource type and validation (``checked``: the same resource with its
    structure validated ahead, see :data:`EntryAhead`)."""
    where = f"Bundle.entry[{entry.index}].resource"
    resource = entry.resource
    if not isinstance(resource, dict):
        raise FhirError(400, "required", f"{entry.method} entry needs a resource", expression=where)
    if resource.get("resourceType") != entry.rtype:
        raise FhirError(
            400,
            "invalid",
            f"resourceType does not match request url {entry.url!r}",
            expression=f"{where}.resourceType",
        )
    if not env.model.is_resource_type(entry.rtype):
        raise FhirError(
            400, "not-supported", f"Unknown resource type {entry.rtype!r}", expression=where
        )
    prefix = f"Bundle.entry[{entry.index}].resource."
    validate_resource(env, resource, prefix, structure_checked=checked == resource)


def _write_reply(
    stored: StoredResource, status: str, base: str, with_resource: bool
) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "status": status,
        "location": f"{base}/{stored.type}/{stored.id}/_history/{stored.version}",
        "etag": f'W/"{stored.version}"',
        "lastModified": stored.last_updated,
    }
    if with_resource and stored.data is not None:
        return {"resource": orjson.loads(stored.data), "response": reply}
    return {"response": reply}


def kept_urn_id(full_url: str | None, keep_urn_ids: bool) -> str | None:
    """The id a created entry keeps from its ``urn:uuid:`` fullUrl (``keep_urn_ids``), or
    None when it gets a new one (https://hl7.org/fhir/R4/http.html#trules)."""
    if keep_urn_ids and full_url and full_url.startswith("urn:uuid:"):
        candidate = full_url[9:]
        if ID_RE.fullmatch(candidate):
            return candidate
    return None


def process_transaction(
    env: Env,
    tx: Transaction,
    entries: list[Any],
    base: str,
    with_resource: bool,
    ahead: Mapping[str, EntryAhead] | None = None,
) -> None:
    """Apply the write entries of a transaction inside ``tx`` (sets ``entry.response``).

    ``ahead``: :data:`EntryAhead` by fullUrl; rows are used only for the very resource written,
    and a validation done ahead only for the very resource validated.
    """
    from cmio.api.ops.common import parse_etag

    def done(entry: _Entry) -> EntryAhead | None:
        return ahead.get(entry.full_url) if ahead and entry.full_url else None

    predicted: set[int] = set()  # entries written exactly as predicted ahead

    def rows(entry: _Entry, id: str | None = None) -> TableRows | None:
        found = done(entry)  # (a POST's rows were extracted with the id drawn for it)
        ok = found is not None and entry.index in predicted and found[2] == id
        return found[1] if found is not None and ok else None

    mapping: dict[str, str] = {}
    assigned: dict[int, str] = {}
    for entry in entries:
        if entry.method in ("POST", "PUT"):
            _check_resource(env, entry, (done(entry) or (None, None, None, None))[3])
        if entry.method == "POST":
            if entry.if_none_exist:
                found = match_conditional(env, tx, entry.rtype, entry.if_none_exist)
                if len(found) > 1:
                    raise FhirError(
                        412,
                        "multiple-matches",
                        "ifNoneExist matched several resources",
                        expression=f"Bundle.entry[{entry.index}].request.ifNoneExist",
                    )
                if found:
                    assigned[entry.index] = found[0].id
                    entry.response = {
                        "response": {
                            "status": "200 OK",
                            "location": f"{base}/{entry.rtype}/{found[0].id}/_history/{found[0].version}",
                            "etag": f'W/"{found[0].version}"',
                        }
                    }
            if entry.index not in assigned:
                drawn = (done(entry) or (None, None, None, None))[2]
                assigned[entry.index] = (
                    kept_urn_id(entry.full_url, env.settings.keep_urn_ids) or drawn or new_id()
                )
            if entry.full_url:
                mapping[entry.full_url] = f"{entry.rtype}/{assigned[entry.index]}"
        elif entry.method == "PUT":
            if entry.rid is None and entry.query:
                found = match_conditional(env, tx, entry.rtype, entry.query)
                if len(found) > 1:
                    raise FhirError(
                        412,
                        "multiple-matches",
                        "Conditional update matched several resources",
                        expression=f"Bundle.entry[{entry.index}].request.url",
                    )
                entry.rid = found[0].id if found else entry.resource.get("id") or new_id()
                entry.resource["id"] = entry.rid
            if entry.full_url and entry.rid:
                mapping[entry.full_url] = f"{entry.rtype}/{entry.rid}"
    conditional_cache: dict[str, str] = {}

    def resolve(ref: str) -> str:
        if ref not in conditional_cache:
            conditional_cache[ref] = resolve_conditional_reference(env, tx, ref)
        return conditional_cache[ref]

    for entry in entries:
        if isinstance(entry.resource, dict) and entry.method in ("POST", "PUT"):
            rewrite_references(entry.resource, mapping, resolve)
            prior = done(entry)
            if prior is not None and prior[0] == entry.resource:
                predicted.add(entry.index)
                if prior[3] is not None:
                    continue  # (no urn: reference in the resource predicted: checked ahead)
            _check_unresolved(entry)
    for entry in sorted(entries, key=lambda e: _ORDER[e.method]):
        if entry.response:
            continue
        where = f"Bundle.entry[{entry.index}]"
        if entry.method == "DELETE":
            if entry.rid is None:
                count = do_conditional_delete(env, tx, entry.rtype, entry.query)
                entry.response = {
                    "response": {"status": "204 No Content" if count else "404 Not Found"}
                }
            else:
                deleted = do_delete(env, tx, entry.rtype, entry.rid)
                entry.response = {
                    "response": {"status": "204 No Content" if deleted else "404 Not Found"}
                }
        elif entry.method == "POST":
            stored = do_create(
                env,
                tx,
                entry.resource,
                id=assigned[entry.index],
                ahead=rows(entry, assigned[entry.index]),
            ).stored
            entry.response = _write_reply(stored, "201 Created", base, with_resource)
        elif entry.method == "PUT":
            if entry.rid is None:
                raise FhirError(
                    400,
                    "invalid",
                    "PUT entry needs [type]/[id] or a conditional url",
                    expression=f"{where}.request.url",
                )
            stored, created = do_update(
                env,
                tx,
                entry.resource,
                entry.rid,
                if_match=parse_etag(entry.if_match),
                ahead=rows(entry),
            )
            entry.response = _write_reply(
                stored, "201 Created" if created else "200 OK", base, with_resource
            )
        elif entry.method == "PATCH":
            if entry.rid is None:
                raise FhirError(
                    400,
                    "not-supported",
                    "Conditional PATCH in a transaction is not supported",
                    expression=f"{where}.request.url",
                )
            operations = _patch_operations(entry)
            stored = do_patch(
                env, tx, entry.rtype, entry.rid, operations, parse_etag(entry.if_match)
            )
            entry.response = _write_reply(stored, "200 OK", base, with_resource)


def unresolved_urn(resource: Any) -> bool:
    """Whether ``resource`` still holds a ``urn:uuid:``/``urn:oid:`` reference (one no
    fullUrl of the Bundle matched; https://hl7.org/fhir/R4/bundle.html#references)."""
    text = orjson.dumps(resource)
    return b'"reference":"urn:uuid:' in text or b'"reference":"urn:oid:' in text


def _check_unresolved(entry: _Entry) -> None:
    if unresolved_urn(entry.resource):
        raise FhirError(
            400,
            "not-found",
            "A urn: reference does not match any fullUrl in the Bundle",
            expression=f"Bundle.entry[{entry.index}].resource",
        )


def _patch_operations(entry: _Entry) -> Any:
    resource = entry.resource
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        import base64

        return orjson.loads(base64.b64decode(resource.get("data", "")))
    raise FhirError(
        400,
        "not-supported",
        "PATCH entries carry a Binary with a JSON Patch document",
        expression=f"Bundle.entry[{entry.index}].resource",
    )


def _sub_request(request: FhirRequest, entry: _Entry) -> FhirRequest:
    headers = {"content-type": "application/fhir+json"}
    if entry.if_match:
        headers["if-match"] = entry.if_match
    if entry.if_none_exist:
        headers["if-none-exist"] = entry.if_none_exist
    if "prefer" in request.headers:
        headers["prefer"] = request.headers["prefer"]
    path, _, query = entry.url.partition("?")
    from cmio.api.ops.search import search_params_from_string

    body = orjson.dumps(entry.resource) if entry.resource is not None else b""
    if entry.method == "PATCH":
        headers["content-type"] = "application/json-patch+json"
        body = orjson.dumps(_patch_operations(entry))
    return FhirRequest(
        entry.method,
        path.strip("/"),
        search_params_from_string(query),
        headers,
        body,
        request.base_url,
        request.context,
    )


def _reply_from_response(response: FhirResponse) -> dict[str, Any]:
    headers = dict(response.headers)
    reply: dict[str, Any] = {"status": str(response.status)}
    for key, name in (
        ("location", "location"),
        ("etag", "etag"),
        ("last-modified", "lastModified"),
    ):
        if key in headers:
            reply[name] = headers[key]
    entry: dict[str, Any] = {"response": reply}
    if response.body:
        body = orjson.loads(response.body)
        if response.status >= 400:
            reply["outcome"] = body
        else:
            entry["resource"] = body
    return entry


def bundle(
    env: Env, request: FhirRequest, dispatch: Dispatch, policy: Policy | None = None
) -> FhirResponse:
    """POST [base] with a batch or transaction Bundle.

    ``policy``: the caller's authorization; a batch's entries are checked one by one as
    they are dispatched, a transaction's all before it runs (one denial refuses it).
    """
    body = parse_json_body(request)
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError(400, "invalid", "POST to the base needs a Bundle", expression="Bundle")
    kind = body.get("type")
    if kind not in ("batch", "transaction"):
        raise FhirError(
            400, "invalid", "Bundle.type must be batch or transaction", expression="Bundle.type"
        )
    entries = _entries(env, request, body)
    if kind == "batch":
        replies = [_reply_from_response(dispatch(_sub_request(request, e))) for e in entries]
        return json_response(
            request, 200, {"resourceType": "Bundle", "type": "batch-response", "entry": replies}
        )
    with_resource = prefer_return(request) == "representation"
    authorize.check_transaction(
        env,
        policy,
        [
            (e.index, e.method, e.rtype, e.rid, e.query, e.resource, e.if_none_exist)
            for e in entries
        ],
    )
    writes = [e for e in entries if e.method not in ("GET", "HEAD")]
    try:
        with env.repository.transaction() as tx:
            ahead = request.entry_ahead if isinstance(request, PreparedTransaction) else None
            process_transaction(env, tx, writes, request.base_url, with_resource, ahead)
    except FhirError as exc:
        exc.issues.append(
            OutcomeIssue(
                "information",
                "informational",
                "The transaction was rolled back; nothing was stored",
            )
        )
        raise
    for entry in entries:
        if entry.method in ("GET", "HEAD"):
            entry.response = _reply_from_response(dispatch(_sub_request(request, entry)))
    return json_response(
        request,
        200,
        {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [e.response for e in entries],
        },
    )
