"""Where Spark's time goes on a view, beside DuckDB on the same typed Parquet.

For one view (``obs`` or ``patients`` of ``bench/views.py``) over a typed Parquet
folder (``bench/views_gen.py`` then ``ndjson_to_parquet(..., layout="typed")``), in a
child process per Spark master: the session start, then per form of the job (median
of ``--repeat`` runs after a warm-up, wall seconds and the CPU seconds of the whole
process tree, JVM included):

* ``plan``: compile the view and analyse the query (``spark_frame``), nothing run;
* ``scan``: read only the columns the view reads (``noop`` sink);
* ``noop``: the view's rows to Spark's ``noop`` sink (what ``bench/views.py`` times);
* ``count``: ``count()`` of the view's rows;
* ``arrow``: ``spark_run``, the rows collected into the driver as a ``pyarrow.Table``
  (what ``cmio.views.run(engine="spark")`` returns; DuckDB's ``arrow`` is the same);
* ``parquet``: the rows written to a Parquet file (Spark: ``spark_write``, one folder
  of part files; DuckDB: ``COPY ... TO`` one file).

DuckDB runs the same forms in this process. ``--explain`` prints Spark's formatted
plan. Usage::

    python bench/views_spark_profile.py bench/out/views-1m/parquet-typed --view obs \
        --masters "local[1],local[2]" --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from http_bench import tree_cpu  # noqa: E402

from views import VIEWS  # noqa: E402

FORMS = ("plan", "scan", "noop", "count", "arrow", "parquet")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median wall and median process-tree CPU seconds of ``repeat`` runs after a warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        cpu0, wall0 = tree_cpu(os.getpid()), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - wall0)
        cpus.append(tree_cpu(os.getpid()) - cpu0)
    return statistics.median(walls), statistics.median(cpus)


def spark_child(
    master: str, data: Path, view_name: str, repeat: int, explain: bool, only: list[str]
) -> None:
    """Time every form on ``master`` and print ``FORM name wall cpu`` lines."""
    wall0, cpu0 = time.perf_counter(), tree_cpu(os.getpid())
    from cmio.views.spark_engine import spark_frame, spark_run, spark_write
    from cmio.views.spark_session import SparkConfig, spark_session

    spark = spark_session(SparkConfig(master=master, driver_memory="4g"))
    print(f"FORM session {time.perf_counter() - wall0} {tree_cpu(os.getpid()) - cpu0}")
    view = VIEWS[view_name]
    frame = spark_frame(view, data, spark)
    if explain:
        print(frame._jdf.queryExecution().executedPlan().toString(), file=sys.stderr)
        frame.explain("formatted")
    scratch = Path(tempfile.mkdtemp(prefix="cmio-spark-prof-"))
    inner = _inner_select(view, spark, data)
    forms: dict[str, Callable[[], Any]] = {
        "plan": lambda: spark_frame(view, data, spark),
        "scan": lambda: spark.sql(inner).write.format("noop").mode("overwrite").save(),
        "noop": lambda: (
            spark_frame(view, data, spark).write.format("noop").mode("overwrite").save()
        ),
        "count": lambda: spark_frame(view, data, spark).count(),
        "arrow": lambda: spark_run(view, data, spark),
        "parquet": lambda: spark_write(view, data, scratch / "out", spark),
    }
    try:
        table = spark_run(view, data, spark)
        print(f"ROWS {table.num_rows} {digest(table, view)}", flush=True)
        for name, fn in forms.items():
            if only and name not in only:
                continue
            wall, cpu = timed(fn, repeat)
            print(f"FORM {name} {wall} {cpu}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def digest(table: Any, view: dict[str, Any]) -> str:
    """SHA-256 of the rows sorted on every column (the view's Arrow types): equal digests,
    equal rows whatever the order an engine returned them in."""
    import hashlib

    from cmio.views import arrow_schema, load_view

    schema = arrow_schema(load_view(view))
    table = table.rename_columns(schema.names).cast(schema)
    ordered = table.sort_by([(name, "ascending") for name in schema.names])
    sha = hashlib.sha256()
    for batch in ordered.to_batches(max_chunksize=100_000):
        sha.update(repr(batch.to_pylist()).encode())
    return sha.hexdigest()


def _inner_select(view: dict[str, Any], spark: Any, data: Path) -> str:
    """The view query's innermost SELECT (the nested fields it reads) over the typed files."""
    import sqlglot
    from sqlglot import exp

    from cmio.views import load_view
    from cmio.views.compiler import ViewCompiler
    from cmio.views.dialects.spark_typed import TypedSparkDialect
    from cmio.views.spark_sources import resource_files

    parsed = load_view(view)
    files = [str(p) for p in resource_files(data, parsed.resource, (".parquet",))[0]]
    spark.read.parquet(*files).createOrReplaceTempView("prof_src")
    sql = ViewCompiler(TypedSparkDialect()).sql(parsed, exp.to_table("prof_src"), filter_type=False)
    tree = sqlglot.parse_one(sql, read="spark")
    inner = [s for s in tree.find_all(exp.Select) if s.find(exp.Table) is not None]
    innermost = min(inner, key=lambda s: len(s.sql()))
    return innermost.sql(dialect="spark")


def duckdb_forms(data: Path, view_name: str, repeat: int) -> dict[str, tuple[float, float]]:
    """DuckDB's plan, count, Arrow and Parquet forms of the view (same process)."""
    from cmio.views import DuckDbRunner

    runner = DuckDbRunner(layout="typed")
    view = VIEWS[view_name]
    scratch = Path(tempfile.mkdtemp(prefix="cmio-duck-prof-"))
    out: dict[str, tuple[float, float]] = {}
    print(f"ROWS duckdb {digest(runner.run(view, data), view)}", file=sys.stderr, flush=True)
    try:
        out["arrow"] = timed(lambda: runner.run(view, data), repeat)
        out["count"] = timed(lambda: _duck_count(runner, view, data), repeat)
        out["parquet"] = timed(lambda: _duck_parquet(runner, view, data, scratch), repeat)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def _duck_count(runner: Any, view: dict[str, Any], data: Path) -> int:
    total = 0
    for batch in runner.batches(view, data):
        total += batch.num_rows
    return total


def _duck_parquet(runner: Any, view: dict[str, Any], data: Path, scratch: Path) -> None:
    import pyarrow.parquet as pq

    from cmio.views import arrow_schema, load_view

    parsed = load_view(view)
    with pq.ParquetWriter(scratch / "out.parquet", arrow_schema(parsed)) as writer:
        for batch in runner.batches(parsed, data):
            writer.write_batch(batch)


def main() -> None:
    """Run DuckDB here and each Spark master in a child; print a Markdown table."""
    if len(sys.argv) > 1 and sys.argv[1] == "--spark-child":
        spark_child(
            sys.argv[2],
            Path(sys.argv[3]),
            sys.argv[4],
            int(sys.argv[5]),
            sys.argv[6] == "1",
            list(filter(None, sys.argv[7].split(","))),
        )
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="typed Parquet folder")
    parser.add_argument("--view", default="obs", choices=sorted(VIEWS))
    parser.add_argument("--masters", default="local[1],local[2]")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument("--forms", default="", help=f"comma-separated subset of {FORMS}")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    rows: list[tuple[str, str, float, float]] = []
    if not args.skip_duckdb:
        for form, (wall, cpu) in duckdb_forms(args.data, args.view, args.repeat).items():
            rows.append(("duckdb", form, wall, cpu))
            print(f"duckdb {form:8s} {wall:7.2f} s {cpu:7.2f} cpu", file=sys.stderr, flush=True)
    for master in filter(None, args.masters.split(",")):
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--spark-child",
                master,
                str(args.data),
                args.view,
                str(args.repeat),
                "1" if args.explain else "0",
                args.forms,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        if child.returncode != 0:
            raise RuntimeError(f"spark child failed: {child.stderr[-3000:]}")
        if args.explain:
            print(child.stderr, file=sys.stderr)
        for line in child.stdout.splitlines():
            if line.startswith("FORM "):
                _, form, wall_text, cpu_text = line.split()
                wall, cpu = float(wall_text), float(cpu_text)
                rows.append((f"spark {master}", form, wall, cpu))
                print(
                    f"spark {master} {form:8s} {wall:7.2f} s {cpu:7.2f} cpu",
                    file=sys.stderr,
                    flush=True,
                )
            elif args.explain or line.startswith("ROWS "):
                print(line, file=sys.stderr)
    print(f"| engine | form ({args.view}) | wall s | CPU s |")
    print("|---|---|---:|---:|")
    for engine, form, wall, cpu in rows:
        print(f"| {engine} | {form} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
