"""The measures' value sets: FHIR ValueSet resources shipped with cmio, expanded by the
terminology service into one ``(valueset, system, code)`` table the population SQL joins.

The files in ``cmio/measures/valuesets/`` are subsets of the VSAC value sets the CMS
eCQMs name (canonical ``http://cts.nlm.nih.gov/fhir/ValueSet/[OID]``), plus a few
cmio value sets for the measures' direct-reference codes (``https://cmio.dev/...``);
``docs/measures.md`` lists what each carries. They are loaded into the terminology
service as call-scoped resources (:meth:`TerminologyResources.with_overlay`) and
expanded there (https://hl7.org/fhir/R4/valueset-operation-expand.html). A code
system the service does not hold (CPT, HCPCS, a LOINC or SNOMED CT not loaded) is
supplied as a ``content = fragment`` CodeSystem of the codes the value sets name
(https://hl7.org/fhir/R4/codesystem-definitions.html#CodeSystem.content); when the
real code system is loaded, the service expands against it (unknown codes drop out).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources as package_files
from typing import Any

import pyarrow as pa

from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import TerminologyService

__all__ = [
    "VALUESET_SCHEMA",
    "ValueSetError",
    "builtin_valuesets",
    "expand_valuesets",
    "fragment_code_systems",
]

VALUESET_SCHEMA = pa.schema(
    [
        pa.field("valueset", pa.string()),
        pa.field("url", pa.string()),
        pa.field("system", pa.string()),
        pa.field("code", pa.string()),
    ]
)
"""The expansion table: the value set's computable ``name``, its ``url``, and one member."""


_PARTIAL = ("not-present", "example", "fragment")
"""CodeSystem contents that do not hold every code (the core package's SNOMED CT stub)."""


class ValueSetError(ValueError):
    """A value set is missing or cannot be expanded (the message names it)."""


def builtin_valuesets() -> dict[str, dict[str, Any]]:
    """The ValueSets shipped in ``cmio/measures/valuesets/``, by computable ``name``."""
    folder = package_files.files("cmio.measures").joinpath("valuesets")
    out: dict[str, dict[str, Any]] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            valueset = json.loads(entry.read_text(encoding="utf-8"))
            out[str(valueset["name"])] = valueset
    return out


def fragment_code_systems(
    valuesets: Iterable[Mapping[str, Any]], resources: TerminologyResources | None = None
) -> list[dict[str, Any]]:
    """``content = fragment`` CodeSystems of the codes the value sets enumerate, for each
    system ``resources`` does not hold in full (unknown, or known only as a stub)."""
    codes: dict[str, dict[str, None]] = {}
    for valueset in valuesets:
        for include in valueset.get("compose", {}).get("include", []):
            system = include.get("system")
            if isinstance(system, str):
                bucket = codes.setdefault(system, {})
                for concept in include.get("concept", []):
                    bucket[str(concept["code"])] = None
    out = []
    for system, members in sorted(codes.items()):
        known = resources.code_system(system) if resources is not None else None
        if known is not None and getattr(known, "content", "complete") not in _PARTIAL:
            continue
        out.append(
            {
                "resourceType": "CodeSystem",
                "url": system,
                "status": "active",
                "content": "fragment",
                "concept": [{"code": code} for code in members],
            }
        )
    return out


def expand_valuesets(
    names: Sequence[str],
    valuesets: Mapping[str, Mapping[str, Any]] | None = None,
    service: TerminologyService | None = None,
) -> pa.Table:
    """Expand the named value sets into one table (:data:`VALUESET_SCHEMA`).

    Args:
        names: computable names of the value sets the measures use.
        valuesets: the ValueSets by name (default: :func:`builtin_valuesets`).
        service: the terminology service (default: one without a store or core package).

    Raises:
        ValueSetError: a name is unknown or its value set cannot be expanded.
    """
    library = dict(valuesets) if valuesets is not None else builtin_valuesets()
    if service is None:
        service = TerminologyService(TerminologyResources(None, None))
    wanted = []
    for name in dict.fromkeys(names):
        if name not in library:
            raise ValueSetError(f"unknown value set {name!r}")
        wanted.append(dict(library[name]))
    overlay_items = wanted + fragment_code_systems(wanted, service.resources)
    resources = service.resources.with_overlay(overlay_items)
    columns: dict[str, list[str]] = {f.name: [] for f in VALUESET_SCHEMA}
    for valueset in wanted:
        try:
            expansion = service.expansion(valueset, resources=resources)
        except Exception as exc:  # TerminologyError and malformed composes alike
            raise ValueSetError(f"value set {valueset['name']}: {exc}") from exc
        for system, code in sorted(expansion.members):
            columns["valueset"].append(str(valueset["name"]))
            columns["url"].append(str(valueset["url"]))
            columns["system"].append(system)
            columns["code"].append(code)
    return pa.table(columns, schema=VALUESET_SCHEMA)
