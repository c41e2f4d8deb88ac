"""Per-resource costs for the scaling projection (docs/scaling.md), and Spark 1 vs 2 cores.

``storage``: ``cmio synth --patients N`` (without its AuditEvents), then ``cmio import``
into a fresh SQLite file and a fresh PostgreSQL database; reports resources, import
seconds, microseconds per resource, and bytes on disk per resource split into table
data and indexes (SQLite: the ``dbstat`` virtual table; PostgreSQL:
``pg_table_size``/``pg_indexes_size``).

``spark``: one SQL-on-FHIR view (Observation: id, subject, code, value, effective)
over the same synthetic NDJSON on Spark ``local[1]`` and ``local[2]``, each in its
own process, median of ``--repeat`` runs after a warm-up.

    python bench/scaling.py storage --patients 300
    python bench/scaling.py spark --patients 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "name": "obs",
    "resource": "Observation",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()"},
                {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                {"name": "code", "path": "code.coding.first().code"},
                {"name": "value", "path": "value.ofType(Quantity).value"},
                {"name": "effective", "path": "effective.ofType(dateTime)"},
            ]
        }
    ],
}


def _cmio(*args: str) -> list[str]:
    return [sys.executable, "-m", "cmio.cli.main", *args]


def synth(out: Path, patients: int) -> int:
    """Synthetic NDJSON for ``patients`` (AuditEvents dropped); returns the resource count."""
    subprocess.run(
        _cmio("synth", "--out", str(out), "--patients", str(patients), "--years", "1"),
        check=True,
        capture_output=True,
    )
    for bulky in ("AuditEvent.ndjson", "audit-log.csv"):
        (out / bulky).unlink(missing_ok=True)
    return sum(sum(1 for _ in f.open()) for f in out.glob("*.ndjson"))


def import_seconds(data: Path, url: str, report: Path) -> float:
    """Wall seconds of ``cmio import data --database url`` (process start included)."""
    started = time.perf_counter()
    subprocess.run(
        _cmio("import", str(data), "--database", url, "--report", str(report)),
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def sqlite_sizes(path: Path) -> tuple[int, int]:
    """(table bytes, index bytes) of a SQLite file, after a WAL checkpoint."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        kinds = dict(conn.execute("SELECT name, type FROM sqlite_master").fetchall())
        table = index = 0
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            if kinds.get(name) == "index" or name.startswith("sqlite_autoindex"):
                index += size
            else:
                table += size
    return table, index


def postgres_sizes(url: str) -> tuple[int, int]:
    """(table bytes incl. TOAST, index bytes) of the tables in the URL's schema."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(pg_table_size(c.oid)), 0), COALESCE(SUM(pg_indexes_size(c.oid)), 0)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname = current_schema()"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def storage(patients: int) -> None:
    """Print the per-resource storage and ingest table for SQLite and PostgreSQL."""
    from cmio.testing.pg import running_postgres

    tmp = Path(tempfile.mkdtemp(prefix="cmio-scaling-"))
    try:
        data = tmp / "synth"
        count = synth(data, patients)
        rows = []
        db = tmp / "cmio.db"
        seconds = import_seconds(data, f"sqlite:///{db}", tmp / "r1.ndjson")
        rows.append(("SQLite", seconds, *sqlite_sizes(db)))
        with running_postgres() as url:
            seconds = import_seconds(data, url, tmp / "r2.ndjson")
            rows.append(("PostgreSQL 15", seconds, *postgres_sizes(url)))
        ndjson = sum(f.stat().st_size for f in data.glob("*.ndjson"))
        print(
            f"\n{patients} patients, {count:,} resources, NDJSON {ndjson / count:,.0f} B/resource\n"
        )
        print(
            "| store | import s | µs/resource | resources/s | table B/resource "
            "| index B/resource | total B/resource |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, seconds, table, index in rows:
            print(
                f"| {name} | {seconds:.1f} | {seconds / count * 1e6:,.0f} | {count / seconds:,.0f} "
                f"| {table / count:,.0f} | {index / count:,.0f} | {(table + index) / count:,.0f} |"
            )
        print(json.dumps({"patients": patients, "resources": count, "rows": rows}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def spark_child(master: str, folder: str, repeat: int) -> None:
    """Run the view ``repeat`` times (after a warm-up) on ``master``; print JSON timings."""
    from cmio.views.spark_engine import spark_frame
    from cmio.views.spark_session import SparkConfig, spark_session

    spark = spark_session(SparkConfig(master=master, driver_memory="2g"))
    rows = spark_frame(VIEW, Path(folder), spark).count()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        frame = spark_frame(VIEW, Path(folder), spark)
        frame.write.format("noop").mode("overwrite").save()
        times.append(time.perf_counter() - started)
    print(json.dumps({"rows": rows, "seconds": statistics.median(times)}))
    spark.stop()


def spark(patients: int, repeat: int) -> None:
    """Print rows/s of the view on local[1] and local[2], side by side."""
    tmp = Path(tempfile.mkdtemp(prefix="cmio-scaling-spark-"))
    try:
        data = tmp / "synth"
        synth(data, patients)
        only = tmp / "obs"
        only.mkdir()
        shutil.copy(data / "Observation.ndjson", only / "Observation.ndjson")
        results = {}
        for master in ("local[1]", "local[2]"):
            out = subprocess.run(
                [sys.executable, __file__, "spark-child", master, str(only), str(repeat)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[master] = json.loads(out.strip().splitlines()[-1])
        print(f"\n{patients} patients' Observations, median of {repeat} after a warm-up\n")
        print("| master | rows | seconds | rows/s | speed-up vs local[1] |")
        print("|---|---:|---:|---:|---:|")
        base = results["local[1]"]["seconds"]
        for master, r in results.items():
            print(
                f"| {master} | {r['rows']:,} | {r['seconds']:.2f} | "
                f"{r['rows'] / r['seconds']:,.0f} | {base / r['seconds']:.2f}x |"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "spark-child":
        spark_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["storage", "spark"])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.what == "storage":
        storage(args.patients)
    else:
        spark(args.patients, args.repeat)


if __name__ == "__main__":
    main()
