"""The default search indexer: ``identifier`` tokens.

Until FHIRPath-driven indexing lands, this is enough for conditional
create/update/delete and conditional references such as
``Patient?identifier=http://hl7.org/fhir/sid/us-npi|9999``
(https://hl7.org/fhir/R4/search.html#token, https://hl7.org/fhir/R4/http.html#ccreate).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmio.store.base import Indexer, IndexRow

__all__ = ["DefaultIndexer"]


class DefaultIndexer(Indexer):
    """Index every top-level ``identifier`` (list or single object) as a token row."""

    def rows(self, resource: dict[str, Any]) -> Sequence[IndexRow]:
        """Return one ``token`` row per distinct ``identifier`` system/value pair.

        Identifiers without a ``value`` are skipped; an empty or missing
        ``system`` is stored as ``None`` (matched by ``|value``).
        """
        found = resource.get("identifier")
        if found is None:
            return ()
        items = found if isinstance(found, list) else [found]
        out: list[IndexRow] = []
        seen: set[tuple[str | None, str]] = set()
        for item in items:
            if not isinstance(item, dict):
                continue
            value = item.get("value")
            if not isinstance(value, str) or not value:
                continue
            system = item.get("system")
            if not isinstance(system, str) or not system:
                system = None
            if (system, value) not in seen:
                seen.add((system, value))
                out.append(IndexRow("token", "identifier", system, value))
        return out
