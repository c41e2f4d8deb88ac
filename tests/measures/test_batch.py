"""Evaluating several measures at once on DuckDB (shared steps computed once, value sets
as constant code lists) gives per patient what the plain per-measure queries give."""

from __future__ import annotations

from typing import Any

import duckdb

from cmio.measures import MeasureResult, Period, builtin_measures
from cmio.measures.definition import common_library, measure_from_yaml
from cmio.measures.engines import DuckDbEngine
from cmio.measures.runner import MeasureRunner
from cmio.measures.sql import expand_macros, measure_query, row_wise, shared_steps
from tests.measures import test_cms2, test_cms122, test_cms125, test_cms130, test_cms165
from tests.measures.builders import PERIOD


class _PlainEngine(DuckDbEngine):
    """DuckDB without the batch optimizations: ``EXISTS`` over ``mp_valueset``, every
    measure one query with all its steps."""

    constant_valuesets = False

    def __getattribute__(self, name: str) -> Any:
        if name in ("create_temporary", "drop_temporary"):
            raise AttributeError(name)
        return super().__getattribute__(name)


def _rows(results: list[MeasureResult]) -> dict[str, Any]:
    return {
        r.measure.id: (
            r.members.sort_by("patient_id").to_pylist(),
            dict(r.counts),
            r.score,
            r.strata.to_pylist(),
        )
        for r in results
    }


def _evaluate(engine: DuckDbEngine, resources: list[dict[str, Any]]) -> list[MeasureResult]:
    try:
        runner = MeasureRunner(engine)
        return runner.evaluate(list(builtin_measures().values()), Period.parse(PERIOD), resources)
    finally:
        engine.close()


def _prefixed(value: Any, prefix: str) -> Any:
    if isinstance(value, dict):
        out = {k: _prefixed(v, prefix) for k, v in value.items()}
        if out.get("resourceType") == "Patient":
            out["id"] = f"{prefix}-{out['id']}"
        return out
    if isinstance(value, list):
        return [_prefixed(v, prefix) for v in value]
    if isinstance(value, str) and value.startswith("Patient/"):
        return f"Patient/{prefix}-{value[8:]}"
    return value


def test_batch_equals_plain_queries_on_the_hand_populations() -> None:
    """The five hand-written populations together (patient ids prefixed per fixture)."""
    resources: list[dict[str, Any]] = []
    for fixture in (test_cms122, test_cms125, test_cms130, test_cms165, test_cms2):
        prefix = fixture.__name__.rsplit("_", 1)[-1]
        resources += [_prefixed(r, prefix) for r in fixture.population()[0]]
    batch = _evaluate(DuckDbEngine(), resources)
    plain = _evaluate(_PlainEngine(), resources)
    assert _rows(batch) == _rows(plain)
    for result in batch:  # each measure finds its own fixture's patients
        own = result.measure.id.lower()
        assert any(p.startswith(own) for p in result.patients("initial-population"))


def test_shared_steps_leave_out_a_measure_own_define_and_what_reads_it() -> None:
    library = common_library()
    period = Period.parse(PERIOD)
    base = builtin_measures()["CMS130"]
    own = measure_from_yaml(
        {
            "id": "OWN",
            "populations": dict(base.populations),
            "define": {
                **base.define,
                "procedures": "SELECT patient_id, 'x' AS code FROM mp_patient",
            },
            "stratifiers": ["sex"],
        }
    )
    compiled = [measure_query(m, period, library) for m in (base, own)]
    names = [name for name, _ in shared_steps(compiled)]
    assert "procedures" not in names  # the two measures define it differently
    assert "hospice" not in names  # reads procedures
    assert "conditions" in names and "patient_age" in names
    assert "strat_sex_per_patient" in names
    assert names.index("patient_age") < names.index("frailty_exclusion")
    # each remaining query still defines what it does not share
    assert "procedures AS (" in compiled[1].without(names)


def test_row_wise_steps() -> None:
    assert row_wise("SELECT a FROM t WHERE b = 1 UNION ALL SELECT a FROM u")
    for sql in (
        "SELECT DISTINCT a FROM t",
        "SELECT a FROM t GROUP BY a",
        "SELECT a FROM t UNION SELECT a FROM u",
        "SELECT ROW_NUMBER() OVER (ORDER BY a) FROM t",
    ):
        assert not row_wise(sql), sql


def test_constant_value_set_lists_are_never_null() -> None:
    """``{in:..}`` as constants is TRUE/FALSE exactly where the EXISTS form is, NULLs too."""
    period = Period.parse(PERIOD)
    members = {"A": [("s1", "c1"), ("s2", "c2")], "B": [], "C": [("s1", "c3")]}
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES ('s1', 'c1'), ('s1', 'c2'), ('s2', 'c2'),"
        " (NULL, 'c1'), ('s1', NULL), (NULL, NULL), ('s9', 'c3'), ('s1', 'c3')) AS v(system, code)"
    )
    con.execute(
        "CREATE TABLE mp_valueset AS SELECT * FROM (VALUES ('A', 's1', 'c1'), ('A', 's2', 'c2'),"
        " ('C', 's1', 'c3')) AS v(valueset, system, code)"
    )
    for names in ("A", "B", "A,C"):
        sql = f"SELECT {{in:t:{names}}}, NOT {{in:t:{names}}} FROM t ORDER BY ALL"
        exists = con.execute(expand_macros(sql, period)).fetchall()
        constant = con.execute(expand_macros(sql, period, members=members)).fetchall()
        assert constant == exists, names
        assert all(v is not None for row in constant for v in row)


def test_a_runner_expands_its_value_sets_once_across_periods(monkeypatch: Any) -> None:
    """Trend points (one evaluation per period) reuse the runner's expansion table."""
    from cmio.measures import runner as runner_module

    calls: list[list[str]] = []
    real = runner_module.expand_valuesets

    def counting(names: Any, *args: Any) -> Any:
        calls.append(list(names))
        return real(names, *args)

    monkeypatch.setattr(runner_module, "expand_valuesets", counting)
    engine = DuckDbEngine()
    try:
        runner = MeasureRunner(engine)
        measure = builtin_measures()["CMS122"]
        for month in ("01-31", "06-30", "12-31"):
            period = Period.parse(f"2026-01-01/2026-{month}")
            [result] = runner.evaluate([measure], period, [])
            assert result.counts["initial_population"] == 0
    finally:
        engine.close()
    assert len(calls) == 1
