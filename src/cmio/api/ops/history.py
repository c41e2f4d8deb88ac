"""History at instance, type and system level (https://hl7.org/fhir/R4/http.html#history)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from cmio.api import authorize
from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import check_id, check_type
from cmio.api.render import json_response, last_modified

if TYPE_CHECKING:
    from cmio.security.policy import Policy

__all__ = ["history"]

_ALLOWED = frozenset({"_count", "_since", "_at", "_offset", "_format", "_pretty"})


def _instant(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(400, "invalid", f"{name} must be an instant", expression=name) from None
    if parsed.tzinfo is None and "T" in value:
        raise FhirError(400, "invalid", f"{name} needs a timezone", expression=name)
    return value


def history(
    env: Env,
    request: FhirRequest,
    rtype: str | None,
    rid: str | None,
    path: str,
    policy: Policy | None = None,
) -> FhirResponse:
    """GET [base]/_history, [base]/[type]/_history, [base]/[type]/[id]/_history.

    ``policy``: the caller's authorization; versions it may not see are left out.
    """
    interaction = "history-instance" if rid is not None else "history-type"
    if rtype is not None:
        authorize.require(policy, interaction, rtype)
    if rtype is not None:
        check_type(env, rtype)
    if rid is not None:
        check_id(rid)
    for key, _ in request.query:
        if key not in _ALLOWED:
            raise FhirError(
                400, "not-supported", f"Unknown history parameter {key!r}", expression=key
            )
    count = env.settings.default_count
    raw_count = request.param("_count")
    if raw_count is not None:
        if not raw_count.isdigit():
            raise FhirError(
                400, "invalid", "_count must be a non-negative integer", expression="_count"
            )
        count = min(int(raw_count), env.settings.max_count)
    raw_offset = request.param("_offset") or "0"
    if not raw_offset.isdigit():
        raise FhirError(
            400, "invalid", "_offset must be a non-negative integer", expression="_offset"
        )
    offset = int(raw_offset)
    since = _instant("_since", request.param("_since"))
    at = _instant("_at", request.param("_at"))
    with env.repository.transaction() as tx:
        if rid is not None and rtype is not None and tx.current(rtype, rid) is None:
            raise FhirError(404, "not-found", f"{rtype}/{rid} is not known")
        page = tx.history(rtype, rid, since=since, at=at, count=count, offset=offset)
    page, show_total = authorize.visible_history(policy, interaction, page, rtype, rid)
    entries: list[dict[str, Any]] = []
    for stored in page.entries:
        url = f"{stored.type}/{stored.id}"
        entry: dict[str, Any] = {"fullUrl": f"{request.base_url}/{url}"}
        if stored.data is not None and not stored.deleted:
            entry["resource"] = orjson.loads(stored.data)
        method = (
            "DELETE"
            if stored.deleted
            else ("POST" if stored.version == 1 and stored.method == "POST" else stored.method)
        )
        entry["request"] = {"method": method, "url": url if method != "POST" else stored.type}
        status = (
            "410 Gone" if stored.deleted else ("201 Created" if stored.version == 1 else "200 OK")
        )
        entry["response"] = {
            "status": status,
            "etag": f'W/"{stored.version}"',
            "lastModified": stored.last_updated,
        }
        entries.append(entry)
    base_params = [(k, v) for k, v in request.query if k != "_offset"]
    links = [
        {
            "relation": "self",
            "url": f"{request.base_url}/{path}?{urlencode([*base_params, ('_offset', str(offset))])}",
        }
    ]
    if offset + count < page.total:
        links.append(
            {
                "relation": "next",
                "url": f"{request.base_url}/{path}?{urlencode([*base_params, ('_offset', str(offset + count))])}",
            }
        )
    if offset > 0:
        links.append(
            {
                "relation": "previous",
                "url": f"{request.base_url}/{path}?{urlencode([*base_params, ('_offset', str(max(0, offset - count)))])}",
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "history",
        "total": page.total,
        "link": links,
    }
    if not show_total:  # versions were left out: the count would leak them
        del bundle["total"]
    if entries:
        bundle["entry"] = entries
    headers = []
    if page.entries:
        headers.append(("last-modified", last_modified(page.entries[0].last_updated)))
    return json_response(request, 200, bundle, headers)
