"""Data quality for the oversight pages: the score equals the adherence measures' own
score, pooled per type and source from their tables; checks, headlines, report."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cmio.indexing import SearchIndexer
from cmio.measures.adherence import Standards, data_quality, read_adherence
from cmio.measures.ehr_use import SqlEngine
from cmio.model import load_model
from cmio.oversight.data_quality import (
    coding_trend,
    data_quality_summary,
    headlines,
    pooled_scores,
    report_sections,
    summary_from_tables,
)
from cmio.oversight.period import ReportingPeriod
from cmio.reports import MetricRow, Table
from cmio.store import open_repository
from cmio.store.base import Repository
from cmio.terminology.factory import open_terminology

MR = {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                           "code": "MR"}]}, "value": "1"}  # fmt: skip


def resources() -> list[dict[str, Any]]:
    """Patients, observations and conditions from two sources, some off-standard."""
    out: list[dict[str, Any]] = []
    for i in range(4):
        patient: dict[str, Any] = {"resourceType": "Patient", "id": f"p{i}",
                                   "meta": {"source": "ehr"}, "gender": "female",
                                   "name": [{"family": f"F{i}"}], "birthDate": "1970-01-01"}  # fmt: skip
        if i % 2:
            patient["identifier"] = [MR]
        out.append(patient)
    for i in range(6):
        out.append({
            "resourceType": "Observation", "id": f"o{i}", "status": "final",
            "meta": {"source": "lab-a" if i % 2 else "lab-b"},
            "subject": {"reference": "Patient/p0"}, "effectiveDateTime": "2025-03-01",
            "code": {"coding": [{"system": "http://loinc.org" if i % 3 == 0 else "urn:x",
                                 "code": "2345-7"}]},
            "valueQuantity": {"value": 1, "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                              "code": "mg/dL" if i % 2 else "milligrams"},
        })  # fmt: skip
    for i in range(3):
        out.append({
            "resourceType": "Condition", "id": f"c{i}", "meta": {"source": "ehr"},
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://snomed.info/sct" if i else "urn:local",
                                 "code": "44054006"}]},
        })  # fmt: skip
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder: Path = tmp_path_factory.mktemp("dq")
    repository = open_repository(f"sqlite:///{folder / 'c.db'}",
                                 indexer=SearchIndexer(load_model()))  # fmt: skip
    with repository.transaction() as tx:
        for resource in resources():
            tx.create(resource, id=resource["id"])
    yield repository
    repository.close()


def _tables(repository: Repository) -> dict[str, Any]:
    service = open_terminology(repository, None)
    try:
        with SqlEngine("duckdb") as sql:
            return data_quality(read_adherence(repository), sql, service.resources, Standards())
    finally:
        service.close()


@pytest.fixture(scope="module")
def tables(store: Repository) -> dict[str, Any]:
    """The adherence measures' tables over the store (about 10 s: computed once)."""
    return _tables(store)


def test_scores_equal_the_measures(tables: dict[str, Any]) -> None:
    summary = summary_from_tables(tables, ReportingPeriod.year_of(date.today()))
    scores = {(r["resource_type"], r["source"]): r for r in tables["score"].to_pylist()}
    assert summary.overall.score == pytest.approx(scores[("*", "*")]["score"])
    assert summary.overall.coding == pytest.approx(scores[("*", "*")]["coding_share"])
    assert summary.overall.resources == 13
    by_type = {r.key: r for r in summary.by_type}
    assert set(by_type) == {"Patient", "Observation", "Condition"}
    # one source per type for Patient and Condition: the pooled score is the measures' row
    assert by_type["Patient"].score == pytest.approx(scores[("Patient", "ehr")]["score"])
    assert by_type["Condition"].score == pytest.approx(scores[("Condition", "ehr")]["score"])
    assert by_type["Observation"].coding == pytest.approx(2 / 6)
    assert by_type["Observation"].ucum == pytest.approx(3 / 6)
    by_source = {r.key: r for r in summary.by_source}
    assert set(by_source) == {"ehr", "lab-a", "lab-b"} and by_source["ehr"].resources == 7
    assert pooled_scores(tables, "*")[0] == summary.overall
    checks = {c.rule: c for c in summary.checks}
    coding = checks["Observation.code in a standard code system"]
    assert (coding.checked, coding.failing) == (6, 4)
    mrn = checks["Patient.identifier present"]
    assert (mrn.checked, mrn.failing) == (4, 2)
    assert summary.checks[0].failing == max(c.failing for c in summary.checks)


def test_headlines_and_report(store: Repository, tables: dict[str, Any]) -> None:
    period = ReportingPeriod.year_of(date.today())
    summary = data_quality_summary(store, period)  # the whole path, once
    assert summary == summary_from_tables(tables, period)
    (tile,) = headlines(summary)
    assert summary.overall.score is not None
    assert tile.value == f"{summary.overall.score:.1f}" and tile.href == "/workbench/data-quality"
    assert summary.checks[0].rule in tile.detail
    (section,) = report_sections(summary)
    assert isinstance(section.blocks[0], MetricRow)
    tables = [b for b in section.blocks if isinstance(b, Table)]
    assert [row[0] for row in tables[0].rows] == [r.key for r in summary.by_type]
    assert tables[-1].rows[0][0] == summary.checks[0].rule


def test_coding_trend_counts_as_the_measures(store: Repository, tables: dict[str, Any]) -> None:
    """Every Observation is dated 2025-03; Conditions carry no date (left out)."""
    elements = Standards().elements
    observed = [r for r in tables["coding"].to_pylist() if r["resource_type"] == "Observation"]
    expected = (sum(r["elements"] for r in observed), sum(r["standard_elements"] for r in observed))
    assert coding_trend(store, ReportingPeriod.parse("2025"), elements) == [("2025-03", *expected)]
    assert coding_trend(store, ReportingPeriod.parse("2025-04"), elements) == []


def test_an_empty_store(tmp_path: Path) -> None:
    """Nothing to measure: no score, the page and the overview still show."""
    repository = open_repository(f"sqlite:///{tmp_path / 'e.db'}")
    try:
        summary = data_quality_summary(repository, ReportingPeriod.year_of(date.today()))
    finally:
        repository.close()
    assert summary.overall.score is None and summary.by_type == () and summary.checks == ()
    assert headlines(summary)[0].value == "\u2014"
    assert report_sections(summary)[0].heading == "Data quality"


def test_shared_work_reads_the_store_once_for_every_period(store: Repository) -> None:
    """With shared work, each period's summary equals its own computation; the adherence
    tables and the coding counts per month are computed once for all periods."""
    from cmio.oversight.shared import SharedWork

    work = SharedWork(store)
    reads: list[str] = []
    original = work.once

    def counted(name: str, compute: Any) -> Any:
        return original(name, lambda: (reads.append(name), compute())[1])

    work.once = counted  # type: ignore[method-assign]
    for text in ("2025", "2025-03", "2024"):
        period = ReportingPeriod.parse(text)
        assert data_quality_summary(store, period, shared=work) == data_quality_summary(
            store, period
        )
    assert sorted(reads) == ["data-quality:months", "data-quality:tables"]
