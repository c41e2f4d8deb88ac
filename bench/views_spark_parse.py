"""Spark: one ``from_json`` per resource vs one ``get_json_object`` per path, side by side.

Runs the ``obs`` view of ``bench/views.py`` on Spark over a Parquet folder, with the
Spark dialect's one-parse ``json_paths`` (now) and without it (the per-path
extraction it replaced), alternating in one session; rows go to the ``noop``
sink, answers are checked equal first. Usage::

    python bench/views_spark_parse.py PARQUET_DIR [--rounds 3] [--master local[2]]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cmio.views.dialects.base import Dialect
from cmio.views.dialects.spark import SparkDialect
from cmio.views.spark_engine import spark_frame
from cmio.views.spark_session import SparkConfig, spark_session
from views import OBS_VIEW


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parquet", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    spark = spark_session(SparkConfig(master=args.master, shuffle_partitions=2))
    variants = {"per path (before)": Dialect.json_paths, "one parse (now)": SparkDialect.json_paths}

    def use(name: str) -> None:
        SparkDialect.json_paths = variants[name]  # type: ignore[method-assign]

    answers = []
    for name in variants:
        use(name)
        answers.append(sorted(map(str, spark_frame(OBS_VIEW, args.parquet, spark).collect())))
    assert answers[0] == answers[1], "the two extractions disagree"
    rows = len(answers[0])
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name in variants:
            use(name)
            frame = spark_frame(OBS_VIEW, args.parquet, spark)
            start = time.perf_counter()
            frame.write.format("noop").mode("overwrite").save()
            times[name].append(time.perf_counter() - start)
    print(f"{rows:,} rows, {args.master}")
    print("| extraction | rounds (s) | median s | rows/s |")
    print("|---|---|---:|---:|")
    for name, values in times.items():
        middle = statistics.median(values)
        rounds = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {rounds} | {middle:.2f} | {rows / middle:,.0f} |")
    spark.stop()


if __name__ == "__main__":
    main()
