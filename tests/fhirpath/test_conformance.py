"""The official FHIRPath test suite, FHIR R4 edition (935 tests), run as data.

Source and format: ``../shared/conformance/fhirpath-r4/README.md``. Each test
evaluates its expression against its input resource (JSON twin of the XML) and
compares the result by type and value with the expected outputs; ``invalid``
tests expect an error (a syntax error for ``invalid="syntax"``); tests in
``strict`` mode are also statically checked against the input's resource type
(:meth:`FhirPathEngine.check`), as the reference runner does.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from cmio.fhirpath import FhirPathEngine, FhirPathError, FhirPathSyntaxError, TypedValue
from tests.fhirpath.conftest import SHARED

SUITE = SHARED / "conformance" / "fhirpath-r4"

EXCLUDED: dict[str, str] = {
    "HighBoundaryDateTimeMillisecond1": (
        "expects @2014-01-01T08:00:59.999-12:00, but @2014-01-01T08 has hour precision and the "
        "spec's own example gives highBoundary(17) = @2014-01-01T08:59:59.999 "
        "(https://build.fhir.org/fhirpath.html#highboundaryprecision-integer-decimal-date-datetime-time)"
    ),
    "HighBoundaryDateTimeMillisecond3": (
        "same expression and expectation as HighBoundaryDateTimeMillisecond1: the suite reads an "
        "hour-precision DateTime as minute precision"
    ),
}
"""Tests this engine does not pass, with the reason (run as strict xfail)."""


class Case(NamedTuple):
    name: str
    group: str
    expression: str
    inputfile: str | None
    invalid: str | None
    strict: bool
    ordered_functions: bool
    predicate: bool
    ordered: bool
    outputs: tuple[tuple[str | None, str], ...]


def _cases() -> list[Case]:
    root = ET.parse(SUITE / "tests-fhir-r4.xml").getroot()
    cases = []
    for group in root.iter("group"):
        for test in group.iter("test"):
            expression = test.find("expression")
            assert expression is not None and expression.text is not None
            cases.append(
                Case(
                    name=test.get("name", ""),
                    group=group.get("name", ""),
                    expression=expression.text,
                    inputfile=test.get("inputfile"),
                    invalid=expression.get("invalid"),
                    strict="strict" in (test.get("mode"), expression.get("mode")),
                    ordered_functions=test.get("checkOrderedFunctions") == "true",
                    predicate=test.get("predicate") == "true",
                    ordered=test.get("ordered") != "false",
                    outputs=tuple((o.get("type"), o.text or "") for o in test.iter("output")),
                )
            )
    return cases


def _params() -> list[Any]:
    params = []
    seen: Counter[str] = Counter()
    for case in _cases():
        seen[case.name] += 1
        test_id = case.name if seen[case.name] == 1 else f"{case.name}#{seen[case.name]}"
        marks = []
        if case.name in EXCLUDED:
            marks.append(pytest.mark.xfail(reason=EXCLUDED[case.name], strict=True))
        params.append(pytest.param(case, id=test_id, marks=marks))
    return params


@cache
def _input(name: str) -> dict[str, Any]:
    path = SUITE / "input-json" / (Path(name).stem + ".json")
    with path.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f, parse_float=Decimal)
    return data


_SYSTEM_OF = {
    "boolean": "Boolean",
    "integer": "Integer",
    "decimal": "Decimal",
    "string": "String",
    "date": "Date",
    "dateTime": "DateTime",
    "time": "Time",
    "Quantity": "Quantity",
}


def _text(value: Any) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    text = str(value)
    return text[:-1] if text.startswith("@") and text.endswith("T") else text


def _matches_type(expected: str, result: TypedValue) -> bool:
    if result.namespace == "FHIR":
        return result.type == expected
    return result.type == _SYSTEM_OF.get(expected)


def _compare(case: Case, results: list[TypedValue]) -> None:
    if case.predicate:
        single = len(results) == 1 and type(results[0].value) is bool
        value = results[0].value if single else bool(results)
        assert [_text(value)] == [text for _, text in case.outputs]
        return
    actual = [(r, _text(r.value)) for r in results]
    expected = list(case.outputs)
    if not case.ordered:
        actual.sort(key=lambda pair: pair[1])
        expected.sort(key=lambda pair: pair[1])
    assert [text for _, text in actual] == [text for _, text in expected], actual
    for (result, _), (type_, _) in zip(actual, expected, strict=True):
        if type_ is not None:
            assert _matches_type(type_, result), f"{result} is not a {type_}"


@pytest.mark.parametrize("case", _params())
def test_fhirpath_r4(engine: FhirPathEngine, case: Case) -> None:
    resource = _input(case.inputfile) if case.inputfile else None
    try:
        compiled = engine.compile(case.expression)
        if resource is not None and (case.strict or case.ordered_functions):
            engine.check(
                case.expression,
                resource["resourceType"],
                strict=case.strict,
                ordered_functions=case.ordered_functions,
            )
        results = compiled.evaluate_typed(resource)
    except FhirPathSyntaxError:
        if case.invalid is None:
            raise
        return
    except FhirPathError:
        if case.invalid is None or case.invalid == "syntax":
            raise
        return
    assert case.invalid is None, f"expected a {case.invalid} error, got {results}"
    _compare(case, results)
