"""LOINC from a release folder: ``LoincTable/Loinc.csv`` plus hierarchy and part files.

Reads the LOINC table (one row per LOINC term: the six axes COMPONENT, PROPERTY,
TIME_ASPCT, SYSTEM, SCALE_TYP, METHOD_TYP, and CLASS, STATUS, names...), the
primary part links (``AccessoryFiles/PartFile/LoincPartLink_Primary.csv``: the
LP part code of each axis), the parts (``Part.csv``: LP codes become concepts of
the same system, as in the LOINC FHIR code system) and the multiaxial hierarchy
(``AccessoryFiles/ComponentHierarchyBySystem/ComponentHierarchyBySystem.csv``) as
is-a parents. See https://loinc.org/downloads/ and
https://terminology.hl7.org/CodeSystem-v3-loinc.html (system ``http://loinc.org``).

An axis property carries the LOINC table text (``SCALE_TYP = Qn``) and, when the
part link file names one, the part code too (``COMPONENT = LP14635-4``), so
filters work with either. DEPRECATED terms are inactive.
"""

from __future__ import annotations

import csv
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from cmio.terminology._store_schema import natural_key
from cmio.terminology.concepts import Concept, ConceptStore, Designation, SystemInfo
from cmio.terminology.loaders.common import LoadResult, Progress, fingerprint_files, load_system

__all__ = ["AXES", "LOINC_URL", "LoincRelease", "find_release", "load_loinc", "loinc_concepts"]

LOINC_URL = "http://loinc.org"
AXES = ("COMPONENT", "PROPERTY", "TIME_ASPCT", "SYSTEM", "SCALE_TYP", "METHOD_TYP")
"""The six LOINC axes (https://loinc.org/kb/users-guide/major-parts-of-a-loinc-term/)."""
_TEXT_PROPERTIES = (
    "CLASS",
    "CLASSTYPE",
    "STATUS",
    "ORDER_OBS",
    "EXAMPLE_UCUM_UNITS",
    "VersionFirstReleased",
    "VersionLastChanged",
)
_NAMES = ("SHORTNAME", "DisplayName", "CONSUMER_NAME")
_FORMAT = "cmio-loinc-1"
PROPERTIES: tuple[tuple[str, str, str | None], ...] = (
    *((axis, "Coding", f"LOINC axis {axis}: table text and part code") for axis in AXES),
    *((name, "string", None) for name in _TEXT_PROPERTIES),
    ("PartTypeName", "string", "Type of a LOINC part (LP code)"),
    ("parent", "code", "Parent in the component hierarchy by system"),
    ("child", "code", "Child in the component hierarchy by system"),
)


class LoincRelease:
    """The files of an unpacked LOINC release."""

    def __init__(self, folder: Path) -> None:
        def one(name: str, required: bool) -> Path | None:
            found = sorted(p for p in folder.rglob(name) if p.is_file())
            if not found and required:
                raise ValueError(f"{folder}: no {name} found (an unpacked LOINC release?)")
            return found[0] if found else None

        table = one("Loinc.csv", True)
        assert table is not None
        self.table = table
        self.hierarchy = one("ComponentHierarchyBySystem.csv", False)
        self.parts = one("Part.csv", False)
        self.links = one("LoincPartLink_Primary.csv", False)

    def files(self) -> list[Path]:
        """Every file the loader reads."""
        return [p for p in (self.table, self.hierarchy, self.parts, self.links) if p is not None]

    def version(self) -> str:
        """The release version: the highest ``VersionLastChanged`` in the table."""
        best: str | None = None
        for row in _rows(self.table, ("LOINC_NUM", "VersionLastChanged")):
            value = row["VersionLastChanged"]
            if value and (best is None or natural_key(value) > natural_key(best)):
                best = value
        if best is None:
            raise ValueError(f"{self.table}: no VersionLastChanged values; pass the version")
        return best


def find_release(folder: Path) -> LoincRelease:
    """Locate the LOINC files under ``folder``."""
    return LoincRelease(folder)


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path.name}: missing columns {missing} (not a LOINC release file?)")
        yield from reader


