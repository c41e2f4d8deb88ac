"""Bundle files for bulk import (https://hl7.org/fhir/R4/bundle.html).

transaction, batch, collection and searchset Bundles are unpacked; any other
JSON file is imported as one resource. Entry ids: a PUT's ``Type/id`` url, a
POST's ``urn:uuid:X`` fullUrl, then ``resource.id``, then the id in an absolute
fullUrl; references to fullUrls are rewritten to ``Type/id``
(https://hl7.org/fhir/R4/bundle.html#references). ``ifNoneExist`` that matches a
stored resource maps the entry to it instead of storing it. DELETE and PATCH
entries are reported as not supported; GET/HEAD entries are skipped.
"""

from __future__ import annotations

from typing import Any

import orjson

from cmio.bulk.parser import ChunkParser, ChunkResult, Deferred, ResolveError
from cmio.bulk.report import Problem, Rejected
from cmio.bulk.sources import Task, read_bytes

__all__ = ["parse_bundle"]

Json = dict[str, Any]
_UNPACKED = frozenset({"transaction", "batch", "collection", "searchset"})


def parse_bundle(parser: ChunkParser, task: Task) -> ChunkResult:
    """Parse one Bundle (or single-resource) JSON file with ``parser``'s validation and resolver.

    See https://hl7.org/fhir/R4/bundle.html#references and the module docstring.
    """
    result = ChunkResult(task.seq, progress=task.progress)
    try:
        document = orjson.loads(read_bytes(task.path).removeprefix(b"\xef\xbb\xbf"))
    except (orjson.JSONDecodeError, OSError) as exc:
        result.rejected.append(
            Rejected(
                task.label,
                None,
                None,
                None,
                None,
                (Problem("error", "structure", f"cannot read JSON: {exc}"),),
            )
        )
        return result
    unpacked = (
        isinstance(document, dict)
        and document.get("resourceType") == "Bundle"
        and document.get("type") in _UNPACKED
    )
    if unpacked:
        items = document.get("entry") or []
        if not isinstance(items, list):
            items = []
    else:
        items = [{"resource": document}]
    mapping: dict[str, str] = {}
    accepted: list[tuple[int, Json]] = []
    for index, item in enumerate(items):
        entry = index if unpacked else None
        resource, problem = _entry_resource(item, index)
        if problem is not None:
            if problem.code != "informational":
                result.rejected.append(Rejected(task.label, None, entry, None, None, (problem,)))
            continue
        assert resource is not None
        request = item["request"] if isinstance(item.get("request"), dict) else {}
        url = request.get("url")
        if str(request.get("method", "")).upper() == "PUT" and isinstance(url, str) and "?" in url:
            _conditional_update_id(parser, resource, url)
        rtype, rid, problems = parser.check(resource)
        if problems or rtype is None or rid is None:
            result.rejected.append(Rejected(task.label, None, entry, rtype, rid, tuple(problems)))
            continue
        full_url = item.get("fullUrl")
        if_none_exist = request.get("ifNoneExist")
        if isinstance(if_none_exist, str) and if_none_exist and parser.resolver is not None:
            try:
                found = parser.resolver(f"{rtype}?{if_none_exist}")
            except ResolveError:
                found = None
            if found is not None and found != f"{rtype}/{rid}":
                if isinstance(full_url, str):
                    mapping[full_url] = found
                result.matched[rtype] = result.matched.get(rtype, 0) + 1
                continue
        if isinstance(full_url, str) and full_url:
            mapping[full_url] = f"{rtype}/{rid}"
        accepted.append((index, resource))
    ready: list[tuple[bytes, Json | None]] = []
    for index, resource in accepted:
        original = orjson.dumps(resource)
        data, pending, problems = parser.rewrite_bytes(original, resource, mapping)
        if problems:
            result.rejected.append(
                Rejected(
                    task.label,
                    None,
                    index if unpacked else None,
                    resource["resourceType"],
                    resource["id"],
                    tuple(problems),
                )
            )
        elif pending:
            result.deferred.append(Deferred(data, task.label, None, index if unpacked else None))
        else:
            ready.append((data, resource if data == original else None))
    parser.finish(result, ready)
    return result


def _conditional_update_id(parser: ChunkParser, resource: Json, url: str) -> None:
    """Give a conditional PUT's resource the id of the stored match, if there is one.

    See https://hl7.org/fhir/R4/http.html#cond-update; without a match (or when the
    search is ambiguous) the entry keeps its own or a derived id.
    """
    if parser.resolver is None:
        return
    query = url.split("?", 1)[1]
    try:
        found = parser.resolver(f"{resource.get('resourceType')}?{query}")
    except ResolveError:
        return
    if found is not None:
        resource["id"] = found.split("/", 1)[1]


def _entry_resource(item: Any, index: int) -> tuple[Json | None, Problem | None]:
    """The resource of one ``Bundle.entry`` with its id settled, or why it is skipped."""
    if not isinstance(item, dict) or not isinstance(item.get("resource"), dict):
        if isinstance(item, dict) and isinstance(item.get("request"), dict):
            method = str(item["request"].get("method", "")).upper()
            if method in ("GET", "HEAD"):
                return None, Problem("information", "informational", "read entry skipped")
            return None, Problem(
                "error",
                "not-supported",
                f"{method or 'an entry without a resource'} is not supported by bulk import",
                f"Bundle.entry[{index}].request.method",
            )
        return None, Problem(
            "error", "required", "entry has no resource", f"Bundle.entry[{index}].resource"
        )
    resource: Json = item["resource"]
    rtype = resource.get("resourceType")
    request: Json = item["request"] if isinstance(item.get("request"), dict) else {}
    method = str(request.get("method", "PUT")).upper()
    if method not in ("POST", "PUT"):
        return None, Problem(
            "error",
            "not-supported",
            f"{method} entries are not supported by bulk import",
            f"Bundle.entry[{index}].request.method",
        )
    full_url = item.get("fullUrl")
    url = request.get("url")
    chosen: str | None = None
    if method == "PUT" and isinstance(url, str) and "?" not in url:
        parts = [p for p in url.split("?")[0].split("/") if p]
        if len(parts) >= 2 and parts[-2] == rtype:
            chosen = parts[-1]
    if (
        chosen is None
        and method == "POST"
        and isinstance(full_url, str)
        and full_url.startswith("urn:uuid:")
    ):
        chosen = full_url[9:]
    if chosen is None and isinstance(resource.get("id"), str):
        chosen = resource["id"]
    if chosen is None and isinstance(full_url, str) and not full_url.startswith("urn:"):
        parts = [p for p in full_url.split("/") if p]
        if len(parts) >= 2 and parts[-2] == rtype:
            chosen = parts[-1]
    if chosen is not None:
        resource["id"] = chosen
    return resource, None
