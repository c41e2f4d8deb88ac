"""RxNorm from the monthly full release's RRF files (``RXNCONSO.RRF``, ``RXNREL.RRF``).

Only ``SAB=RXNORM`` content is read (the normalized names; other sources in the
release carry their own licences). A concept is an RXCUI; its display is the
atom with its main term type (IN, PIN, MIN, SCD, SBD, SCDC, SBDC, BN, DF, GPCK,
BPCK...), SY/TMSY/PSN atoms become designations, ``TTY`` is a property, and
every RXNORM relationship becomes a property named by its RELA whose value is
the related RXCUI: in an RXNREL row, RXCUI2 has relationship RELA to RXCUI1
(https://www.nlm.nih.gov/research/umls/rxnorm/docs/techdoc.html, section 12).
Suppressed atoms (SUPPRESS O, Y or E) are skipped; a concept with only
suppressed atoms is inactive. FHIR system ``http://www.nlm.nih.gov/research/umls/rxnorm``
(https://terminology.hl7.org/CodeSystem-v3-rxNorm.html).
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from itertools import groupby
from pathlib import Path

from cmio.terminology.concepts import Concept, ConceptStore, Designation, SystemInfo
from cmio.terminology.loaders.common import LoadResult, Progress, fingerprint_files, load_system

__all__ = ["RXNORM_URL", "find_files", "load_rxnorm", "rxnorm_concepts", "rxnorm_version"]

RXNORM_URL = "http://www.nlm.nih.gov/research/umls/rxnorm"
_CONSO_COLUMNS = 18
_REL_COLUMNS = 16
_SYNONYMS = frozenset({"SY", "TMSY", "PSN"})
_SUPPRESSED = frozenset({"O", "Y", "E"})
_FORMAT = "cmio-rxnorm-1"
_DATE = re.compile(r"(\d{8})")
PROPERTIES: tuple[tuple[str, str, str | None], ...] = (
    ("TTY", "code", "RxNorm term type of the concept's main atom"),
    ("has_ingredient", "code", "Ingredient (RXCUI)"),
    ("has_precise_ingredient", "code", "Precise ingredient (RXCUI)"),
    ("tradename_of", "code", "The ingredient a brand name is a tradename of (RXCUI)"),
    ("has_tradename", "code", "Brand name or branded drug (RXCUI)"),
    ("consists_of", "code", "Component (RXCUI)"),
    ("constitutes", "code", "Drug this component is part of (RXCUI)"),
    ("has_dose_form", "code", "Dose form (RXCUI)"),
    ("ingredient_of", "code", "Concept having this ingredient (RXCUI)"),
)


def find_files(folder: Path) -> tuple[Path, Path]:
    """``RXNCONSO.RRF`` and ``RXNREL.RRF`` under ``folder`` (searched recursively)."""
    found = []
    for name in ("RXNCONSO.RRF", "RXNREL.RRF"):
        paths = sorted(p for p in folder.rglob(name) if p.is_file())
        if len(paths) != 1:
            raise ValueError(f"{folder}: expected one {name}, found {len(paths)}")
        found.append(paths[0])
    return found[0], found[1]


def rxnorm_version(conso: Path) -> str:
    """The release date (``MMDDYYYY``) from the release folder name ``RxNorm_full_MMDDYYYY``."""
    for part in reversed(conso.resolve().parts[:-1]):
        match = _DATE.search(part)
        if match:
            return match.group(1)
    raise ValueError(
        f"{conso}: cannot tell the release date from the folder name; pass the version"
    )


def _rows(path: Path, width: int) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.rstrip("\r\n").split("|")
            if fields == [""]:
                continue
            if len(fields) != width + 1 or fields[-1] != "":
                raise ValueError(
                    f"{path.name}:{number}: expected {width} '|'-terminated fields, got {len(fields) - 1}"
                )
            yield fields


def _stage(conso: Path, rel: Path, db: sqlite3.Connection) -> None:
    db.executescript(
        """PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
        CREATE TABLE a (cui INTEGER, aui INTEGER, tty TEXT, str TEXT, suppressed INTEGER);
        CREATE TABLE r (cui INTEGER, rela TEXT, other INTEGER);"""
    )
    db.executemany(
        "INSERT INTO a VALUES (?, ?, ?, ?, ?)",
        (
            (int(f[0]), int(f[7]), f[12], f[14], f[16] in _SUPPRESSED)
            for f in _rows(conso, _CONSO_COLUMNS)
            if f[11] == "RXNORM"
        ),
    )
    db.executemany(
        "INSERT INTO r VALUES (?, ?, ?)",
        (
            (int(f[4]), f[7], int(f[0]))
            for f in _rows(rel, _REL_COLUMNS)
            if f[10] == "RXNORM" and f[2] == "CUI" and f[6] == "CUI" and f[7]
        ),
    )
    db.execute("CREATE INDEX a_cui ON a (cui, aui)")
    db.execute("CREATE INDEX r_cui ON r (cui, rela, other)")


def rxnorm_concepts(conso: Path, rel: Path, workdir: Path) -> Iterator[Concept]:
    """RxNorm concepts in RXCUI order (staged in a temporary SQLite file)."""
    with closing(sqlite3.connect(workdir / "rrf-stage.db")) as db:
        _stage(conso, rel, db)
        atoms = groupby(
            db.execute("SELECT cui, tty, str, suppressed FROM a ORDER BY cui, aui"),
            key=lambda r: r[0],
        )
        relations = groupby(
            db.cursor().execute("SELECT cui, rela, other FROM r ORDER BY cui, rela, other"),
            key=lambda r: r[0],
        )
        pending = next(relations, None)
        for cui, group in atoms:
            rows = list(group)
            live = [r for r in rows if not r[3]]
            pool = live or rows
            main = next((r for r in pool if r[1] not in _SYNONYMS), pool[0])
            props: list[tuple[str, str | int | float | bool]] = [("TTY", main[1])]
            while pending is not None and pending[0] <= cui:
                if pending[0] == cui:
                    props.extend((r[1], str(r[2])) for r in pending[1])
                pending = next(relations, None)
            yield Concept(
                code=str(cui),
                display=main[2],
                active=bool(live),
                properties=tuple(dict.fromkeys(props)),
                designations=tuple(
                    Designation(r[2], "en", RXNORM_URL, r[1])
                    for r in live
                    if r is not main and r[1] in _SYNONYMS
                ),
            )


def load_rxnorm(
    store: ConceptStore,
    folder: Path,
    *,
    version: str | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> tuple[LoadResult, SystemInfo]:
    """Load an RxNorm full release into the concept store (skipped when already loaded)."""
    conso, rel = find_files(folder)
    info = SystemInfo(
        url=RXNORM_URL,
        version=version or rxnorm_version(conso),
        name="RxNorm",
        title="RxNorm",
        properties=PROPERTIES,
        hierarchy_meaning=None,
    )
    fingerprint = fingerprint_files([conso, rel], _FORMAT)
    with tempfile.TemporaryDirectory(prefix="cmio-rxnorm-") as tmp:
        result = load_system(
            store,
            info,
            lambda: rxnorm_concepts(conso, rel, Path(tmp)),
            fingerprint,
            progress,
            force=force,
        )
    return result, SystemInfo(
        info.url, info.version, info.name, info.title, result.count, info.properties, None
    )
