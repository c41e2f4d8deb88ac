"""Search-index rows extracted in the import workers equal what the store would extract."""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.bulk.importer import import_paths
from cmio.indexing import SearchIndexer
from cmio.indexing.tables import INDEX_TABLES
from cmio.model import Model
from cmio.store import open_repository


def _stored_rows(db: Path) -> dict[str, Counter[tuple[Any, ...]]]:
    conn = sqlite3.connect(db)
    try:
        out: dict[str, Counter[tuple[Any, ...]]] = {}
        for t in INDEX_TABLES:
            names = ", ".join(["resource_type", "resource_id", "param", *(c[0] for c in t.columns)])
            out[t.name] = Counter(conn.execute(f"SELECT {names} FROM {t.name}").fetchall())
        return out
    finally:
        conn.close()


def _expected_rows(db: Path, model: Model) -> dict[str, Counter[tuple[Any, ...]]]:
    indexer = SearchIndexer(model)
    out: dict[str, Counter[tuple[Any, ...]]] = {t.name: Counter() for t in INDEX_TABLES}
    repo = open_repository(f"sqlite:///{db}")
    try:
        for stored in repo.iter_current():
            assert stored.data is not None
            for table, rows in indexer.keyed_rows(orjson.loads(stored.data)).items():
                out[table].update(rows)
    finally:
        repo.close()
    return out


@pytest.mark.parametrize("workers", [0, 1])
def test_worker_rows_equal_store_rows(
    workers: int, synthea: Path, model: Model, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for bundle in sorted((synthea / "bundles").glob("*.json"))[:4]:
        shutil.copy(bundle, inputs / bundle.name)
    patient = {
        "resourceType": "Patient",
        "id": "p-cond",
        "identifier": [{"system": "urn:test", "value": "42"}],
        "name": [{"family": "Ünïcode", "given": ["Zoë"]}],
        "birthDate": "1961-02-03",
    }
    observation = {
        "resourceType": "Observation",
        "id": "o-cond",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient?identifier=urn:test|42"},
        "effectiveDateTime": "2024-03-04T05:06:07+02:00",
        "valueQuantity": {
            "value": 72,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
    (inputs / "Patient.ndjson").write_bytes(orjson.dumps(patient) + b"\n")
    (inputs / "Observation.ndjson").write_bytes(orjson.dumps(observation) + b"\n")
    db = tmp_path / "store.db"
    summary = import_paths(f"sqlite:///{db}", [inputs], model=model, workers=workers)
    assert summary.rejected == 0
    stored, expected = _stored_rows(db), _expected_rows(db, model)
    assert sum(sum(c.values()) for c in stored.values()) > 1000
    assert stored == expected
    refs = stored["reference_index"]
    assert refs[("Observation", "o-cond", "subject", "Patient", "p-cond", None)] == 1
    dates = stored["date_index"]
    assert (
        dates[
            (
                "Observation",
                "o-cond",
                "date",
                "2024-03-04T03:06:07.000Z",
                "2024-03-04T03:06:08.000Z",
            )
        ]
        == 1
    )


def test_parser_hands_rows_with_the_ready_resources(model: Model) -> None:
    from cmio.bulk.parser import ChunkParser
    from cmio.bulk.sources import Task

    indexer = SearchIndexer(model)
    lines = [
        {"resourceType": "Patient", "id": "a", "gender": "female"},
        {"resourceType": "Patient", "id": "b", "birthDate": "not a date"},
        {"resourceType": "Patient", "id": "c", "name": [{"family": "Smith"}]},
    ]
    data = b"\n".join(orjson.dumps(r) for r in lines)
    parser = ChunkParser(model.resource_types, lambda r: (), None, indexer.keyed_rows)
    task = Task(0, 0, "ndjson", "x.ndjson", "x.ndjson", 0, len(data), 1, data, len(data))
    result = parser.run(task)
    assert result.count == 3 and result.index is not None and len(result.index) == 3
    assert ("Patient", "c", "family", "smith", "Smith") in result.index[2]["string_index"]
    assert result.index[2] == indexer.keyed_rows(lines[2])
    assert "date_index" not in result.index[1]
