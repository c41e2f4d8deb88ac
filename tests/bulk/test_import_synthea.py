"""Import the Synthea test data (53 Bundles, support Bundles, partial NDJSON) on both backends."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from cmio.bulk.importer import import_paths
from cmio.bulk.report import ImportSummary
from cmio.indexing import SearchIndexer
from cmio.indexing.compartments import COMPARTMENT_PARAM
from cmio.model import Model
from cmio.store import open_repository
from cmio.store.base import Repository, SearchClause, SearchQuery

from .conftest import REFERENCE_RE, new_database


@dataclass
class Imported:
    url: str
    repository: Repository
    summary: ImportSummary
    inputs: list[Path]


def distinct_ids(paths: list[Path]) -> dict[str, set[str]]:
    """Distinct ids per type in the input, read independently of the importer."""
    out: dict[str, set[str]] = {}
    for root in paths:
        for path in sorted(root.rglob("*")):
            if path.suffix == ".json":
                bundle = orjson.loads(path.read_bytes())
                for entry in bundle["entry"]:
                    resource = entry["resource"]
                    out.setdefault(resource["resourceType"], set()).add(entry["fullUrl"][9:])
            elif path.suffix == ".ndjson" and path.name != "log.ndjson":
                for line in path.read_bytes().splitlines():
                    resource = orjson.loads(line)
                    out.setdefault(resource["resourceType"], set()).add(resource["id"])
    return out


@pytest.fixture(scope="module")
def imported(
    backend: str,
    synthea: Path,
    model: Model,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Imported]:
    url = new_database(backend, request, tmp_path_factory.mktemp("synthea"))
    inputs = [synthea / "bundles", synthea / "support", synthea / "bulk-ndjson-10-patients-partial"]
    report = tmp_path_factory.mktemp("report") / "report.ndjson"
    summary = import_paths(url, inputs, model=model, report_path=report)
    repository = open_repository(url, indexer=SearchIndexer(model))
    try:
        yield Imported(url, repository, summary, inputs)
    finally:
        repository.close()


def stored_counts(repository: Repository) -> Counter[str]:
    return Counter(r.type for r in repository.iter_current())


def test_counts_equal_distinct_input_ids(imported: Imported) -> None:
    expected = {t: len(ids) for t, ids in distinct_ids(imported.inputs).items()}
    assert dict(stored_counts(imported.repository)) == expected
    summary = imported.summary
    assert summary.rejected == 0
    assert summary.report_path is None
    assert {t: c.created for t, c in summary.by_type.items()} == expected
    assert any("log.ndjson" in s for s in summary.skipped_files)
    # shared Organizations/Practitioners repeat across Bundles: stored once
    assert summary.by_type["Organization"].unchanged > 0


def test_references_are_rewritten_and_resolve(imported: Imported) -> None:
    ids: set[tuple[str, str]] = set()
    refs: list[tuple[bytes, bytes]] = []
    for stored in imported.repository.iter_current():
        assert stored.data is not None
        ids.add((stored.type, stored.id))
        assert b'"reference":"urn:' not in stored.data
        assert b"?identifier=" not in stored.data
        refs.extend(REFERENCE_RE.findall(stored.data))
    assert len(refs) > 50_000
    missing = {(t.decode(), i.decode()) for t, i in refs} - ids
    # only targets in the Observation/DiagnosticReport files absent from the partial NDJSON set
    assert {t for t, _ in missing} <= {"Observation", "DiagnosticReport"}


def test_bundle_ids_are_kept(imported: Imported, synthea: Path) -> None:
    bundle = orjson.loads(next((synthea / "bundles").glob("Brent_*.json")).read_bytes())
    for entry in bundle["entry"][:20]:
        resource = entry["resource"]
        got = imported.repository.read(resource["resourceType"], entry["fullUrl"][9:])
        assert got.version == 1


def test_compartment_index_covers_imported_resources(imported: Imported, synthea: Path) -> None:
    path = next((synthea / "bundles").glob("Brent_*.json"))
    bundle = orjson.loads(path.read_bytes())
    patient = next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    encounters = sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    query = SearchQuery(
        "Encounter", (SearchClause(COMPARTMENT_PARAM, (f"Patient|{patient}",)),), count=0
    )
    assert imported.repository.search(query).total == encounters


def test_rerun_adds_nothing(imported: Imported, model: Model) -> None:
    with imported.repository.read_transaction() as tx:
        history_before = tx.history(count=1).total
    again = import_paths(
        imported.repository, imported.inputs, model=model, database_url=imported.url, workers=0
    )
    totals = again.totals()
    assert (totals.created, totals.updated, totals.rejected) == (0, 0, 0)
    assert totals.unchanged == imported.summary.resources
    with imported.repository.read_transaction() as tx:
        assert tx.history(count=1).total == history_before