def _hierarchy(release: LoincRelease) -> tuple[dict[str, list[str]], dict[str, str]]:
    parents: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    if release.hierarchy is None:
        return parents, texts
    for row in _rows(release.hierarchy, ("IMMEDIATE_PARENT", "CODE", "CODE_TEXT")):
        code, parent = row["CODE"], row["IMMEDIATE_PARENT"]
        texts.setdefault(code, row["CODE_TEXT"])
        ups = parents.setdefault(code, [])
        if parent and parent not in ups:
            ups.append(parent)
    return parents, texts


def _stage_links(release: LoincRelease, db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE link (loinc TEXT, prop TEXT, part TEXT)")
    if release.links is None:
        return
    rows = _rows(release.links, ("LoincNumber", "PartNumber", "PartTypeName", "Property"))
    db.executemany(
        "INSERT INTO link VALUES (?, ?, ?)",
        (
            (
                r["LoincNumber"],
                r["Property"].rsplit("/", 1)[-1] or r["PartTypeName"],
                r["PartNumber"],
            )
            for r in rows
        ),
    )
    db.execute("CREATE INDEX link_loinc ON link (loinc)")


def loinc_concepts(release: LoincRelease, workdir: Path) -> Iterator[Concept]:
    """LOINC terms, then parts, then remaining hierarchy nodes."""
    parents, texts = _hierarchy(release)
    emitted: set[str] = set()
    with closing(sqlite3.connect(workdir / "loinc-links.db")) as db:
        _stage_links(release, db)
        for row in _rows(release.table, ("LOINC_NUM", "LONG_COMMON_NAME", "STATUS", *AXES)):
            code = row["LOINC_NUM"]
            props: list[tuple[str, str | int | float | bool]] = []
            links: dict[str, list[str]] = {}
            for prop, part in db.execute("SELECT prop, part FROM link WHERE loinc = ?", (code,)):
                links.setdefault(prop, []).append(part)
            for axis in AXES:
                if row.get(axis):
                    props.append((axis, row[axis]))
                props.extend((axis, part) for part in links.get(axis, ()))
            props.extend((name, row[name]) for name in _TEXT_PROPERTIES if row.get(name))
            emitted.add(code)
            yield Concept(
                code=code,
                display=row["LONG_COMMON_NAME"] or row.get("SHORTNAME") or None,
                definition=row.get("DefinitionDescription") or None,
                active=row["STATUS"] != "DEPRECATED",
                parents=tuple(parents.get(code, ())),
                properties=tuple(props),
                designations=tuple(
                    Designation(row[name], "en-US", LOINC_URL, name)
                    for name in _NAMES
                    if row.get(name)
                ),
            )
    if release.parts is not None:
        for row in _rows(release.parts, ("PartNumber", "PartTypeName", "PartName", "Status")):
            code = row["PartNumber"]
            if code in emitted:
                continue
            emitted.add(code)
            yield Concept(
                code=code,
                display=row.get("PartDisplayName") or row["PartName"],
                active=row["Status"] != "DEPRECATED",
                parents=tuple(parents.get(code, ())),
                properties=(("PartTypeName", row["PartTypeName"]), ("STATUS", row["Status"])),
                designations=(Designation(row["PartName"], "en-US", LOINC_URL, "PartName"),),
            )
    for code, text in texts.items():
        if code not in emitted:
            emitted.add(code)
            yield Concept(code=code, display=text, parents=tuple(parents.get(code, ())))


def load_loinc(
    store: ConceptStore,
    folder: Path,
    *,
    version: str | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> tuple[LoadResult, SystemInfo]:
    """Load a LOINC release into the concept store (skipped when already loaded)."""
    release = find_release(folder)
    info = SystemInfo(
        url=LOINC_URL,
        version=version or release.version(),
        name="LOINC",
        title="Logical Observation Identifiers, Names and Codes (LOINC)",
        properties=PROPERTIES,
    )
    fingerprint = fingerprint_files(release.files(), _FORMAT)
    with tempfile.TemporaryDirectory(prefix="cmio-loinc-") as tmp:
        result = load_system(
            store,
            info,
            lambda: loinc_concepts(release, Path(tmp)),
            fingerprint,
            progress,
            force=force,
        )
    return result, SystemInfo(
        info.url, info.version, info.name, info.title, result.count, info.properties
    )
