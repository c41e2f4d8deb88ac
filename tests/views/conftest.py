"""Fixtures for the view tests: one runner per engine, parametrized by name.

To add an engine to every engine-parametrized test (the conformance suite among
them): append its name to :data:`ENGINES` and define a fixture
``view_runner_<name>`` returning a :data:`ViewRunner`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cmio.fhirpath import FhirPathEngine
from cmio.model import Model, load_model
from cmio.views import (
    DuckDbRunner,
    MemoryEvaluator,
    load_view,
    ndjson_to_parquet,
    view_functions,
)
from cmio.views.typed import TypedLayoutUnsupported
from tests.views.postgres_fixture import view_runner_postgres  # noqa: F401
from tests.views.spark_fixture import spark, view_runner_spark  # noqa: F401

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
"""The shared folder beside the repository (read-only test material)."""

ViewRunner = Callable[[dict[str, Any], list[dict[str, Any]]], pa.Table]
"""Runs a ViewDefinition (JSON) over resources (dicts) and returns the rows."""

ENGINES: list[str] = ["memory", "duckdb", "duckdb_typed", "spark", "postgres"]
"""The engines every engine-parametrized test runs on."""

TALLY = pytest.StashKey[Counter[tuple[str, str, str]]]()
TYPED_TALLY = pytest.StashKey[Counter[str]]()


@pytest.fixture(scope="session")
def model() -> Model:
    """The R4 model, loaded once per session."""
    return load_model()


@pytest.fixture(scope="session")
def view_runner_memory(model: Model) -> ViewRunner:
    """The reference in-memory evaluator."""
    evaluator = MemoryEvaluator(FhirPathEngine(model, functions=view_functions()))
    return lambda view, resources: evaluator.run(load_view(view), resources)


@pytest.fixture(scope="session")
def view_runner_duckdb(model: Model) -> ViewRunner:
    """DuckDB over resources streamed as Arrow (2 threads: the test machine's cores)."""
    runner = DuckDbRunner(model, threads=2)
    return lambda view, resources: runner.run(view, resources)


@pytest.fixture(scope="session")
def typed_layout_tally(request: pytest.FixtureRequest) -> Counter[str]:
    """How many views :func:`view_runner_duckdb_typed` ran on typed columns vs the JSON."""
    tally: Counter[str] = Counter()
    request.config.stash[TYPED_TALLY] = tally
    return tally


@pytest.fixture(scope="session")
def view_runner_duckdb_typed(
    model: Model, tmp_path_factory: pytest.TempPathFactory, typed_layout_tally: Counter[str]
) -> ViewRunner:
    """DuckDB over the typed layout: the resources written as NDJSON, converted to typed
    Parquet (:mod:`cmio.views.typed`), and the view run on the Parquet and on the NDJSON
    (``layout="typed"`` where the view allows it, else on the JSON text); both answers
    must agree."""
    auto = DuckDbRunner(model, threads=2)
    typed_only = DuckDbRunner(model, threads=2, layout="typed")
    folders: dict[tuple[str, str], tuple[Path, Path | None]] = {}

    def sources(rtype: str, resources: list[dict[str, Any]]) -> tuple[Path, Path | None]:
        """The resources as NDJSON and (the view's type only) typed Parquet, made once per
        fixture of the suite (many tests share one)."""
        key = (rtype, json.dumps(resources, sort_keys=True))
        if key not in folders:
            folder = tmp_path_factory.mktemp("typed")
            ndjson, single, parquet = folder / "ndjson", folder / "single", folder / "parquet"
            ndjson.mkdir()
            single.mkdir()
            by_type: dict[str, list[str]] = {}
            for resource in resources:
                by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
            for name, lines in by_type.items():
                text = "\n".join(lines) + "\n"
                (ndjson / f"{name}.ndjson").write_text(text, encoding="utf-8")
                if name == rtype:
                    (single / f"{name}.ndjson").write_text(text, encoding="utf-8")
            typed = None
            if rtype in by_type:
                typed = ndjson_to_parquet(single, parquet, layout="typed", model=model)[0]
            folders[key] = (ndjson, typed)
        return folders[key]

    def run(view: dict[str, Any], resources: list[dict[str, Any]]) -> pa.Table:
        parsed = load_view(view)
        ndjson, parquet = sources(parsed.resource, resources)
        tables = []
        for source in (ndjson,) if parquet is None else (parquet, ndjson):
            try:
                tables.append(typed_only.run(parsed, source))
                typed_layout_tally["typed"] += 1
            except TypedLayoutUnsupported:
                typed_layout_tally["json"] += 1
                tables.append(auto.run(parsed, source))
        assert tables[-1].to_pylist() == tables[0].to_pylist()
        return tables[0]

    return run


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    """Each engine of :data:`ENGINES` in turn."""
    return str(request.param)


@pytest.fixture
def view_runner(request: pytest.FixtureRequest, engine_name: str) -> ViewRunner:
    """The runner of the current engine (fixture ``view_runner_<engine>``)."""
    runner: ViewRunner = request.getfixturevalue(f"view_runner_{engine_name}")
    return runner


@pytest.fixture(scope="session")
def conformance_tally(request: pytest.FixtureRequest) -> Counter[tuple[str, str, str]]:
    """Counts conformance results by (engine, tag, outcome); printed at the end of the run."""
    tally: Counter[tuple[str, str, str]] = Counter()
    request.config.stash[TALLY] = tally
    return tally


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the SQL on FHIR conformance counts per engine."""
    tally = config.stash.get(TALLY, None)
    if not tally:
        return
    terminalreporter.section("SQL on FHIR v2 conformance")
    for engine in sorted({key[0] for key in tally}):
        parts = []
        for tag in ("shareable", "experimental"):
            passed = tally[(engine, tag, "passed")]
            total = passed + tally[(engine, tag, "failed")]
            parts.append(f"{tag} {passed}/{total}")
        terminalreporter.write_line(f"{engine}: {', '.join(parts)}")
    typed = config.stash.get(TYPED_TALLY, None)
    if typed:
        terminalreporter.write_line(
            f"duckdb_typed: {typed['typed']} runs on typed columns, {typed['json']} on the JSON"
        )
