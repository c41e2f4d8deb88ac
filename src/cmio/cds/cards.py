"""Card construction after CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/#card-attributes)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

__all__ = ["INDICATORS", "SOURCE", "action", "card", "override_reasons"]

INDICATORS = ("info", "warning", "critical")
SOURCE: dict[str, Any] = {
    "label": "cmio clinical decision support",
    "url": "https://cmio.dev/governance",
    "topic": {"system": "https://cmio.dev/fhir/CodeSystem/cds-topic", "code": "cmio-cds"},
}
_REASONS = "https://cmio.dev/fhir/CodeSystem/cds-override-reason"


def override_reasons(*reasons: tuple[str, str]) -> list[dict[str, str]]:
    """``overrideReasons`` Codings from ``(code, display)`` pairs."""
    return [{"system": _REASONS, "code": code, "display": display} for code, display in reasons]


def action(kind: str, description: str, resource: Any) -> dict[str, Any]:
    """A suggestion action: ``create``/``update`` carry a resource, ``delete`` a resourceId."""
    if kind not in ("create", "update", "delete"):
        raise ValueError(f"action type must be create, update or delete, not {kind!r}")
    out: dict[str, Any] = {"type": kind, "description": description}
    if kind == "delete":
        out["resourceId"] = [resource] if isinstance(resource, str) else list(resource)
    else:
        out["resource"] = resource
    return out


def card(
    summary: str,
    indicator: str,
    *,
    detail: str | None = None,
    suggestions: Sequence[tuple[str, Sequence[dict[str, Any]]]] = (),
    links: Sequence[tuple[str, str, str]] = (),
    selection_behavior: str | None = None,
    reasons: Sequence[dict[str, str]] = (),
    service: str | None = None,
) -> dict[str, Any]:
    """One card.

    Args:
        summary: at most 140 characters (longer text is cut with an ellipsis).
        indicator: ``info``, ``warning`` or ``critical``.
        detail: GitHub-flavoured markdown.
        suggestions: ``(label, actions)`` pairs.
        links: ``(label, url, type)`` with type ``absolute`` or ``smart``.
        selection_behavior: ``at-most-one`` or ``any`` (required with suggestions).
        reasons: ``overrideReasons`` Codings.
        service: the service id (recorded in the source topic).
    """
    if indicator not in INDICATORS:
        raise ValueError(f"indicator must be one of {INDICATORS}, not {indicator!r}")
    if len(summary) > 140:
        summary = summary[:139] + "\u2026"
    out: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": summary,
        "indicator": indicator,
        "source": dict(SOURCE),
    }
    if service:
        out["source"]["topic"] = {**SOURCE["topic"], "code": service}
    if detail:
        out["detail"] = detail
    if suggestions:
        out["suggestions"] = [
            {"label": label, "uuid": str(uuid.uuid4()), "actions": list(actions)}
            for label, actions in suggestions
        ]
        out["selectionBehavior"] = selection_behavior or "at-most-one"
    if reasons:
        out["overrideReasons"] = list(reasons)
    if links:
        out["links"] = [{"label": label, "url": url, "type": kind} for label, url, kind in links]
    return out
