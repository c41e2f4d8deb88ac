"""SQL on FHIR view throughput: rows/s per engine and source, side by side in one run.

Two views over the data of ``bench/views_gen.py`` (1,000,000 Observations with two
codings each, 50,000 Patients): ``obs`` (id, subject, forEach code.coding: system
and code, valueQuantity value and unit, effective) and ``patients`` (demographics).
Engines: DuckDB over Parquet (JSON-text and typed layouts) and over NDJSON (JSON
functions, and ``read_json`` into typed columns; rows collected as Arrow), Spark
``local[2]`` over the JSON-text Parquet and ``local[1]``/``local[2]`` over the typed
Parquet (each in its own process),
PostgreSQL over a jsonb table (a subset: loading a million documents dominates
otherwise), the in-memory reference
evaluator (a subset) and the peer libraries ``fhir4ds`` and ``sqlonfhir``
(installed into ``bench/.venv-peers`` only, never into the main environment, and
run as a subprocess) when that venv exists. Each figure is the median of
``--repeat`` runs after a warm-up run.

What the timed region ends with (``--spark-form``):

* ``noop`` (default, the earlier figures): DuckDB collects the rows into this process
  as a ``pyarrow.Table``; Spark writes them to its ``noop`` sink (nothing leaves the JVM:
  less work than DuckDB's);
* ``arrow``: both engines end with a ``pyarrow.Table`` of the view's schema in Python
  (``DuckDbRunner.run``, ``spark_run``);
* ``parquet``: both write the rows to Parquet, the job of ``cmio view run --out
  FILE.parquet``: DuckDB streams its Arrow batches into one file
  (``cmio.views.output.write_rows``, as the CLI does), Spark writes a folder of part
  files with its own writer and copies their row groups into one file
  (``spark_output.spark_parquet_file``, what ``cmio view run --engine spark`` does;
  before it, ``spark_write``'s folder of part files; nothing crosses into Python). After the
  timed runs each engine's output is read back and digested
  (:func:`digest`, rows sorted on every column): ``ROWS`` lines on stderr, and a
  mismatch between the engines of one view is reported.

Usage::

    python bench/views_gen.py bench/out/views-1m --observations 1000000
    python bench/views.py bench/out/views-1m [--repeat 3] [--subset 50000]
"""

from __future__ import annotations

import argparse
import json
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

OBS_VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "name": "obs",
    "resource": "Observation",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id", "type": "id"},
                {"name": "subject", "path": "subject.getReferenceKey(Patient)", "type": "string"},
                {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
                {"name": "unit", "path": "value.ofType(Quantity).unit", "type": "string"},
                {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
            ]
        },
        {
            "forEach": "code.coding",
            "column": [
                {"name": "system", "path": "system", "type": "uri"},
                {"name": "code", "path": "code", "type": "code"},
            ],
        },
    ],
}
PATIENT_VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "name": "patients",
    "resource": "Patient",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id", "type": "id"},
                {"name": "gender", "path": "gender", "type": "code"},
                {"name": "birth_date", "path": "birthDate", "type": "date"},
                {"name": "family", "path": "name.first().family", "type": "string"},
                {"name": "given", "path": "name.first().given.first()", "type": "string"},
                {"name": "city", "path": "address.first().city", "type": "string"},
                {"name": "postal_code", "path": "address.first().postalCode", "type": "string"},
            ]
        }
    ],
}
VIEWS = {"obs": OBS_VIEW, "patients": PATIENT_VIEW}
HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"


def digest(table: Any, view: dict[str, Any]) -> str:
    """SHA-256 of the rows sorted on every column (the view's Arrow types): equal digests,
    equal rows whatever the order (or the files) an engine wrote them in."""
    import hashlib

    from cmio.views import arrow_schema, load_view

    schema = arrow_schema(load_view(view))
    table = table.rename_columns(schema.names).cast(schema)
    ordered = table.sort_by([(name, "ascending") for name in schema.names])
    sha = hashlib.sha256()
    for batch in ordered.to_batches(max_chunksize=100_000):
        sha.update(repr(batch.to_pylist()).encode())
    return sha.hexdigest()


