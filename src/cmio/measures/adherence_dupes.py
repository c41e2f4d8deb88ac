"""Suspected duplicate patients: blocking on birth date and a phonetic key, then scoring.

Blocking (candidate pairs): same ``birthDate`` and same American Soundex of the
normalized family name (https://www.archives.gov/research/census/soundex). Each
candidate pair is scored (weights sum to 1): given name equal 0.35 (same first
initial only: 0.15), family name equal 0.25 (phonetic match only: 0.1), gender
equal 0.1, phone (last 10 digits) equal 0.2, postal code (first 5) equal 0.1.
Pairs scoring at least :data:`THRESHOLD` are suspected duplicates. Names are
normalized by Unicode decomposition, dropping accents, case and non-letters.
"""

from __future__ import annotations

import re
import unicodedata
from types import MappingProxyType
from typing import Any

import pyarrow as pa

from cmio.measures.sqlengine import SqlEngine

__all__ = [
    "PAIRS_SQL",
    "THRESHOLD",
    "duplicate_patients",
    "normalize",
    "patient_view",
    "prepare_patients",
    "soundex",
]

THRESHOLD = 0.6
"""Minimum score of a suspected duplicate pair."""

_CODES = MappingProxyType(
    {**dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"),
          **dict.fromkeys("dt", "3"), "l": "4", **dict.fromkeys("mn", "5"), "r": "6"}
)  # fmt: skip
_NOT_LETTER = re.compile(r"[^a-z]")
_NOT_DIGIT = re.compile(r"\D")


def normalize(name: str | None) -> str:
    """Lower-case ASCII letters of ``name`` (accents dropped)."""
    if not name:
        return ""
    decomposed = unicodedata.normalize("NFKD", name)
    return _NOT_LETTER.sub(
        "", "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    )


def soundex(name: str | None) -> str:
    """American Soundex of ``name`` (``""`` for no letters), e.g. Robert -> R163."""
    letters = normalize(name)
    if not letters:
        return ""
    out = letters[0].upper()
    last = _CODES.get(letters[0], "")
    for c in letters[1:]:
        code = _CODES.get(c, "")
        if code and code != last:
            out += code
            if len(out) == 4:
                break
        if c not in "hw":
            last = code
    return out.ljust(4, "0")


def patient_view() -> dict[str, Any]:
    """The ViewDefinition of the Patient columns the matcher reads."""

    def col(name: str, path: str) -> dict[str, str]:
        return {"name": name, "path": path}

    return {"resourceType": "ViewDefinition", "resource": "Patient", "select": [{"column": [
        col("id", "id"), col("birth_date", "birthDate"), col("gender", "gender"),
        col("family", "name.family.first()"), col("given", "name.given.first()"),
        col("phone", "telecom.where(system = 'phone').value.first()"),
        col("postal", "address.postalCode.first()"),
    ]}]}  # fmt: skip


def prepare_patients(table: pa.Table) -> pa.Table:
    """Add the matching keys: normalized names, Soundex, phone digits, 5-digit postal code."""
    family = table["family"].to_pylist()
    given = table["given"].to_pylist()
    phones = [_NOT_DIGIT.sub("", p or "")[-10:] or None for p in table["phone"].to_pylist()]
    postal = [(p or "")[:5] or None for p in table["postal"].to_pylist()]
    ids = table["id"].to_pylist()
    rank = {v: i for i, v in enumerate(sorted({i for i in ids if i is not None}))}
    columns = {
        "id": table["id"], "id_rank": pa.array([rank.get(i) for i in ids], pa.int64()),
        "birth_date": table["birth_date"], "gender": table["gender"],
        "family_norm": pa.array([normalize(f) or None for f in family], pa.string()),
        "family_key": pa.array([soundex(f) or None for f in family], pa.string()),
        "given_norm": pa.array([normalize(g) or None for g in given], pa.string()),
        "phone_digits": pa.array(phones, pa.string()),
        "postal5": pa.array(postal, pa.string()),
    }  # fmt: skip
    return pa.table(columns)


def _same(column: str) -> str:
    return f"(a.{column} IS NOT NULL AND a.{column} = b.{column})"


PAIRS_SQL = f"""
WITH pairs AS (
  SELECT a.id AS patient_a, b.id AS patient_b, a.birth_date,
    {_same("given_norm")} AS same_given,
    (a.given_norm IS NOT NULL AND b.given_norm IS NOT NULL
     AND SUBSTRING(a.given_norm, 1, 1) = SUBSTRING(b.given_norm, 1, 1)) AS same_initial,
    {_same("family_norm")} AS same_family, {_same("gender")} AS same_gender,
    {_same("phone_digits")} AS same_phone, {_same("postal5")} AS same_postal
  FROM dq_patients AS a JOIN dq_patients AS b
    ON a.birth_date = b.birth_date AND a.family_key = b.family_key AND a.id_rank < b.id_rank
  WHERE a.birth_date IS NOT NULL AND a.family_key IS NOT NULL
), scored AS (
  SELECT *,
      CASE WHEN same_given THEN 35 WHEN same_initial THEN 15 ELSE 0 END
      + CASE WHEN same_family THEN 25 ELSE 10 END
      + CASE WHEN same_gender THEN 10 ELSE 0 END
      + CASE WHEN same_phone THEN 20 ELSE 0 END
      + CASE WHEN same_postal THEN 10 ELSE 0 END AS points
  FROM pairs
)
SELECT patient_a, patient_b, birth_date, same_given, same_family, same_gender, same_phone,
  same_postal, CAST(points AS DOUBLE) / 100 AS score
FROM scored WHERE points >= {round(THRESHOLD * 100)}
"""
"""The scored candidate pairs of ``dq_patients`` (:func:`prepare_patients`' table) at or
above :data:`THRESHOLD`, each pair once (``a.id_rank < b.id_rank``; DuckDB SQL)."""


def duplicate_patients(engine: SqlEngine) -> pa.Table:
    """Suspected duplicate pairs among ``dq_patients`` (loaded by the caller)."""
    engine.create("dq_out_duplicates", PAIRS_SQL)
    return engine.query("SELECT * FROM dq_out_duplicates ORDER BY patient_a, patient_b")
