"""The five eCQMs give identical per-patient results on DuckDB, PostgreSQL and Spark over a
synthetic health system (``cmio synth``, 200 patients, generated once per module)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cmio.measures import MeasureResult, Period, builtin_measures, evaluate_measures
from cmio.synth.generate import SynthConfig, generate

# cmio synth simulates the year ending 2025-12-31
PERIOD = Period.parse("2025-01-01/2025-12-31")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("measures-synth") / "synth"
    generate(SynthConfig(patients=200, out=out, seed=7))
    return out


@pytest.fixture(scope="module")
def duckdb_results(synth: Path) -> list[MeasureResult]:
    return evaluate_measures(list(builtin_measures().values()), PERIOD, synth)


def _rows(results: list[MeasureResult]) -> dict[str, list[dict[str, Any]]]:
    return {r.measure.id: r.members.sort_by("patient_id").to_pylist() for r in results}


def test_measures_find_populations_in_the_synthetic_system(
    duckdb_results: list[MeasureResult],
) -> None:
    for result in duckdb_results:
        assert result.counts["denominator"] > 0, result.measure.id
        assert 0 < result.counts["numerator"] < result.counts["denominator"], result.measure.id
        strata = result.strata.to_pylist()
        assert {r["stratifier"] for r in strata} == set(result.measure.stratifiers)
        for name in result.measure.stratifiers:
            part = [r for r in strata if r["stratifier"] == name]
            total = sum(r["initial_population"] for r in part)
            assert total == result.counts["initial_population"], (result.measure.id, name)
        clinicians = result.members["strat_clinician"].to_pylist()
        assert all(c.startswith("Practitioner/") for c in clinicians)


@pytest.mark.postgres
def test_postgres_matches_duckdb_per_patient(
    synth: Path, duckdb_results: list[MeasureResult], postgres_url: str
) -> None:
    results = evaluate_measures(
        list(builtin_measures().values()), PERIOD, synth, "postgres", database=postgres_url
    )
    assert _rows(results) == _rows(duckdb_results)


@pytest.mark.slow
@pytest.mark.usefixtures("spark_one_partition")
def test_spark_matches_duckdb_per_patient(synth: Path, duckdb_results: list[MeasureResult]) -> None:
    results = evaluate_measures(list(builtin_measures().values()), PERIOD, synth, "spark")
    assert _rows(results) == _rows(duckdb_results)
