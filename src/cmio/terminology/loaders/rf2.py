"""SNOMED CT RF2 release files: names, columns and constants.

RF2 (https://confluence.ihtsdotools.org/display/DOCRELFMT) files are UTF-8,
tab-separated, CRLF-terminated, with a header row and no quoting. Identifiers
(SCTIDs) end in a partition identifier and a Verhoeff check digit
(https://confluence.ihtsdotools.org/display/DOCRELFMT/6.1+SCTID+Data+Type).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "ACCEPTABLE",
    "CONCEPT_COLUMNS",
    "DESCRIPTION_COLUMNS",
    "EXISTENTIAL",
    "FSN",
    "FULLY_DEFINED",
    "GB_ENGLISH",
    "INFERRED",
    "INTERNATIONAL_MODULE",
    "IS_A",
    "LANGUAGE_COLUMNS",
    "PREFERRED",
    "PRIMITIVE",
    "RELATIONSHIP_COLUMNS",
    "SYNONYM",
    "US_ENGLISH",
    "US_MODULE",
    "read_rows",
    "sctid",
    "verhoeff_digit",
]

IS_A = "116680003"
FSN = "900000000000003001"
SYNONYM = "900000000000013009"
PREFERRED = "900000000000548007"
ACCEPTABLE = "900000000000549004"
US_ENGLISH = "900000000000509007"
GB_ENGLISH = "900000000000508004"
INFERRED = "900000000000011006"
EXISTENTIAL = "900000000000451002"
PRIMITIVE = "900000000000074008"
FULLY_DEFINED = "900000000000073002"
INTERNATIONAL_MODULE = "900000000000207008"
"""SNOMED CT core module: the International edition (https://snomed.info/sct/900000000000207008)."""
US_MODULE = "731000124108"
"""US National Library of Medicine extension module: the US edition."""

CONCEPT_COLUMNS = ("id", "effectiveTime", "active", "moduleId", "definitionStatusId")
DESCRIPTION_COLUMNS = (
    "id",
    "effectiveTime",
    "active",
    "moduleId",
    "conceptId",
    "languageCode",
    "typeId",
    "term",
    "caseSignificanceId",
)
RELATIONSHIP_COLUMNS = (
    "id",
    "effectiveTime",
    "active",
    "moduleId",
    "sourceId",
    "destinationId",
    "relationshipGroup",
    "typeId",
    "characteristicTypeId",
    "modifierId",
)
LANGUAGE_COLUMNS = (
    "id",
    "effectiveTime",
    "active",
    "moduleId",
    "refsetId",
    "referencedComponentId",
    "acceptabilityId",
)

_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_digit(digits: str) -> int:
    """The Verhoeff check digit to append to ``digits``."""
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _D[check][_P[(i + 1) % 8][int(ch)]]
    return _INV[check]


def sctid(item: int, partition: str = "00") -> str:
    """A short-format SCTID: item identifier, partition (00 concept, 01 description,
    02 relationship) and check digit."""
    body = f"{item}{partition}"
    return body + str(verhoeff_digit(body))


def read_rows(path: Path, columns: tuple[str, ...]) -> Iterator[list[str]]:
    """The data rows of an RF2 file, checking its header.

    Raises:
        ValueError: the header differs from the release format (names the file).
    """
    with path.open("r", encoding="utf-8", newline="") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
        if tuple(header) != columns:
            raise ValueError(
                f"{path.name}: header {header!r} is not the RF2 format {list(columns)!r}"
            )
        width = len(columns)
        for number, line in enumerate(fh, start=2):
            row = line.rstrip("\r\n").split("\t")
            if len(row) != width:
                if row == [""]:
                    continue
                raise ValueError(f"{path.name}:{number}: expected {width} columns, got {len(row)}")
            yield row
