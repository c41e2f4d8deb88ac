"""The SQL on FHIR v2 conformance suite (134 tests) on every engine of ``ENGINES``.

Source and comparison rules: ``../shared/conformance/sql-on-fhir-v2/README.md``:
rows compare ignoring order, every column present, numbers by exact value,
``collection`` columns as ordered lists; ``expectError`` tests must raise
:class:`~cmio.views.ViewDefinitionError`; ``expectColumns`` is the exact column
order. Shareable and experimental tests are counted separately (printed in the
terminal summary). Known failures are listed in :data:`FAILURES` with the reason
and run as strict xfails.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

import pytest

from cmio.views import ViewDefinitionError
from tests.views.conftest import ENGINES, SHARED, ViewRunner

SUITE = SHARED / "conformance" / "sql-on-fhir-v2"

FAILURES: dict[tuple[str, str, str], str] = {}
"""(engine, file, test title) -> why that engine does not pass it (strict xfail)."""


class Case(NamedTuple):
    file: str
    title: str
    tag: str
    resources: list[dict[str, Any]]
    test: dict[str, Any]


@cache
def _cases() -> tuple[Case, ...]:
    cases = []
    for path in sorted(SUITE.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
        file_tags = data.get("tags", [])
        for test in data["tests"]:
            tags = test.get("tags", file_tags)
            tag = "experimental" if "experimental" in tags else "shareable"
            cases.append(Case(path.name, test["title"], tag, data["resources"], test))
    return tuple(cases)


def _params() -> list[Any]:
    params = []
    for engine in ENGINES:
        for case in _cases():
            # Spark: one JVM and batched jobs, still minutes on a busy 2-core machine
            marks = [pytest.mark.slow] if engine == "spark" else []
            reason = FAILURES.get((engine, case.file, case.title))
            if reason is not None:
                marks.append(pytest.mark.xfail(reason=reason, strict=True))
            params.append(
                pytest.param(engine, case, id=f"{engine}:{case.file}:{case.title}", marks=marks)
            )
    return params


def _norm(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | Decimal | float):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return ["number", str(number.normalize())]
    if isinstance(value, list):
        return [_norm(v) for v in value]
    raise AssertionError(f"unexpected cell {value!r}")


def _rows(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps({k: _norm(v) for k, v in row.items()}, sort_keys=True) for row in rows)


def _resources(case: Case) -> list[dict[str, Any]]:
    # The fixtures were read with Decimal floats (exact expectations); engines get plain JSON.
    return json.loads(json.dumps(case.resources, default=str), parse_float=float)


@pytest.mark.parametrize(("engine", "case"), _params())
def test_conformance(
    engine: str,
    case: Case,
    request: pytest.FixtureRequest,
    conformance_tally: Counter[tuple[str, str, str]],
) -> None:
    runner: ViewRunner = request.getfixturevalue(f"view_runner_{engine}")
    test = case.test
    view = json.loads(json.dumps(test["view"], default=float))
    conformance_tally[(engine, case.tag, "failed")] += 1
    if test.get("expectError"):
        with pytest.raises(ViewDefinitionError):
            runner(view, _resources(case))
    else:
        table = runner(view, _resources(case))
        if "expectColumns" in test:
            assert table.column_names == test["expectColumns"]
        rows = table.to_pylist()
        if "expectCount" in test:
            assert len(rows) == test["expectCount"]
        if "expect" in test:
            assert _rows(rows) == _rows(test["expect"])
    conformance_tally[(engine, case.tag, "failed")] -= 1
    conformance_tally[(engine, case.tag, "passed")] += 1


def test_suite_size() -> None:
    cases = _cases()
    assert len(cases) == 134
    assert Counter(c.tag for c in cases) == {"shareable": 123, "experimental": 11}
