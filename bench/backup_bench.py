"""Cost of `cmio backup`, `cmio restore` and `cmio doctor --full`, with baselines.

Fills a fresh store with ``--resources`` synthetic resources (half Patients, half
Observations, with their search-index rows), then times, alternating within each run:

* backup: cmio's online backup vs the baseline copy (SQLite: a plain file copy of the
  checkpointed, idle database, the least any backup can cost; PostgreSQL: ``pg_dump
  -Fc`` of the same schema, the reference tool);
* restore: cmio's verified, atomic restore into an empty target vs the baseline
  (SQLite: file copy; PostgreSQL: ``pg_restore`` into a new database);
* doctor: ``--full`` (every resource re-extracted and compared), per resource.

Medians of ``--runs`` runs; archive and database sizes in MiB.

    python bench/backup_bench.py --backend sqlite --resources 20000 --runs 3
    python bench/backup_bench.py --backend postgres --resources 20000 --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

from cmio.admin import backup, restore
from cmio.admin.doctor import diagnose
from cmio.indexing import SearchIndexer
from cmio.model import load_model
from cmio.store import open_repository, sqlite_path
from cmio.testing.pg import find_pg_bin, running_postgres, with_database, with_search_path


def _resources(n: int) -> Iterator[dict[str, object]]:
    for i in range(n // 2):
        yield {
            "resourceType": "Patient",
            "id": f"p{i}",
            "name": [{"family": f"Family{i % 997}", "given": ["Alex", f"G{i % 13}"]}],
            "gender": ("male", "female")[i % 2],
            "birthDate": f"19{40 + i % 60:02d}-0{1 + i % 9}-1{i % 10}",
            "identifier": [{"system": "urn:mrn", "value": f"MRN{i:08d}"}],
        }
        yield {
            "resourceType": "Observation",
            "id": f"o{i}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/p{i}"},
            "effectiveDateTime": f"2024-0{1 + i % 9}-1{i % 10}T10:00:00Z",
            "valueQuantity": {"value": 50 + i % 80, "unit": "/min", "code": "/min"},
        }


def _fill(url: str, n: int, indexer: SearchIndexer) -> None:
    repo = open_repository(url, indexer=indexer)
    try:
        batch: list[dict[str, object]] = []
        for resource in _resources(n):
            batch.append(resource)
            if len(batch) == 1000:
                with repo.transaction() as tx:
                    tx.put_many(batch)
                batch = []
        if batch:
            with repo.transaction() as tx:
                tx.put_many(batch)
    finally:
        repo.close()


def _time(fn: Callable[..., object], *args: object, **kwargs: object) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def _mib(path: Path) -> float:
    return path.stat().st_size / 2**20


def _run_sqlite(
    args: argparse.Namespace, indexer: SearchIndexer, tmp: Path
) -> dict[str, list[float]]:
    url = f"sqlite:///{tmp / 'source.db'}"
    _fill(url, args.resources, indexer)
    db = sqlite_path(url)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out: dict[str, list[float]] = {}
    for run in range(args.runs):
        archive = tmp / f"b{run}.tar"
        out.setdefault("backup cmio", []).append(_time(backup, url, archive))
        copy = tmp / f"copy{run}.db"
        out.setdefault("backup baseline (file copy)", []).append(_time(shutil.copyfile, db, copy))
        target = f"sqlite:///{tmp / f'target{run}.db'}"
        out.setdefault("restore cmio", []).append(_time(restore, archive, target))
        again = tmp / f"again{run}.db"
        out.setdefault("restore baseline (file copy)", []).append(
            _time(shutil.copyfile, copy, again)
        )
        out.setdefault("doctor --full", []).append(_time(diagnose, url, indexer, full=True))
        out["size MiB: database"] = [_mib(db)]
        out["size MiB: archive"] = [_mib(archive)]
    return out


def _run_postgres(
    args: argparse.Namespace, indexer: SearchIndexer, tmp: Path, server: str
) -> dict[str, list[float]]:
    schema = "bench_src"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = with_search_path(server, schema)
    _fill(url, args.resources, indexer)
    bindir = find_pg_bin()
    pg_dump = str(bindir / "pg_dump") if bindir else "pg_dump"
    pg_restore = str(bindir / "pg_restore") if bindir else "pg_restore"
    out: dict[str, list[float]] = {}
    for run in range(args.runs):
        archive = tmp / f"b{run}.tar"
        out.setdefault("backup cmio", []).append(_time(backup, url, archive))
        dump = tmp / f"d{run}.dump"
        cmd = [pg_dump, "-Fc", "-n", schema, "-f", str(dump), server]
        out.setdefault("backup baseline (pg_dump -Fc)", []).append(
            _time(subprocess.run, cmd, check=True)
        )
        target_schema = f"bench_t{run}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {target_schema}")
        target = with_search_path(server, target_schema)
        out.setdefault("restore cmio", []).append(_time(restore, archive, target))
        dbname = f"bench_r{run}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {dbname}")
        cmd2 = [pg_restore, "-d", with_database(server, dbname), str(dump)]
        out.setdefault("restore baseline (pg_restore)", []).append(
            _time(subprocess.run, cmd2, check=True)
        )
        out.setdefault("doctor --full", []).append(_time(diagnose, url, indexer, full=True))
        out["size MiB: archive"] = [_mib(archive)]
        out["size MiB: pg_dump -Fc"] = [_mib(dump)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--resources", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    indexer = SearchIndexer(load_model())
    with tempfile.TemporaryDirectory(prefix="cmio-backup-bench-") as d:
        tmp = Path(d)
        if args.backend == "sqlite":
            results = _run_sqlite(args, indexer, tmp)
        else:
            with running_postgres() as server:
                results = _run_postgres(args, indexer, tmp, server)
    print(f"| {args.backend}, {args.resources:,} resources | median s | per 1k resources ms |")
    print("|---|---|---|")
    for name, values in results.items():
        median = statistics.median(values)
        if name.startswith("size"):
            print(f"| {name} | {median:.1f} | |")
        else:
            print(f"| {name} | {median:.2f} | {median / args.resources * 1e6:.1f} |")


if __name__ == "__main__":
    main()
