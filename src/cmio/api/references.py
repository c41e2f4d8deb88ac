"""Reference rewriting for Bundles (https://hl7.org/fhir/R4/bundle.html#references).

Used by transaction processing and bulk import: ``urn:uuid:`` and other
``fullUrl`` references are replaced by the ids the server assigned, and
conditional references (``Patient?identifier=x|y``) by the single match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["rewrite_references", "walk_references"]


def walk_references(node: Any, visit: Callable[[str], str | None], depth: int = 0) -> None:
    """Call ``visit`` on every ``Reference.reference`` string; a non-None result replaces it."""
    if depth > 100:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                replacement = visit(value)
                if replacement is not None:
                    node[key] = replacement
            elif isinstance(value, (dict, list)):
                walk_references(value, visit, depth + 1)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                walk_references(item, visit, depth + 1)


def rewrite_references(
    resource: dict[str, Any],
    mapping: Mapping[str, str],
    conditional: Callable[[str], str] | None = None,
) -> None:
    """Rewrite references in place using ``mapping`` (fullUrl -> ``Type/id``).

    Args:
        resource: the resource to modify.
        mapping: fullUrl (``urn:uuid:...`` or absolute URL) to its new relative reference.
        conditional: resolves ``Type?query`` references to ``Type/id``; it may raise.
    """

    def visit(ref: str) -> str | None:
        hit = mapping.get(ref)
        if hit is not None:
            return hit
        if (
            conditional is not None
            and "?" in ref
            and not ref.startswith(("http:", "https:", "urn:", "#"))
        ):
            return conditional(ref)
        return None

    walk_references(resource, visit)
