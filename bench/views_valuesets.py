"""``memberOf()`` in a view: a join against the expansion table vs a check per row.

The view "active conditions in the diabetes value set" (``code.memberOf(vs)`` and
``clinicalStatus = active``) over N generated Conditions (two codings each, a
value set of ``--members`` codes out of 5,000), read from a Parquet file
(``resource`` JSON text, :func:`cmio.views.ndjson_to_parquet`):

* ``duckdb join``: the compiled query joins the expansion table
  (:mod:`cmio.views.valuesets`), the engine's path; beside it the same view
  without the ``memberOf()`` filter (what the join costs);
* ``duckdb per-row UDF``: the same rows with the membership test as a Python
  scalar function called once per row (what a per-row terminology call costs
  inside the engine, even answering from an in-memory set);
* ``memory``: the reference evaluator (FHIRPath per row, set look-ups).

Each figure is the median of ``--repeat`` runs after a warm-up; all answers are
checked equal. Usage::

    python bench/views_valuesets.py [--conditions 200000] [--members 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb

from cmio.views import DuckDbRunner, MemoryEvaluator, load_view, ndjson_to_parquet
from cmio.views.valuesets import ExpansionMembership

SYSTEM = "http://snomed.info/sct"
VS = "http://example.org/vs/diabetes"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "name": "active_diabetes",
    "resource": "Condition",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()"},
                {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
            ]
        }
    ],
    "where": [
        {"path": f"code.memberOf('{VS}')"},
        {"path": "clinicalStatus.coding.code.first() = 'active'"},
    ],
}


class Expander:
    """A fixed value set (the terminology service's answer, precomputed)."""

    def __init__(self, codes: Iterable[str]) -> None:
        self.codes = list(codes)

    def expand(self, valueset: str) -> list[tuple[str, str]]:
        return [(SYSTEM, c) for c in self.codes]


def conditions(n: int) -> list[dict[str, Any]]:
    rng = random.Random(11)
    out = []
    for i in range(n):
        out.append(
            {
                "resourceType": "Condition",
                "id": f"c{i}",
                "subject": {"reference": f"Patient/p{i % 20000}"},
                "clinicalStatus": {
                    "coding": [{"system": CLINICAL, "code": rng.choice(["active", "resolved"])}]
                },
                "code": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/sid/icd-10",
                            "code": f"E{rng.randrange(99)}",
                        },
                        {"system": SYSTEM, "code": str(rng.randrange(5000))},
                    ]
                },
            }
        )
    return out


def udf_rows(parquet: Path, members: ExpansionMembership) -> int:
    """The view's rows with a per-row Python membership function inside DuckDB."""
    con = duckdb.connect()
    con.execute("SET threads = 2")

    def member(text: str) -> bool:
        return members.member_of(json.loads(text), VS) is True

    con.create_function("member_of", member, ["VARCHAR"], "BOOLEAN")
    con.execute(f"CREATE VIEW src AS SELECT resource FROM read_parquet('{parquet}')")
    query = """
        SELECT json_extract_string(resource, '$.id') AS id,
               split_part(json_extract_string(resource, '$.subject.reference'), '/', 2) AS patient
        FROM src
        WHERE member_of(json_extract(resource, '$.code')::VARCHAR)
          AND json_extract_string(resource, '$.clinicalStatus.coding[0].code') = 'active'
    """
    count = len(con.execute(query).fetchall())
    con.close()
    return count


def median(fn: Callable[[], int], repeat: int) -> tuple[int, float]:
    rows = fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        assert fn() == rows
        times.append(time.perf_counter() - start)
    return rows, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", type=int, default=200_000)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    resources = conditions(args.conditions)
    folder = Path(tempfile.mkdtemp(prefix="cmio-vs-bench-"))
    ndjson = folder / "ndjson"
    ndjson.mkdir()
    with (ndjson / "Condition.ndjson").open("w") as out:
        out.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in resources)
    parquet = ndjson_to_parquet(ndjson, folder / "parquet")[0]
    expander = Expander(str(c) for c in range(0, 5000, 5000 // args.members))
    view = load_view(VIEW)
    runner = DuckDbRunner(threads=2, terminology=expander)
    evaluator = MemoryEvaluator(terminology=ExpansionMembership(expander))
    subset = resources[: max(1, args.conditions // 10)]
    cases: dict[str, tuple[int, float, int]] = {}
    plain = load_view({**VIEW, "where": VIEW["where"][1:]})
    source = parquet.parent
    rows_plain, secs = median(lambda: runner.run(plain, source).num_rows, args.repeat)
    cases["duckdb, no memberOf (status only)"] = (rows_plain, secs, args.conditions)
    rows, secs = median(lambda: runner.run(view, source).num_rows, args.repeat)
    cases["duckdb join"] = (rows, secs, args.conditions)
    members = ExpansionMembership(expander)
    rows_udf, secs = median(lambda: udf_rows(parquet, members), args.repeat)
    assert rows_udf == rows, (rows_udf, rows)
    cases["duckdb per-row UDF"] = (rows_udf, secs, args.conditions)
    rows_mem, secs = median(lambda: evaluator.run(view, subset).num_rows, 1)
    cases[f"memory (first {len(subset):,})"] = (rows_mem, secs, len(subset))
    print(f"{args.conditions:,} Conditions, value set of {args.members} codes; {rows:,} rows")
    print("| engine | rows | seconds | Conditions/s | vs join |")
    print("|---|---:|---:|---:|---:|")
    join_rate = cases["duckdb join"][2] / cases["duckdb join"][1]
    for name, (count, secs, inputs) in cases.items():
        rate = inputs / secs
        print(f"| {name} | {count:,} | {secs:.2f} | {rate:,.0f} | {rate / join_rate:.2f}x |")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
