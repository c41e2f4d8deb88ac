"""UCUM as terminology content: the unit atoms of ``ucum-essence.xml``.

UCUM (``http://unitsofmeasure.org``, https://terminology.hl7.org/CodeSystem-v3-ucum.html)
is a grammar: its codes are unit expressions, validated by
:class:`cmio.terminology.ucum.Ucum`. The concept store keeps its base units and
defined units (name as display; class, property, metric/special/arbitrary flags
as properties) so that ``$lookup`` of an atom has something to show; the
CodeSystem resource says ``content: not-present``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from cmio.terminology.concepts import Concept, ConceptStore, SystemInfo
from cmio.terminology.loaders.common import LoadResult, Progress, fingerprint_files, load_system
from cmio.terminology.ucum import essence_path

__all__ = ["UCUM_URL", "load_ucum", "ucum_concepts", "ucum_info"]

UCUM_URL = "http://unitsofmeasure.org"
_NS = {"u": "http://unitsofmeasure.org/ucum-essence"}
_FORMAT = "cmio-ucum-1"
PROPERTIES: tuple[tuple[str, str, str | None], ...] = (
    ("class", "code", "UCUM unit class (si, iso1000, clinical...)"),
    ("property", "string", "The kind of quantity measured"),
    ("isMetric", "boolean", "Takes prefixes"),
    ("isSpecial", "boolean", "Non-ratio scale (converted by a function)"),
    ("isArbitrary", "boolean", "Arbitrary unit: not convertible to others"),
    ("isBaseUnit", "boolean", "One of the seven base units"),
)


def _text(element: ET.Element, name: str) -> str | None:
    found = element.find(f"u:{name}", _NS)
    return found.text.strip() if found is not None and found.text else None


def ucum_info(path: Path | None = None) -> SystemInfo:
    """The system description (version from the essence file)."""
    root = ET.parse(path or essence_path()).getroot()
    return SystemInfo(
        url=UCUM_URL,
        version=root.get("version"),
        name="UCUM",
        title="Unified Code for Units of Measure (UCUM)",
        properties=PROPERTIES,
        hierarchy_meaning=None,
    )


def ucum_concepts(path: Path | None = None) -> Iterator[Concept]:
    """Base units, then defined units, in file order."""
    root = ET.parse(path or essence_path()).getroot()
    for unit in root.findall("u:base-unit", _NS):
        yield Concept(
            code=unit.get("Code", ""),
            display=_text(unit, "name"),
            properties=(
                ("property", _text(unit, "property") or ""),
                ("isMetric", True),
                ("isBaseUnit", True),
            ),
        )
    for unit in root.findall("u:unit", _NS):
        yield Concept(
            code=unit.get("Code", ""),
            display=_text(unit, "name"),
            properties=(
                ("class", unit.get("class", "")),
                ("property", _text(unit, "property") or ""),
                ("isMetric", unit.get("isMetric") == "yes"),
                ("isSpecial", unit.get("isSpecial") == "yes"),
                ("isArbitrary", unit.get("isArbitrary") == "yes"),
            ),
        )


def load_ucum(
    store: ConceptStore, progress: Progress | None = None, *, force: bool = False
) -> tuple[LoadResult, SystemInfo]:
    """Load the UCUM atoms (skipped when this essence file is already loaded)."""
    path = essence_path()
    info = ucum_info(path)
    result = load_system(
        store,
        info,
        lambda: ucum_concepts(path),
        fingerprint_files([path], _FORMAT),
        progress,
        force=force,
    )
    return result, SystemInfo(
        info.url, info.version, info.name, info.title, result.count, info.properties, None
    )
