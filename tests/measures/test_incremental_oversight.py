"""EHR use, cost and data quality refreshed incrementally equal a full recomputation.

A small synthetic health system (``cmio synth``, 40 patients) is read through each
family's views; its input rows are split into a base and two days (the last weeks, plus
rows scattered through the year so the days reach back into sessions, schedules and
claims already stored, plus changed resources for data quality). After each refresh the
outputs must equal the family's full computation over everything so far.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cmio.measures.adherence import data_quality, read_adherence
from cmio.measures.adherence_incremental import DataQualityState
from cmio.measures.cost import cost_of_care, read_cost
from cmio.measures.cost_incremental import CostState
from cmio.measures.ehr_use import Period, SqlEngine, ehr_use, read_views
from cmio.measures.ehr_use.incremental import EhrUseState
from cmio.measures.state import StateDb
from tests.measures.test_adherence import terminology

PERIOD = Period.parse("2025-01/2025-12")
Tables = dict[str, pa.Table]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cmio.synth.generate import SynthConfig, generate

    out = tmp_path_factory.mktemp("synth") / "synth"
    generate(SynthConfig(patients=40, out=out, seed=11))
    return out


def _norm(value: Any) -> Any:
    if isinstance(value, float) and not math.isnan(value):
        return float(f"{value:.12g}")
    return value


def _rows(tables: Mapping[str, pa.Table]) -> dict[str, list[str]]:
    return {
        name: sorted(repr({k: _norm(v) for k, v in row.items()}) for row in t.to_pylist())
        for name, t in tables.items()
    }


def _assert_same(got: Mapping[str, pa.Table], want: Mapping[str, pa.Table]) -> None:
    assert list(got) == list(want)
    for name in want:
        assert got[name].schema.names == want[name].schema.names, name
        assert _rows({name: got[name]}) == _rows({name: want[name]}), name


def _split(table: pa.Table, day: Callable[[dict[str, Any]], int], parts: int = 3) -> list[Any]:
    """``table``'s rows split into ``parts`` tables by ``day(row)`` (0: base)."""
    rows = table.to_pylist()
    which = [day(r) for r in rows]
    return [
        pa.Table.from_pylist([r for r, w in zip(rows, which, strict=True) if w == k],
                             schema=table.schema)
        for k in range(parts)
    ]  # fmt: skip


def _by_date(column: str, rng: random.Random) -> Callable[[dict[str, Any]], int]:
    """Day 2 from Dec 20, day 1 from Dec 1, and about 8% of earlier rows on either day."""

    def pick(row: dict[str, Any]) -> int:
        when = str(row.get(column) or "")
        if when >= "2025-12-20":
            return 2
        if when >= "2025-12-01":
            return 1
        draw = rng.random()
        return 1 if draw < 0.04 else 2 if draw < 0.08 else 0

    return pick


def _random(rng: random.Random, share: float = 0.1) -> Callable[[dict[str, Any]], int]:
    return lambda _row: 1 if rng.random() < share / 2 else 2 if rng.random() < share / 2 else 0


def _merge(parts: list[Tables]) -> Tables:
    return {n: pa.concat_tables([p[n] for p in parts if n in p]) for n in parts[0]}


def _days(inputs: Tables, rules: Mapping[str, Callable[[dict[str, Any]], int]]) -> list[Tables]:
    split = {n: _split(t, rules[n]) if n in rules else [t, t.slice(0, 0), t.slice(0, 0)]
             for n, t in inputs.items()}  # fmt: skip
    return [{n: parts[k] for n, parts in split.items()} for k in range(3)]


def test_ehr_use_refresh_equals_full(system: Path) -> None:
    inputs = read_views(system)
    rng = random.Random(5)
    rules = {
        "audit_events": _by_date("start_ts", rng), "slots": _by_date("start_ts", rng),
        "appointments": _by_date("start_ts", rng), "orders": _by_date("authored_ts", rng),
        "provenance": _random(rng, 0.2), "schedules": _random(rng, 0.3),
        "roles": _random(rng, 0.2),
    }  # fmt: skip
    days = _days(inputs, rules)
    assert days[1]["audit_events"].num_rows > 20 and days[2]["slots"].num_rows > 5
    with StateDb() as db:
        state = EhrUseState(db, PERIOD)
        with SqlEngine(threads=1) as engine:
            _assert_same(state.build(days[0]), ehr_use(days[0], PERIOD, engine))
        for k in (1, 2):
            got = state.refresh(days[k])
            with SqlEngine(threads=1) as engine:
                _assert_same(got, ehr_use(_merge(days[: k + 1]), PERIOD, engine))
        with pytest.raises(ValueError, match="unknown EHR-use input"):
            state.refresh({"audit": days[1]["audit_events"]})