def _read_back(out: Path) -> Any:
    """The rows of a Parquet file or a folder of part files (Spark's ``_SUCCESS`` aside)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(out.glob("*.parquet")) if out.is_dir() else [out]
    return pa.concat_tables([pq.read_table(f) for f in files])


def _median(fn: Callable[[], int], repeat: int) -> tuple[int, float]:
    """Rows and median seconds of ``repeat`` timed runs after one warm-up."""
    rows = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - start)
    return rows, statistics.median(times)


def duckdb_case(
    source: Path,
    view: dict[str, Any],
    repeat: int,
    layout: str = "auto",
    out: Path | None = None,
    digests: dict[str, str] | None = None,
) -> tuple[int, float]:
    """DuckDB (the embedded default) over a folder of Parquet or NDJSON.

    ``layout``: ``json`` reads the resource JSON text; ``typed`` the typed columns
    (typed Parquet as is, NDJSON through ``read_json`` with the model's types).
    ``out``: write the rows to this Parquet file (as ``cmio view run --out``) and print
    their digest (also into ``digests`` by engine), instead of collecting them as a table.
    """
    from cmio.views import DuckDbRunner, arrow_schema, load_view
    from cmio.views.output import write_rows

    runner = DuckDbRunner(layout=layout)
    if out is None:
        return _median(lambda: runner.run(view, source).num_rows, repeat)
    target = out
    schema = arrow_schema(load_view(view))
    result = _median(
        lambda: write_rows(runner.batches(view, source), schema, target, "parquet"), repeat
    )
    found = digest(_read_back(out), view)
    print(f"ROWS duckdb {view['name']} {found}", file=sys.stderr)
    if digests is not None:
        digests["duckdb"] = found
    return result


def memory_case(ndjson: Path, view: dict[str, Any], subset: int) -> tuple[int, float]:
    """The in-memory reference evaluator on the first ``subset`` resources."""
    from cmio.views import MemoryEvaluator, load_view

    parsed = load_view(view)
    resources = _head(ndjson / f"{parsed.resource}.ndjson", subset)
    evaluator = MemoryEvaluator()
    return _median(lambda: evaluator.run(parsed, resources).num_rows, 1)


def _head(path: Path, count: int) -> list[dict[str, Any]]:
    out = []
    with path.open("rb") as src:
        for line in src:
            out.append(json.loads(line))
            if len(out) >= count:
                break
    return out


def postgres_case(
    ndjson: Path, view: dict[str, Any], subset: int, repeat: int
) -> tuple[int, float]:
    """PostgreSQL over a jsonb table of the first ``subset`` resources (a private server)."""
    import psycopg

    from cmio.testing.pg import running_postgres
    from cmio.views import load_view
    from cmio.views.postgres_engine import postgres_sql

    parsed = load_view(view)
    with running_postgres() as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE docs (resource jsonb)")
        with (
            conn.cursor().copy("COPY docs (resource) FROM STDIN") as copy,
            (ndjson / f"{parsed.resource}.ndjson").open("rb") as src,
        ):
            for n, line in enumerate(src):
                if n >= subset:
                    break
                copy.write(line.replace(b"\\", b"\\\\"))
        conn.execute("ANALYZE docs")
        sql = postgres_sql(parsed, relation="SELECT resource FROM docs")
        return _median(lambda: len(conn.execute(sql).fetchall()), repeat)


def spark_case(
    parquet: Path,
    view_name: str,
    master: str,
    repeat: int,
    form: str = "noop",
    digests: dict[str, str] | None = None,
) -> tuple[int, float]:
    """Spark on ``master`` in a child process (one master per JVM).

    ``form``: ``noop`` writes the rows to Spark's ``noop`` sink (nothing leaves the
    JVM); ``arrow`` collects them into the child as a ``pyarrow.Table`` with the
    view's schema (``spark_run``), as DuckDB's cases do; ``parquet`` writes them with
    Spark's Parquet writer into one file (``spark_parquet_file``; ``spark_write``'s
    part files on code without it) and prints their digest (also into ``digests`` by
    engine).
    """
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--spark-child",
            master,
            str(parquet),
            view_name,
            str(repeat),
            form,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"spark child failed: {out.stderr[-2000:]}")
    for line in out.stdout.splitlines():
        if line.startswith("ROWS "):
            print(line, file=sys.stderr)
            if digests is not None:
                digests[line.split()[1]] = line.split()[-1]
    _, rows, seconds = lines[-1].split()
    return int(rows), float(seconds)


def _spark_child(master: str, parquet: Path, view_name: str, repeat: int, form: str) -> None:
    import importlib
    import shutil
    import tempfile

    from cmio.views.spark_engine import spark_frame, spark_run, spark_write
    from cmio.views.spark_session import SparkConfig, spark_session

    one_file: Callable[..., int] | None
    try:  # not in the code before it: then the folder of part files
        one_file = importlib.import_module("cmio.views.spark_output").spark_parquet_file
    except ImportError:
        one_file = None
    spark = spark_session(SparkConfig(master=master, driver_memory="4g"))
    view = VIEWS[view_name]
    scratch = Path(tempfile.mkdtemp(prefix="cmio-views-bench-"))

    def once() -> int:
        if form == "arrow":
            return int(spark_run(view, parquet, spark).num_rows)
        if form == "parquet" and one_file is not None:  # the CLI's job: one file
            return one_file(view, parquet, scratch / "out.parquet", spark)
        if form == "parquet":  # code before spark_output: the folder of part files
            spark_write(view, parquet, scratch / "out", spark)
            return 0
        frame = spark_frame(view, parquet, spark)
        frame.write.format("noop").mode("overwrite").save()
        return 0

    try:
        rows = spark_frame(view, parquet, spark).count()
        _, seconds = _median(once, repeat)
        if form == "parquet":
            written = scratch / ("out.parquet" if one_file is not None else "out")
            print(f"ROWS spark-{master} {view_name} {digest(_read_back(written), view)}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"RESULT {rows} {seconds}")


def peers_case(ndjson: Path, view: dict[str, Any], subset: int) -> dict[str, tuple[int, float]]:
    """The peer libraries in their own venv (``bench/views_peers.py``), on a subset."""
    if not PEERS_PYTHON.exists():
        return {}
    out = subprocess.run(
        [
            str(PEERS_PYTHON),
            str(HERE / "views_peers.py"),
            str(ndjson),
            json.dumps(view),
            str(subset),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    results: dict[str, tuple[int, float]] = {}
    for line in out.stdout.splitlines():
        if line.startswith("PEER "):
            _, name, rows, seconds = line.split()
            results[name] = (int(rows), float(seconds))
        elif line.startswith("PEERFAIL "):
            print(line, file=sys.stderr)
    return results


def main() -> None:
    """Run every case and print a Markdown table."""
    if len(sys.argv) > 1 and sys.argv[1] == "--spark-child":
        _spark_child(sys.argv[2], Path(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--subset", type=int, default=50_000, help="resources for PG/memory/peers")
    parser.add_argument("--skip", default="", help="comma-separated cases to skip")
    parser.add_argument(
        "--spark-form",
        choices=("noop", "arrow", "parquet"),
        default="noop",
        help="noop: Spark's rows to its noop sink (DuckDB: Arrow); arrow: both collect a "
        "pyarrow.Table; parquet: both write Parquet files (like for like, both ways)",
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    ndjson, parquet = args.data / "ndjson", args.data / "parquet"
    typed = args.data / "parquet-typed"
    scratch = Path(tempfile.mkdtemp(prefix="cmio-views-bench-"))
    written = scratch / "duckdb.parquet" if args.spark_form == "parquet" else None
    print(f"cores: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    table: list[tuple[str, str, int, float]] = []

    def record(case: str, view: str, result: tuple[int, float]) -> None:
        rows, seconds = result
        table.append((case, view, rows, seconds))
        print(
            f"{case:28s} {view:9s} {rows:>9,d} rows {seconds:8.2f} s {rows / seconds:>12,.0f} rows/s",
            file=sys.stderr,
            flush=True,
        )

    mismatched: list[str] = []
    for name, view in VIEWS.items():
        digests: dict[str, str] = {}
        if "duckdb-parquet" not in skip:
            record("duckdb / Parquet JSON text", name, duckdb_case(parquet, view, args.repeat))
        if "duckdb-typed" not in skip:
            record(
                "duckdb / Parquet typed",
                name,
                duckdb_case(typed, view, args.repeat, "typed", written, digests),
            )
        if "duckdb-ndjson" not in skip:
            record("duckdb / NDJSON", name, duckdb_case(ndjson, view, args.repeat, "json"))
        if "duckdb-ndjson-typed" not in skip:
            record(
                "duckdb / NDJSON read_json typed",
                name,
                duckdb_case(ndjson, view, args.repeat, "typed"),
            )
        for master, folder, label in (
            ("local[2]", parquet, "Parquet JSON text"),
            ("local[1]", typed, "Parquet typed"),
            ("local[2]", typed, "Parquet typed"),
        ):
            case = f"spark {master} / {label}"
            if case not in skip and f"spark-{master}" not in skip and "spark" not in skip:
                result = spark_case(folder, name, master, args.repeat, args.spark_form, digests)
                record(case, name, result)
        if len(set(digests.values())) > 1:
            mismatched.append(f"{name}: {digests}")
        if "postgres" not in skip:
            record(
                f"postgres jsonb ({args.subset:,})",
                name,
                postgres_case(ndjson, view, args.subset, args.repeat),
            )
        if "memory" not in skip:
            record(f"in-memory ({args.subset:,})", name, memory_case(ndjson, view, args.subset))
        if "peers" not in skip:
            for peer, result in peers_case(ndjson, view, args.subset).items():
                record(f"{peer} ({args.subset:,})", name, result)
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"form: {args.spark_form}")
    for line in mismatched:
        print(f"ROWS DIFFER between engines: {line}")
    print("| engine / source | view | rows | median s | rows/s |")
    print("|---|---|---:|---:|---:|")
    for case, view_name, rows, seconds in table:
        print(f"| {case} | {view_name} | {rows:,} | {seconds:.2f} | {rows / seconds:,.0f} |")


if __name__ == "__main__":
    main()
