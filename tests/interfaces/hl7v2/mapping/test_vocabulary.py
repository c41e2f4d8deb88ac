"""The vocabulary maps built into the mapping equal the IG's CSV vocabulary maps."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cmio.interfaces.hl7v2.mapping.vocabulary import VOCABULARY

IG = Path(__file__).resolve().parents[4].parent / "shared" / "specs" / "v2-to-fhir" / "codesystems"


def _ig_table(name: str) -> dict[str, tuple[str, str, str]]:
    with (IG / f"HL7 Concept Map_ {name} - Sheet1.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = [c.strip() for c in rows[1]]
    display = header.index("Display")
    system = [i for i, c in enumerate(header) if c == "Code System"][1]
    out: dict[str, tuple[str, str, str]] = {}
    for row in rows[2:]:
        row = row + [""] * (12 - len(row))
        code = row[0].strip().replace("\xa0", "")
        if code and code not in out and row[6].strip():
            out[code] = (row[6].strip(), row[display].strip(), row[system].strip())
        elif code and code not in out:
            out[code] = ("", "", "")
    return {k: v for k, v in out.items() if v[0]}


@pytest.mark.parametrize("name", sorted(VOCABULARY))
def test_vocabulary_equals_the_ig_map(name: str) -> None:
    assert dict(VOCABULARY[name]) == _ig_table(name)
