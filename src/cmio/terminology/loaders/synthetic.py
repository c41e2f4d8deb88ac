"""A SNOMED CT-shaped synthetic release, written as RF2 Snapshot files.

For load and ``$expand`` benchmarks at SNOMED scale without the licensed
release: concepts under the real root (138875005) and top-level hierarchies,
with valid SCTIDs (https://confluence.ihtsdotools.org/display/DOCRELFMT/6.1+SCTID+Data+Type),
an FSN and one or two synonyms each (US English language reference set marks the
preferred one), a polyhierarchy of depth up to about 20 (extra parents are mostly
siblings of the first parent, as in SNOMED's defining relationships) and
non-is-a attribute relationships, in the RF2 formats of
https://confluence.ihtsdotools.org/display/DOCRELFMT.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cmio.terminology.loaders import rf2

__all__ = [
    "ROOT",
    "TOP_LEVEL",
    "SyntheticStats",
    "synthetic_hierarchy",
    "write_synthetic_release",
]

ROOT = "138875005"
TOP_LEVEL = (
    ("404684003", "Clinical finding", "finding"),
    ("71388002", "Procedure", "procedure"),
    ("123037004", "Body structure", "body structure"),
    ("105590001", "Substance", "substance"),
    ("373873005", "Pharmaceutical / biologic product", "product"),
    ("410607006", "Organism", "organism"),
    ("363787002", "Observable entity", "observable entity"),
    ("243796009", "Situation with explicit context", "situation"),
    ("272379006", "Event", "event"),
    ("123038009", "Specimen", "specimen"),
    ("260787004", "Physical object", "physical object"),
    ("362981000", "Qualifier value", "qualifier value"),
    ("48176007", "Social context", "social concept"),
    ("308916002", "Environment or geographical location", "environment / location"),
    ("419891008", "Record artifact", "record artifact"),
    ("254291000", "Staging and scales", "staging scale"),
    ("370115009", "Special concept", "special concept"),
    ("78621006", "Physical force", "physical force"),
    ("900000000000441003", "SNOMED CT Model Component", "metadata"),
)
_WORDS = [
    "acute",
    "chronic",
    "left",
    "right",
    "upper",
    "lower",
    "partial",
    "complete",
    "primary",
    "secondary",
    "benign",
    "malignant",
    "congenital",
    "acquired",
    "recurrent",
    "severe",
    "mild",
    "anterior",
    "posterior",
    "lateral",
    "renal",
    "hepatic",
    "cardiac",
    "pulmonary",
    "cerebral",
    "dermal",
    "ocular",
    "gastric",
    "vascular",
    "neural",
    "disorder",
    "lesion",
    "injury",
    "structure",
    "procedure",
    "measurement",
    "finding",
    "infection",
    "inflammation",
    "deficiency",
    "excision",
    "repair",
    "biopsy",
    "imaging",
    "assessment",
]
_WEIGHTS = (40, 12, 8, 6, 5, 3, 3, 2, 2, 1, 1, 4, 1, 1, 1, 1, 1, 1, 1)
_ATTRIBUTES = ("363698007", "116676008", "246075003", "363714003", "260686004", "405813007")
_EFFECTIVE = "20250101"


@dataclass(frozen=True, slots=True)
class SyntheticStats:
    """What :func:`write_synthetic_release` wrote."""

    folder: Path
    concepts: int
    is_a: int
    relationships: int
    descriptions: int
    max_depth: int


def _ids(start: int, partition: str) -> Callable[[], str]:
    counter = [start]

    def next_id() -> str:
        counter[0] += 1
        return rf2.sctid(counter[0], partition)

    return next_id


def synthetic_hierarchy(
    concepts: int, is_a_per_concept: float = 1.7, seed: int = 1, local: float = 0.8
) -> tuple[list[tuple[int, ...]], list[int], list[int]]:
    """The is-a structure of the synthetic release, nodes numbered in creation order.

    Node 0 is the root, nodes 1..19 the top-level concepts. Every further node
    picks a top-level hierarchy (weighted like SNOMED CT's), a depth (triangular,
    mode 8, up to 20) and a parent there; extra parents are, with probability
    ``local``, a sibling of that parent, else any node one to three levels up.
    Parents always precede children, so the graph is acyclic.

    Returns:
        (parents of each node, top-level hierarchy index of each node, depth of each node).
    """
    rng = random.Random(seed)
    first = 1 + len(TOP_LEVEL)
    parents: list[tuple[int, ...]] = [()] + [(0,)] * len(TOP_LEVEL)
    top: list[int] = [0, *range(len(TOP_LEVEL))]
    depth: list[int] = [0] + [1] * len(TOP_LEVEL)
    by_level: list[list[list[int]]] = [[[i + 1]] for i in range(len(TOP_LEVEL))]
    children: list[list[int]] = [list(range(1, first))] + [[] for _ in TOP_LEVEL]
    weights = list(itertools.accumulate(_WEIGHTS))
    extra_rate = max(is_a_per_concept - 1.0, 0.0)
    for index in range(first, concepts):
        h = rng.choices(range(len(TOP_LEVEL)), cum_weights=weights)[0]
        levels = by_level[h]
        target = min(len(levels), max(1, int(rng.triangular(1, 20, 8))))
        while not levels[target - 1]:
            target -= 1
        parent = rng.choice(levels[target - 1])
        mine = [parent]
        extra = int(extra_rate) + (rng.random() < extra_rate - int(extra_rate))
        for _ in range(extra):
            grand = parents[parent]
            if grand and grand != (0,) and rng.random() < local:
                candidate = rng.choice(children[rng.choice(grand)])
            else:
                up = max(0, target - 1 - rng.randint(0, 2))
                candidate = rng.choice(levels[up]) if levels[up] else parent
            if candidate not in mine:
                mine.append(candidate)
        d = 1 + max(depth[p] for p in mine)
        parents.append(tuple(mine))
        top.append(h)
        depth.append(d)
        children.append([])
        for up in mine:
            children[up].append(index)
        while len(levels) < d:
            levels.append([])
        levels[d - 1].append(index)
    return parents, top, depth


def write_synthetic_release(
    folder: Path,
    concepts: int = 350_000,
    relationships: int = 1_200_000,
    is_a_per_concept: float = 1.7,
    seed: int = 1,
    date: str = _EFFECTIVE,
) -> SyntheticStats:
    """Write ``Snapshot/Terminology`` and ``Snapshot/Refset/Language`` RF2 files.

    Args:
        folder: release folder to create (International edition naming, ``_INT_``).
        concepts: number of concepts including the root and top-level concepts.
        relationships: total active relationship rows (is-a plus attribute rows).
        is_a_per_concept: average number of is-a parents of a non-root concept.
        seed: random seed (same arguments, same files).
        date: effectiveTime and file date.

    Returns:
        Counts of what was written.
    """
    rng = random.Random(seed)
    terminology = folder / "Snapshot" / "Terminology"
    language = folder / "Snapshot" / "Refset" / "Language"
    terminology.mkdir(parents=True, exist_ok=True)
    language.mkdir(parents=True, exist_ok=True)
    parents, top, depth = synthetic_hierarchy(concepts, is_a_per_concept, seed)
    concept_id = _ids(10_000_000, "00")
    codes: list[str] = [ROOT] + [t[0] for t in TOP_LEVEL]
    names: list[str] = ["SNOMED CT Concept"] + [t[1] for t in TOP_LEVEL]
    tags: list[str] = ["SNOMED RT+CTV3"] + [t[2] for t in TOP_LEVEL]
    for index in range(len(codes), len(parents)):
        codes.append(concept_id())
        words = rng.sample(_WORDS, 3)
        names.append(f"{words[0].capitalize()} {words[1]} {words[2]} {index}")
        tags.append(TOP_LEVEL[top[index]][2])
    suffix = f"INT_{date}.txt"
    with (terminology / f"sct2_Concept_Snapshot_{suffix}").open("w", newline="") as fh:
        fh.write("\t".join(rf2.CONCEPT_COLUMNS) + "\r\n")
        for i, code in enumerate(codes):
            status = rf2.FULLY_DEFINED if i % 3 == 0 else rf2.PRIMITIVE
            fh.write(f"{code}\t{date}\t1\t{rf2.INTERNATIONAL_MODULE}\t{status}\r\n")
    description_id = _ids(20_000_000, "01")
    member = [0]
    descriptions = 0
    with (
        (terminology / f"sct2_Description_Snapshot-en_{suffix}").open("w", newline="") as fh,
        (language / f"der2_cRefset_LanguageSnapshot-en_{suffix}").open("w", newline="") as lang,
    ):
        fh.write("\t".join(rf2.DESCRIPTION_COLUMNS) + "\r\n")
        lang.write("\t".join(rf2.LANGUAGE_COLUMNS) + "\r\n")

        def describe(code: str, kind: str, term: str, acceptability: str) -> None:
            did = description_id()
            fh.write(
                f"{did}\t{date}\t1\t{rf2.INTERNATIONAL_MODULE}\t{code}\ten\t{kind}\t{term}"
                "\t900000000000448009\r\n"
            )
            member[0] += 1
            lang.write(
                f"{member[0]:08x}-0000-4000-8000-000000000000\t{date}\t1\t"
                f"{rf2.INTERNATIONAL_MODULE}\t{rf2.US_ENGLISH}\t{did}\t{acceptability}\r\n"
            )

        for i, code in enumerate(codes):
            describe(code, rf2.FSN, f"{names[i]} ({tags[i]})", rf2.PREFERRED)
            describe(code, rf2.SYNONYM, names[i], rf2.PREFERRED)
            descriptions += 2
            if i % 2:
                describe(code, rf2.SYNONYM, names[i].replace(" ", " of ", 1), rf2.ACCEPTABLE)
                descriptions += 1
    relationship_id = _ids(30_000_000, "02")
    is_a = sum(len(p) for p in parents)
    attributes = max(relationships - is_a, 0)
    with (terminology / f"sct2_Relationship_Snapshot_{suffix}").open("w", newline="") as fh:
        fh.write("\t".join(rf2.RELATIONSHIP_COLUMNS) + "\r\n")
        tail = f"\t{rf2.INFERRED}\t{rf2.EXISTENTIAL}\r\n"
        for i, ups in enumerate(parents):
            for up in ups:
                fh.write(
                    f"{relationship_id()}\t{date}\t1\t{rf2.INTERNATIONAL_MODULE}\t{codes[i]}"
                    f"\t{codes[up]}\t0\t{rf2.IS_A}{tail}"
                )
        first = 1 + len(TOP_LEVEL)
        for n in range(attributes):
            source = rng.randrange(first, len(codes))
            target = rng.randrange(first, len(codes))
            fh.write(
                f"{relationship_id()}\t{date}\t1\t{rf2.INTERNATIONAL_MODULE}\t{codes[source]}"
                f"\t{codes[target]}\t{1 + n % 3}\t{_ATTRIBUTES[n % len(_ATTRIBUTES)]}{tail}"
            )
    return SyntheticStats(folder, len(codes), is_a, is_a + attributes, descriptions, max(depth))
