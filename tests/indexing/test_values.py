"""Index value helpers: the date fast path agrees with the general parser."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cmio.indexing.composite import json_heads
from cmio.indexing.values import canonical_quantity, date_range
from cmio.store._common import format_instant, parse_date_range
from cmio.store.base import InvalidRequestError


def _general(text: str) -> tuple[str, str] | None:
    try:
        return parse_date_range(text)
    except InvalidRequestError:
        return None


def _samples(n: int) -> list[str]:
    rnd = random.Random(4)
    out: list[str] = []
    for _ in range(n):
        year = rnd.choice([1, 999, 1960, 2024, 9999])
        day = f"{year:04d}-{rnd.randint(1, 12):02d}-{rnd.choice([1, 28, 29, 30, 31]):02d}"
        if rnd.random() < 0.3:
            out.append(day)
            continue
        text = f"{day}T{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}"
        if rnd.random() < 0.5:
            text += f".{rnd.randint(0, 999):03d}"
        out.append(text + rnd.choice(["Z", "+00:00", "-05:00", "+14:00", "-12:00"]))
    return out


def test_date_range_fast_path_agrees_with_parser() -> None:
    samples = _samples(3000)
    assert [date_range(s) for s in samples] == [_general(s) for s in samples]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-28", ("2024-02-28T00:00:00.000Z", "2024-02-29T00:00:00.000Z")),
        ("2024-12-31", ("2024-12-31T00:00:00.000Z", "2025-01-01T00:00:00.000Z")),
        ("2024-01-01T00:30:00+01:00", ("2023-12-31T23:30:00.000Z", "2023-12-31T23:30:01.000Z")),
        ("2024-01-01T10:00:00.250Z", ("2024-01-01T10:00:00.250Z", "2024-01-01T10:00:00.251Z")),
        ("0999-06-01", ("0999-06-01T00:00:00.000Z", "0999-06-02T00:00:00.000Z")),
        ("0001-01-01T00:00:00+14:00", ("0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z")),
        ("2024-02-30", None),
        ("2024", ("2024-01-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z")),
        ("not a date", None),
    ],
)
def test_date_range_edges(text: str, expected: tuple[str, str] | None) -> None:
    assert date_range(text) == expected


def test_format_instant_pads_early_years() -> None:
    low, _ = parse_date_range("0050-03-04")
    assert low == "0050-03-04T00:00:00.000Z"
    assert format_instant(datetime(2024, 1, 2, 3, 4, 5, 1, tzinfo=UTC)) == (
        "2024-01-02T03:04:05.001Z"
    )


def test_canonical_quantity_memo_matches_uncached() -> None:
    units: dict[str, tuple[Decimal, str] | None] = {}
    for code in ("mg/dL", "kg", "g", "mg/dL", "not a unit", "not a unit"):
        assert canonical_quantity(Decimal("1.5"), code, units) == canonical_quantity(
            Decimal("1.5"), code
        )
    assert set(units) == {"mg/dL", "kg", "g", "not a unit"}


def test_json_heads() -> None:
    assert json_heads("value.ofType(Quantity)") == ("value", "_value")
    assert json_heads("code | component.code") == ("code", "_code", "component", "_component")
    assert json_heads("$this") is None
    assert json_heads("(a | b).c") is None
    assert json_heads("exists()") is None


def test_typed_heads_name_the_choice_properties() -> None:
    from cmio.indexing.composite import typed_heads
    from cmio.model import load_model

    model = load_model()
    quantity = typed_heads(model, "value.ofType(Quantity)")
    assert quantity is not None
    assert {"valueQuantity", "_valueQuantity", "valueAge", "valueDuration"} <= set(quantity)
    assert "valueCodeableConcept" not in quantity
    assert typed_heads(model, "value.ofType(DateTime) | value.ofType(Period)") == (
        "valueDateTime",
        "_valueDateTime",
        "valuePeriod",
        "_valuePeriod",
    )
    assert typed_heads(model, "code") == ("code", "_code")  # no type filter: json_heads
    assert typed_heads(model, "value.ofType(NoSuchType)") == ("value", "_value")


def test_composite_rows_equal_the_unfiltered_evaluation() -> None:
    """Typed heads and the per-resource memo change no row: every composite of an
    Observation, compared with plans built on plain ``json_heads`` and no memo."""
    from cmio.indexing import SearchIndexer
    from cmio.indexing.composite import CompositePlan
    from cmio.model import load_model

    indexer = SearchIndexer(load_model())
    code = {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}
    values: list[dict[str, object]] = [
        {"valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org"}},
        {"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]}},
        {"valueString": "positive"},
        {"valueDateTime": "2026-01-02"},
        {"valuePeriod": {"start": "2026-01-02", "end": "2026-01-03"}},
        {"valueBoolean": True},
        {
            "component": [
                {"code": code, "valueQuantity": {"value": 80, "code": "mm[Hg]"}},
                {"code": code, "valueCodeableConcept": {"text": "x", "coding": [{"code": "y"}]}},
                {"code": code},
            ]
        },
    ]
    plans = indexer._composites("Observation")
    assert plans
    for extra in values:
        resource = {"resourceType": "Observation", "status": "final", "code": code, **extra}
        fast: dict[str, list[tuple[object, ...]]] = {}
        slow: dict[str, list[tuple[object, ...]]] = {}
        memo: dict[tuple[int, str], list[object]] = {}
        for plan in plans:
            plan.add(fast, resource, memo)
            CompositePlan(plan.code, plan.base, plan.components).add(slow, resource)
        assert fast == slow, extra
        if {"valueQuantity", "valueCodeableConcept", "valueString", "component"} & set(extra):
            assert fast, extra  # these have composite rows


def test_content_ignores_version_meta() -> None:
    from cmio.indexing.text import text_rows

    base = {"resourceType": "Patient", "id": "p", "meta": {"tag": [{"code": "vip"}]}}
    stamped = {**base, "meta": {"versionId": "7", "lastUpdated": "2026-01-02T03:04:05.678Z"}}
    stamped["meta"]["tag"] = [{"code": "vip"}]
    assert text_rows(base) == text_rows(stamped)
    assert sorted(text_rows(base)[0][1].split()) == ["p", "patient", "vip"]
