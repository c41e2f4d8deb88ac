"""Typed Parquet vs JSON-text Parquet, DuckDB and Spark side by side in one process.

Takes the first ``--observations`` Observations and ``--patients`` Patients of a
``bench/views_gen.py`` folder, writes them in both Parquet layouts
(``cmio.views.ndjson_to_parquet``: ``json`` and ``typed``), then runs the ``obs`` and
``patients`` views of ``bench/views.py`` in alternating rounds on DuckDB (rows as
Arrow) and Spark ``local[2]`` (rows to the ``noop`` sink), each layout in turn, and
checks every engine and layout returns the same rows. Prints the median seconds
and rows/s per case and the Spark/DuckDB ratio per layout.

Usage::

    python bench/views_typed.py bench/out/views-1m --observations 50000 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cmio.views import DuckDbRunner, ndjson_to_parquet  # noqa: E402
from views import VIEWS  # noqa: E402


def _subset(data: Path, out: Path, counts: dict[str, int]) -> None:
    out.mkdir(parents=True)
    for rtype, count in counts.items():
        with (data / "ndjson" / f"{rtype}.ndjson").open("rb") as src:
            (out / f"{rtype}.ndjson").write_bytes(b"".join(islice(src, count)))


def _rows(table: Any) -> list[str]:
    return sorted(map(str, table.to_pylist()))


def main() -> None:
    """Run the rounds and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--observations", type=int, default=50_000)
    parser.add_argument("--patients", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-spark", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="views-typed-"))
    _subset(
        args.data, work / "ndjson", {"Observation": args.observations, "Patient": args.patients}
    )
    folders = {
        layout: ndjson_to_parquet(work / "ndjson", work / layout, layout=layout)[0].parent
        for layout in ("json", "typed")
    }
    duck = {layout: DuckDbRunner(layout=layout) for layout in ("json", "typed")}
    cases: dict[str, Callable[[str], Any]] = {}
    for layout, folder in folders.items():
        cases[f"duckdb / {layout}"] = lambda name, r=duck[layout], f=folder: r.run(VIEWS[name], f)
    if not args.skip_spark:
        from cmio.views.spark_engine import spark_frame
        from cmio.views.spark_session import SparkConfig, spark_session

        spark = spark_session(SparkConfig(master="local[2]", driver_memory="4g"))
        for layout, folder in folders.items():
            cases[f"spark local[2] / {layout}"] = lambda name, f=folder, lay=layout: spark_frame(
                VIEWS[name], f, spark, layout=lay
            )
    for name in VIEWS:  # correctness first (and warm-up): every case, the same rows
        answers = {}
        for case, run in cases.items():
            result = run(name)
            answers[case] = _rows(result if case.startswith("duckdb") else result.toArrow())
        assert len({"\n".join(rows) for rows in answers.values()}) == 1, f"{name}: rows differ"
    times: dict[tuple[str, str], list[float]] = {}
    rows: dict[str, int] = {}
    for _ in range(args.rounds):
        for name in VIEWS:
            for case, run in cases.items():
                start = time.perf_counter()
                result = run(name)
                if case.startswith("duckdb"):
                    rows[name] = result.num_rows
                else:
                    result.write.format("noop").mode("overwrite").save()
                times.setdefault((case, name), []).append(time.perf_counter() - start)
                print(f"{case:26s} {name:9s} {times[(case, name)][-1]:7.2f} s", file=sys.stderr)
    print("| case | view | rows | rounds (s) | median s | rows/s |")
    print("|---|---|---:|---|---:|---:|")
    medians = {}
    for (case, name), values in times.items():
        median = statistics.median(values)
        medians[(case, name)] = median
        rounds = ", ".join(f"{v:.2f}" for v in values)
        rate = rows[name] / median
        print(f"| {case} | {name} | {rows[name]:,} | {rounds} | {median:.2f} | {rate:,.0f} |")
    for name in VIEWS:
        for layout in ("json", "typed"):
            duck_s = medians[(f"duckdb / {layout}", name)]
            typed_gain = medians[("duckdb / json", name)] / medians[("duckdb / typed", name)]
            line = f"{name} {layout}: duckdb typed/json speed-up {typed_gain:.2f}x"
            spark_key = (f"spark local[2] / {layout}", name)
            if spark_key in medians:
                line += f", spark/duckdb time {medians[spark_key] / duck_s:.2f}x"
            print(line)


if __name__ == "__main__":
    main()
