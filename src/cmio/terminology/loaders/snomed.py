"""SNOMED CT from an RF2 Snapshot release (International or US edition).

Reads ``sct2_Concept_Snapshot``, ``sct2_Description_Snapshot`` (FSN and synonym
designations), the active inferred is-a rows (116680003) of
``sct2_Relationship_Snapshot`` and, when present, the language reference set that
marks the preferred term (US English by default) used as display. Versions follow
https://hl7.org/fhir/R4/snomedct.html#version:
``http://snomed.info/sct/[module]/version/[YYYYMMDD]``.

Concepts and descriptions are staged into a temporary SQLite file and
merge-joined in concept order; memory holds only what the closure needs anyway
(the active is-a edges) and the ids of the preferred descriptions.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from cmio.terminology.concepts import Concept, ConceptStore, Designation, SystemInfo
from cmio.terminology.loaders import rf2
from cmio.terminology.loaders.common import (
    LoadResult,
    Progress,
    fingerprint_files,
    load_system,
)

__all__ = ["SNOMED_URL", "SnomedRelease", "find_release", "load_snomed", "snomed_concepts"]

SNOMED_URL = "http://snomed.info/sct"
_FORMAT = "cmio-snomed-rf2-1"
_UNINDEXED = frozenset({"inactive", "moduleId", "effectiveTime"})
"""Properties every concept has, with few distinct values: kept, not indexed."""
_EDITIONS = {"INT": rf2.INTERNATIONAL_MODULE, "US1000124": rf2.US_MODULE}
_NAME = re.compile(r"sct2_Concept_Snapshot_([A-Za-z0-9]+)_(\d{8})\.txt$")
PROPERTIES: tuple[tuple[str, str, str | None], ...] = (
    ("inactive", "boolean", "Whether the concept is inactive"),
    ("sufficientlyDefined", "boolean", "Fully defined (not primitive)"),
    ("moduleId", "code", "The module the concept belongs to"),
    ("effectiveTime", "string", "Release date of the concept's current state"),
    ("parent", "code", "Direct is-a parent"),
    ("child", "code", "Direct is-a child"),
)


@dataclass(frozen=True, slots=True)
class SnomedRelease:
    """The files and identity of one RF2 Snapshot release."""

    concepts: Path
    descriptions: tuple[Path, ...]
    relationships: Path
    languages: tuple[Path, ...]
    module: str
    date: str

    @property
    def version(self) -> str:
        """The version URI (https://hl7.org/fhir/R4/snomedct.html#version)."""
        return f"{SNOMED_URL}/{self.module}/version/{self.date}"

    def files(self) -> list[Path]:
        """Every file the loader reads."""
        return [self.concepts, *self.descriptions, self.relationships, *self.languages]


def _one(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.rglob(pattern) if p.is_file())


def find_release(folder: Path, module: str | None = None) -> SnomedRelease:
    """Locate the Snapshot files under ``folder`` (the unpacked release).

    Args:
        folder: the release folder (searched recursively).
        module: edition module id; by default from the file name namespace
            (``INT`` International, ``US1000124`` US).

    Raises:
        ValueError: a file is missing or ambiguous, or the edition is unknown.
    """
    concepts = [p for p in _one(folder, "sct2_Concept_Snapshot*.txt") if _NAME.search(p.name)]
    relationships = _one(folder, "sct2_Relationship_Snapshot*.txt")
    descriptions = _one(folder, "sct2_Description_Snapshot*.txt")
    if len(concepts) != 1 or len(relationships) != 1 or not descriptions:
        raise ValueError(
            f"{folder}: expected one sct2_Concept_Snapshot_*_YYYYMMDD.txt, one "
            "sct2_Relationship_Snapshot_*.txt and sct2_Description_Snapshot*.txt files, found "
            f"{len(concepts)}, {len(relationships)} and {len(descriptions)}"
        )
    match = _NAME.search(concepts[0].name)
    assert match is not None
    namespace, date = match.groups()
    edition = module or _EDITIONS.get(namespace)
    if edition is None:
        raise ValueError(
            f"{concepts[0].name}: unknown edition {namespace!r}; pass the edition module id"
        )
    languages = tuple(_one(folder, "der2_cRefset_LanguageSnapshot*.txt"))
    return SnomedRelease(
        concepts[0], tuple(descriptions), relationships[0], languages, edition, date
    )


def _preferred(release: SnomedRelease, language_refset: str) -> set[int]:
    """Ids of the descriptions the language reference set marks preferred."""
    preferred: set[int] = set()
    for path in release.languages:
        for r in rf2.read_rows(path, rf2.LANGUAGE_COLUMNS):
            if r[2] == "1" and r[4] == language_refset and r[6] == rf2.PREFERRED:
                preferred.add(int(r[5]))
    return preferred


def _stage(release: SnomedRelease, db: sqlite3.Connection) -> None:
    db.executescript(
        """PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
        CREATE TABLE c (id INTEGER PRIMARY KEY, active INTEGER, module TEXT, eff TEXT, def TEXT);
        CREATE TABLE d (concept INTEGER, id INTEGER, lang TEXT, type TEXT, term TEXT);"""
    )
    db.executemany(
        "INSERT INTO c VALUES (?, ?, ?, ?, ?)",
        (
            (int(r[0]), r[2] == "1", r[3], r[1], r[4])
            for r in rf2.read_rows(release.concepts, rf2.CONCEPT_COLUMNS)
        ),
    )
    for path in release.descriptions:
        db.executemany(
            "INSERT INTO d VALUES (?, ?, ?, ?, ?)",
            (
                (int(r[4]), int(r[0]), r[5], r[6], r[7])
                for r in rf2.read_rows(path, rf2.DESCRIPTION_COLUMNS)
                if r[2] == "1"
            ),
        )
    db.execute("CREATE INDEX d_concept ON d (concept, id)")


def _is_a(release: SnomedRelease) -> dict[str, list[str]]:
    """Active is-a parents by concept: the edges the closure needs anyway."""
    parents: dict[str, list[str]] = {}
    for r in rf2.read_rows(release.relationships, rf2.RELATIONSHIP_COLUMNS):
        if r[7] == rf2.IS_A and r[2] == "1":
            parents.setdefault(r[4], []).append(r[5])
    return parents


def _display(terms: list[tuple[int, str, str, str, str | None]]) -> str | None:
    """Preferred synonym, else any synonym, else the FSN."""
    preferred = [t for t in terms if t[3] == rf2.SYNONYM and t[4] == rf2.PREFERRED]
    synonyms = [t for t in terms if t[3] == rf2.SYNONYM]
    fsn = [t for t in terms if t[3] == rf2.FSN]
    for group in (preferred, synonyms, fsn):
        if group:
            return group[0][2]
    return None


def snomed_concepts(
    release: SnomedRelease, workdir: Path, language_refset: str = rf2.US_ENGLISH
) -> Iterator[Concept]:
    """Stream the release's concepts (merge-join of the staged files, by concept id)."""
    with closing(sqlite3.connect(workdir / "rf2-stage.db")) as db:
        _stage(release, db)
        preferred = _preferred(release, language_refset)
        is_a = _is_a(release)
        concepts = db.execute("SELECT id, active, module, eff, def FROM c ORDER BY id")
        terms = groupby(
            db.cursor().execute("SELECT concept, id, term, type, lang FROM d ORDER BY concept, id"),
            key=lambda t: t[0],
        )
        next_terms = next(terms, None)
        for cid, active, module, eff, definition in concepts:
            mine: list[tuple[int, str, str, str, str | None]] = []
            langs: dict[int, str] = {}
            while next_terms is not None and next_terms[0] <= cid:
                if next_terms[0] == cid:
                    for row in next_terms[1]:
                        acceptability = rf2.PREFERRED if row[1] in preferred else None
                        mine.append((row[1], row[0], row[2], row[3], acceptability))
                        langs[row[1]] = row[4]
                next_terms = next(terms, None)
            code = str(cid)
            ups = tuple(sorted(is_a.pop(code, ()), key=int))
            yield Concept(
                code=code,
                display=_display(mine),
                active=bool(active),
                parents=ups,
                properties=(
                    ("inactive", not active),
                    ("sufficientlyDefined", definition == rf2.FULLY_DEFINED),
                    ("moduleId", module),
                    ("effectiveTime", eff),
                ),
                designations=tuple(
                    Designation(term, langs[did], SNOMED_URL, kind)
                    for did, _, term, kind, _ in mine
                ),
            )


def load_snomed(
    store: ConceptStore,
    folder: Path,
    *,
    module: str | None = None,
    language_refset: str = rf2.US_ENGLISH,
    progress: Progress | None = None,
    force: bool = False,
) -> tuple[LoadResult, SystemInfo]:
    """Load an RF2 Snapshot into the concept store (skipped when already loaded).

    Returns:
        The load result and the system description (for the CodeSystem resource).
    """
    release = find_release(folder, module)
    info = SystemInfo(
        url=SNOMED_URL,
        version=release.version,
        name="SNOMED_CT",
        title="SNOMED CT" + (" (US Edition)" if release.module == rf2.US_MODULE else ""),
        properties=PROPERTIES,
    )
    fingerprint = fingerprint_files(release.files(), _FORMAT + language_refset)
    with tempfile.TemporaryDirectory(prefix="cmio-rf2-") as tmp:
        result = load_system(
            store,
            info,
            lambda: snomed_concepts(release, Path(tmp), language_refset),
            fingerprint,
            progress,
            force=force,
            unindexed=_UNINDEXED,
        )
    return result, SystemInfo(
        info.url, info.version, info.name, info.title, result.count, info.properties
    )
