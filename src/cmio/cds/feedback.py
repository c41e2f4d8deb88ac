"""Card feedback (https://cds-hooks.hl7.org/2.0/#feedback) and the alert-fatigue metric.

Each feedback item is stored as a ``Basic`` resource (``code``
``https://cmio.dev/fhir/CodeSystem/basic-kind|cds-feedback``) whose extension holds the
item JSON with the service id; :func:`feedback_rates` is the acceptance and override
rate per service.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from cmio.store.base import Repository, StoredResource, Transaction

__all__ = ["FEEDBACK_CODE", "FeedbackError", "feedback_rates", "parse_feedback", "store_feedback"]

FEEDBACK_CODE = {"system": "https://cmio.dev/fhir/CodeSystem/basic-kind", "code": "cds-feedback"}
_EXTENSION = "https://cmio.dev/fhir/StructureDefinition/cds-feedback"
_OUTCOMES = ("accepted", "overridden")


class FeedbackError(ValueError):
    """A malformed feedback request (the message names the field)."""


def parse_feedback(body: Any) -> list[dict[str, Any]]:
    """Check a feedback request body and return its items.

    Raises:
        FeedbackError: not ``{"feedback": [...]}`` or an item without card/outcome/timestamp.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("feedback"), list):
        raise FeedbackError("feedback: a list is required")
    items = []
    for n, item in enumerate(body["feedback"]):
        where = f"feedback[{n}]"
        if not isinstance(item, Mapping):
            raise FeedbackError(f"{where}: an object is required")
        if not isinstance(item.get("card"), str) or not item["card"]:
            raise FeedbackError(f"{where}.card: the card uuid is required")
        if item.get("outcome") not in _OUTCOMES:
            raise FeedbackError(f"{where}.outcome: accepted or overridden is required")
        if not isinstance(item.get("outcomeTimestamp"), str):
            raise FeedbackError(f"{where}.outcomeTimestamp is required")
        accepted = item.get("acceptedSuggestions")
        if item["outcome"] == "overridden" and accepted:
            raise FeedbackError(f"{where}.acceptedSuggestions: not allowed when overridden")
        if accepted is not None and not (
            isinstance(accepted, list)
            and all(isinstance(a, Mapping) and "id" in a for a in accepted)
        ):
            raise FeedbackError(f"{where}.acceptedSuggestions: a list of {{id}} is required")
        reason = item.get("overrideReason")
        if reason is not None and (
            item["outcome"] != "overridden" or not isinstance(reason, Mapping)
        ):
            raise FeedbackError(f"{where}.overrideReason: only with outcome overridden")
        items.append(dict(item))
    return items


def store_feedback(
    repository: Repository,
    service: str,
    items: list[dict[str, Any]],
    audit: Callable[[Transaction, list[StoredResource]], None] | None = None,
) -> list[str]:
    """Store feedback items of ``service`` in one transaction; their Basic ids.

    ``audit`` (when given) records the versions written inside that transaction, so
    the feedback and its audit record commit together or not at all.
    """
    ids = []
    written: list[StoredResource] = []
    with repository.transaction() as tx:
        for item in items:
            basic = {
                "resourceType": "Basic",
                "code": {"coding": [dict(FEEDBACK_CODE)], "text": f"CDS feedback: {service}"},
                "created": str(item["outcomeTimestamp"])[:10],
                "extension": [
                    {"url": _EXTENSION, "valueString": json.dumps({"service": service, **item})}
                ],
            }
            stored = tx.create(basic)
            written.append(stored)
            ids.append(stored.id)
        if audit is not None:
            audit(tx, written)
    return ids


def _items(repository: Repository) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for stored in repository.iter_current(["Basic"]):  # few Basic resources; no index needed
        for ext in json.loads(stored.data or "{}").get("extension", []):
            if ext.get("url") == _EXTENSION and isinstance(ext.get("valueString"), str):
                out.append(json.loads(ext["valueString"]))
    return out


def feedback_rates(repository: Repository) -> pa.Table:
    """Per service: feedback count, accepted, overridden, their rates, top override reason."""
    items = _items(repository)
    rows = []
    for service in sorted({str(i["service"]) for i in items}):
        mine = [i for i in items if i["service"] == service]
        accepted = sum(1 for i in mine if i["outcome"] == "accepted")
        overridden = len(mine) - accepted
        reasons = Counter(
            str(((i.get("overrideReason") or {}).get("reason") or {}).get("code") or "")
            for i in mine
            if i["outcome"] == "overridden"
        )
        reasons.pop("", None)
        rows.append(
            {
                "service": service,
                "feedback": len(mine),
                "accepted": accepted,
                "overridden": overridden,
                "acceptance_rate": accepted / len(mine),
                "override_rate": overridden / len(mine),
                "top_override_reason": reasons.most_common(1)[0][0] if reasons else None,
            }
        )
    schema = pa.schema(
        [
            ("service", pa.string()),
            ("feedback", pa.int64()),
            ("accepted", pa.int64()),
            ("overridden", pa.int64()),
            ("acceptance_rate", pa.float64()),
            ("override_rate", pa.float64()),
            ("top_override_reason", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)