def test_ehr_use_refresh_reaches_into_stored_sessions(tmp_path: Path) -> None:
    """A day's event inside a stored session (a long event's reach) re-slices it."""

    def events(*rows: tuple[str, str, int]) -> pa.Table:
        keys = ("user_id", "start_ts", "duration_s")
        table = pa.Table.from_pylist([dict(zip(keys, r, strict=True)) for r in rows])
        n = table.num_rows
        for name in ("source", "end_ts", "activity", "object_ref", "action", "outcome"):
            table = table.append_column(name, pa.array([None] * n, pa.string()))
        return table.append_column("objects_known", pa.array([True] * n))

    base = events(("u1", "2025-03-01T08:00:00+00:00", 3600),
                  ("u1", "2025-03-01T08:10:00+00:00", 60),
                  ("u1", "2025-03-01T09:30:00+00:00", 60))  # fmt: skip
    day = events(("u1", "2025-03-01T08:05:00+00:00", 30), ("u1", "2025-03-01T09:04:00+00:00", 30))
    with StateDb(tmp_path / "state.duckdb") as db:
        before = EhrUseState(db, PERIOD).build({"audit_events": base})["clinicians"].to_pylist()
    with StateDb(tmp_path / "state.duckdb") as db:  # reopened: the state persists
        with pytest.raises(ValueError, match="no cost state"):
            CostState.open(db)
        after = EhrUseState.open(db).refresh({"audit_events": day})
    with SqlEngine(threads=1) as engine:
        full = ehr_use({"audit_events": pa.concat_tables([base, day])}, PERIOD, engine)
    _assert_same(after, full)
    # Before: [8:00, 8:10) + [8:10, 9:00) (the first event's reach; 9:30 is a new session)
    # + 60 s. After: 5 + 5 min, 8:10 to 9:04 (4 min after the reach: same session),
    # 30 s, 60 s.
    assert before[0]["ehr_s"] == 600 + 3000 + 60
    assert after["clinicians"].to_pylist()[0]["ehr_s"] == 300 + 300 + 3240 + 30 + 60


def test_cost_refresh_equals_full(system: Path) -> None:
    inputs = read_cost(system)
    rng = random.Random(7)
    rules = {
        "eobs": _by_date("start_ts", rng), "claims": _random(rng, 0.2),
        "encounters": _random(rng, 0.2), "coverage": _random(rng, 0.3),
        "conditions": _random(rng, 0.3), "a1c": _by_date("effective_ts", rng),
        "organizations": _random(rng, 0.3),
    }  # fmt: skip
    days = _days(inputs, rules)
    assert days[1]["eobs"].num_rows > 5
    with StateDb() as db:
        state = CostState(db, PERIOD)
        with SqlEngine(threads=1) as engine:
            _assert_same(state.build(days[0]), cost_of_care(days[0], PERIOD, engine))
        for k in (1, 2):
            got = state.refresh(days[k])
            with SqlEngine(threads=1) as engine:
                _assert_same(got, cost_of_care(_merge(days[: k + 1]), PERIOD, engine))
        with pytest.raises(ValueError, match="populations given"):
            state.refresh({}, populations=pa.table({"patient_id": ["p"], "population": ["x"]}))


def test_data_quality_refresh_equals_full(system: Path) -> None:
    kinds = ("Patient", "Condition", "Observation", "Encounter", "Claim", "MessageHeader")
    rng = random.Random(3)
    resources = [r for path in sorted(system.glob("*.ndjson")) for r in _read(path)
                 if r["resourceType"] in kinds and rng.random() < 0.3]  # fmt: skip
    rng.shuffle(resources)
    base, day1, day2 = resources[:-120], resources[-120:-40], resources[-40:]
    changed = [dict(r) for r in base if r["resourceType"] == "Patient"][:3]
    changed += [dict(r) for r in base if r["resourceType"] == "Observation"][:3]
    for r in changed:
        r["meta"] = {"source": "urn:app:corrected"}
        r.pop("identifier", None)
        if r["resourceType"] == "Patient":
            r["name"] = [{"family": "Smith", "given": ["Ann"]}]
            r["birthDate"] = "1980-01-01"
    target = next(r for r in base if r["resourceType"] == "Condition")
    message = {"resourceType": "MessageHeader", "id": "m-day",
               "eventCoding": {"system": "urn:x", "code": "A08"},
               "source": {"name": "LAB", "endpoint": "mllp://lab"},
               "focus": [{"reference": f"Condition/{target['id']}"}]}  # fmt: skip
    target.get("meta", {}).pop("source", None)
    service = terminology()
    final: list[Any] = list(base)
    with StateDb() as db:
        state = DataQualityState(db, service)
        state.build(read_adherence(base))
        for day in ([*day1, message], [*day2, *changed]):
            got = state.refresh(read_adherence(day))
            ids = {(r["resourceType"], r["id"]) for r in day}
            final = [r for r in final if (r["resourceType"], r["id"]) not in ids] + day
        # After both days (the state carries the first day's changes into the second).
        with SqlEngine(threads=1) as engine:
            _assert_same(got, data_quality(read_adherence(final), engine, service))
        assert got["duplicates"].num_rows > 0
        with pytest.raises(ValueError, match="unknown data-quality input"):
            state.refresh({"codes": pa.table({})})


def _read(path: Path) -> list[Any]:
    import json

    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
